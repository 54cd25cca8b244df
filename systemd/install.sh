#!/bin/sh
# Install walkcoach as a systemd service on a Raspberry Pi (Raspberry Pi OS Bookworm).
#
#   sudo ./systemd/install.sh            # from a checkout of the repository
#
# What it does (every step can be run again safely; nothing the owner changed is overwritten):
#   1. creates the system user `walkcoach` (no login, no home) in the groups gpio and i2c;
#   2. creates /opt/walkcoach/venv with --system-site-packages, so python3-lgpio from
#      Raspberry Pi OS is used, and pip-installs this repository into it;
#   3. installs the unit as /etc/systemd/system/walkcoach.service;
#   4. installs the example config as /etc/walkcoach/config.toml, only if there is none;
#   5. links /usr/local/bin/walkcoach to the venv's command (on the PATH, also under sudo);
#   6. adds the user who ran sudo ($SUDO_USER) to the group walkcoach, which may read the
#      history (history, plan, report) and ask the service to calibrate or record;
#   7. systemctl daemon-reload, enable --now (restart if it was already running).
#
# Before: enable I2C (`sudo raspi-config nonint do_i2c 0`) and install the GPIO library
# (`sudo apt-get install -y python3-lgpio python3-venv`).
# After: `walkcoach config validate`, `systemctl status walkcoach`, `journalctl -u walkcoach -f`.
# Other operators: sudo usermod -aG walkcoach NAME (then log in again).
# Environment: PREFIX (default /opt/walkcoach), BIN_DIR (default /usr/local/bin),
# SKIP_SYSTEMCTL=1 to only install files.
set -eu

REPO=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
PREFIX=${PREFIX:-/opt/walkcoach}
VENV="$PREFIX/venv"
BIN_DIR=${BIN_DIR:-/usr/local/bin}
USER_NAME=walkcoach
UNIT_DST=/etc/systemd/system/walkcoach.service
CONFIG_DIR=/etc/walkcoach
CONFIG_DST="$CONFIG_DIR/config.toml"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"
[ -f "$REPO/pyproject.toml" ] || die "$REPO does not look like the walkcoach repository"
command -v python3 >/dev/null || die "python3 is missing"

# 1. the service user, in the groups that own /dev/i2c-* and /dev/gpiochip*
for group in gpio i2c; do
    if ! getent group "$group" >/dev/null; then
        say "creating group $group (Raspberry Pi OS normally has it; udev rules give it the devices)"
        groupadd --system "$group"
    fi
done
if id "$USER_NAME" >/dev/null 2>&1; then
    usermod --append --groups gpio,i2c "$USER_NAME"
else
    say "creating system user $USER_NAME"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --groups gpio,i2c "$USER_NAME"
fi

# 2. the virtual environment (system site packages: lgpio comes from Raspberry Pi OS)
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    mkdir -p "$PREFIX"
    python3 -m venv --system-site-packages "$VENV"
fi
say "installing walkcoach into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade "$REPO"
"$VENV/bin/python" -c "import lgpio" 2>/dev/null \
    || say "warning: lgpio is not importable; install it with: apt-get install -y python3-lgpio"

# 3. the unit
install -m 0644 "$REPO/systemd/walkcoach.service" "$UNIT_DST"
say "installed $UNIT_DST"

# 4. the config: never overwrite the owner's
install -d -m 0755 "$CONFIG_DIR"
if [ -e "$CONFIG_DST" ]; then
    say "keeping the existing $CONFIG_DST"
else
    install -m 0644 "$REPO/systemd/config.example.toml" "$CONFIG_DST"
    say "installed the example config as $CONFIG_DST"
fi
"$VENV/bin/walkcoach" --config "$CONFIG_DST" config validate \
    || die "fix $CONFIG_DST (problems above), then run this again"

# 5. the command on the PATH (sudo's secure_path has /usr/local/bin too)
install -d -m 0755 "$BIN_DIR"
if [ -e "$BIN_DIR/walkcoach" ] && [ ! -L "$BIN_DIR/walkcoach" ]; then
    say "keeping $BIN_DIR/walkcoach (not a link of ours); the command is $VENV/bin/walkcoach"
else
    ln -sfn "$VENV/bin/walkcoach" "$BIN_DIR/walkcoach"
    say "linked $BIN_DIR/walkcoach -> $VENV/bin/walkcoach"
fi

# 6. the operator who ran sudo may read the history without sudo
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && id "$SUDO_USER" >/dev/null 2>&1; then
    usermod --append --groups "$USER_NAME" "$SUDO_USER"
    say "added $SUDO_USER to the group $USER_NAME (log in again for it to count)"
fi

# 7. systemd
if [ "${SKIP_SYSTEMCTL:-0}" = 1 ]; then
    say "SKIP_SYSTEMCTL=1: not touching systemd"
    exit 0
fi
systemctl daemon-reload
systemctl enable walkcoach.service
if systemctl is-active --quiet walkcoach.service; then
    systemctl restart walkcoach.service
else
    systemctl start walkcoach.service
fi
say "walkcoach is $(systemctl is-active walkcoach.service || true); follow it with: journalctl -u walkcoach -f"
