#!/bin/sh
# Check systemd/walkcoach.service with systemd's own analyzer (CI calls this).
#
#   systemd/check-unit.sh [UNIT_FILE] [MAX_EXPOSURE]
#
# * `systemd-analyze verify` must print nothing: any warning (an unknown key, a typo in
#   a value, a missing command) fails. Verify insists the ExecStart binary exists, so the
#   unit is copied into a temp dir under its own name with ExecStart pointed at a stub
#   executable; everything else is checked as written.
# * `systemd-analyze security --offline=yes` prints the exposure figure; above
#   MAX_EXPOSURE (default 1.0) fails.
# * Without systemd-analyze it installs the `systemd` package when it can (root and
#   apt-get, non-interactive); when that is impossible it says so and exits 0 (skipped).
#   Needs no running systemd (a container is fine). CHECK_UNIT_NO_INSTALL=1: never install.
set -eu

HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
UNIT=${1:-"$HERE/walkcoach.service"}
MAX_EXPOSURE=${2:-1.0}
EXEC_START=/opt/walkcoach/venv/bin/walkcoach

if ! command -v systemd-analyze >/dev/null 2>&1 && [ "${CHECK_UNIT_NO_INSTALL:-0}" != 1 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "check-unit: systemd-analyze is missing; installing systemd with apt-get"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
               && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd procps; } \
               >/dev/null 2>&1; then
            echo "check-unit: SKIPPED: could not install systemd with apt-get"
            exit 0
        fi
    fi
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-unit: SKIPPED: systemd-analyze is not available (install the systemd package)"
    exit 0
fi

[ -f "$UNIT" ] || { echo "check-unit: no unit file $UNIT" >&2; exit 1; }
grep -q "^ExecStart=$EXEC_START " "$UNIT" \
    || { echo "check-unit: $UNIT: ExecStart is not $EXEC_START ..." >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexit 0\n' > "$WORK/bin/walkcoach"
chmod 0755 "$WORK/bin/walkcoach"
NAME=$(basename "$UNIT")
sed "s|^ExecStart=$EXEC_START |ExecStart=$WORK/bin/walkcoach |" "$UNIT" > "$WORK/$NAME"

status=0
echo "check-unit: $(systemd-analyze --version | head -n 1)"
if ! systemd-analyze verify --man=no "$WORK/$NAME" > "$WORK/verify.out" 2>&1; then
    status=1
fi
# Warnings do not change verify's exit status: any output is a failure.
if [ -s "$WORK/verify.out" ]; then
    sed "s|$WORK/bin/walkcoach|$EXEC_START|g; s|$WORK/||g" "$WORK/verify.out" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "check-unit: FAILED: systemd-analyze verify $NAME" >&2
else
    echo "check-unit: verify $NAME: no warnings"
fi

security=$(systemd-analyze security --offline=yes --no-pager "$WORK/$NAME" 2>&1) || true
exposure=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -n 1)
if [ -z "$exposure" ]; then
    printf '%s\n' "$security" >&2
    echo "check-unit: FAILED: no exposure figure from systemd-analyze security" >&2
    exit 1
fi
echo "check-unit: systemd-analyze security exposure: $exposure (at most $MAX_EXPOSURE allowed)"
if awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e > m) }'; then
    printf '%s\n' "$security" | grep -F '✗' >&2 || true
    echo "check-unit: FAILED: exposure $exposure is above $MAX_EXPOSURE" >&2
    status=1
fi
exit "$status"
