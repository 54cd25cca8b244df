"""What the service keeps in its state directory besides the history: the last good
config, and the session in progress so that a restart carries it over.

**The last good config** (``config.last-good.toml``): every time the service starts or
reloads with a valid config file, a copy of its bytes is kept here. A config file that
is invalid at boot does not leave a silent belt: the service coaches with that copy
(or with the defaults if there is none yet), gives the ``config_error`` cue, and says
which in `walkcoach status` and the journal. The copy lives in the state directory,
and where that is comes from the config; so the state and runtime directories named
in the bad file are used when those two values are themselves valid.

**The session in progress** (``session.json``): the coach's :meth:`Coach.saved_state`
(session, walk time, cap with any pain shortening, upright), the history row it
writes to, the host's boot id and monotonic time, and the wall time with whether it
was trusted. Written atomically every :data:`SAVE_EVERY_S` off the tick (on the status
thread) and at exit. At start it is restored if it is recent: less than the
session-end pause ago, judged on the monotonic clock when the boot is the same, or on
the wall clock when both readings were from a synchronized clock. Otherwise the
session ended while the service was away, and a new one starts.

Files are read and written without following symlinks (:mod:`hal.state_files`).
"""

from __future__ import annotations

import json
import logging
import math
import tomllib
from pathlib import Path
from typing import NamedTuple

from walkcoach.device.config.config import Config, ServiceSettings, StoreSettings, config_from_bytes, try_load_config
from walkcoach.device.shell.clock_trust import SYNCHRONIZED, WallClock
from walkcoach.hal.errors import ConfigError
from walkcoach.hal.state_files import UnsafeFile, read_regular, write_atomic

log = logging.getLogger("walkcoach.state")

LAST_GOOD_CONFIG_NAME = "config.last-good.toml"
SAVED_SESSION_NAME = "session.json"
SAVED_SESSION_VERSION = 1
SAVE_EVERY_S = 5.0  # a crash loses at most this much walk time (the history keeps its own, ~2 s)


# -- the last good config ---------------------------------------------------------------------


class BootConfig(NamedTuple):
    config: Config
    source: str  # "file" | "last_good" | "defaults"
    problems: list[str]  # why the file was not used (empty when it was)
    asked: Path | None  # the config file the service was told to use


def save_last_good(config: Config) -> None:
    """Keep a copy of the config file that just loaded (empty for "no file: defaults"). Never raises."""
    target = Path(config.store.state_dir) / LAST_GOOD_CONFIG_NAME
    try:
        data = read_regular(config.path) if config.path is not None else b""
        try:
            if read_regular(target) == data:
                return
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data, mode=0o600)
    except OSError as exc:
        log.warning("cannot keep a copy of the good config in %s: %s", target.parent, exc.strerror or exc)


def _dirs_named_in(path: Path | None) -> Config:
    """Defaults, with the state and runtime directories of the file at ``path`` when those are valid."""
    store, service = StoreSettings(), ServiceSettings()
    try:
        data = tomllib.loads(read_regular(path).decode("utf-8")) if path is not None else {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError):
        data = {}
    state_dir = (data.get("store") or {}).get("state_dir") if isinstance(data.get("store"), dict) else None
    runtime_dir = (data.get("service") or {}).get("runtime_dir") if isinstance(data.get("service"), dict) else None
    if isinstance(state_dir, str) and state_dir.startswith("/"):
        store = StoreSettings(state_dir=Path(state_dir))
    if isinstance(runtime_dir, str) and runtime_dir.startswith("/"):
        service = ServiceSettings(runtime_dir=Path(runtime_dir))
    return Config(store=store, service=service)


def load_boot_config(path: Path | str | None) -> BootConfig:
    """The config the service starts with: the file, else its last good copy, else the defaults."""
    from walkcoach.device.config.config import config_path

    asked = config_path(path)
    config, problems = try_load_config(path)
    if config is not None:
        save_last_good(config)
        return BootConfig(config, "file", [], asked)
    fallback = _dirs_named_in(asked)
    copy = Path(fallback.store.state_dir) / LAST_GOOD_CONFIG_NAME
    try:
        good = config_from_bytes(read_regular(copy), copy)
    except FileNotFoundError:
        return BootConfig(fallback, "defaults", problems, asked)
    except (OSError, ConfigError) as exc:
        why = exc.strerror if isinstance(exc, UnsafeFile) else str(exc).splitlines()[0]
        return BootConfig(fallback, "defaults", problems + [f"{copy}: the last good copy is not usable either: {why}"], asked)
    return BootConfig(good, "last_good", problems, asked)


# -- the session in progress --------------------------------------------------------------------


def save_session(state_dir: Path | str, saved: dict) -> None:
    """Write ``session.json`` atomically (0600). Raises OSError."""
    data = json.dumps(saved, allow_nan=False, separators=(",", ":")).encode("utf-8")
    write_atomic(Path(state_dir) / SAVED_SESSION_NAME, data, mode=0o600)


def session_record(coach_state: dict, *, clock: WallClock, store_session_id: int | None, wall_trusted: bool) -> dict:
    return {
        "version": SAVED_SESSION_VERSION,
        "boot_id": clock.boot_id,
        "monotonic_s": clock.monotonic(),
        "wall_s": clock.wall(),
        "wall_synchronized": wall_trusted,
        "store_session_id": store_session_id,
        "coach": coach_state,
    }


class Restorable(NamedTuple):
    coach: dict
    store_session_id: int | None
    downtime_s: float
    judged_by: str  # "monotonic" | "wall"


def load_saved_session(state_dir: Path | str, *, clock: WallClock, max_age_s: float) -> Restorable | None:
    """The saved session if it is recent enough to carry over; None (and a log line why) otherwise."""
    path = Path(state_dir) / SAVED_SESSION_NAME
    try:
        saved = json.loads(read_regular(path, 1 << 16).decode("utf-8"))
    except FileNotFoundError:
        return None
    except UnsafeFile as exc:
        log.warning("%s", exc.strerror)
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the saved session %s (%s): a new session starts", path, exc)
        return None
    try:
        if saved.get("version") != SAVED_SESSION_VERSION or not isinstance(saved.get("coach"), dict):
            raise ValueError("unknown format")
        if saved.get("boot_id") == clock.boot_id:
            downtime_s = clock.monotonic() - float(saved["monotonic_s"])
            judged_by = "monotonic"
        elif saved.get("wall_synchronized") and clock.trust().level == SYNCHRONIZED:
            downtime_s = clock.wall() - float(saved["wall_s"])
            judged_by = "wall"
        else:
            log.info("the saved session is from another boot and no synchronized clock dates it: a new session starts")
            return None
        if not math.isfinite(downtime_s) or downtime_s < 0:
            raise ValueError(f"saved {downtime_s:.0f} s in the future")
        session_id = saved.get("store_session_id")
        session_id = int(session_id) if isinstance(session_id, int) and not isinstance(session_id, bool) else None
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("the saved session %s is not usable (%s): a new session starts", path, exc)
        return None
    if downtime_s > max_age_s:
        log.info("the saved session ended %.0f s ago (more than the %.0f s session-end pause): a new session starts",
                 downtime_s, max_age_s)
        return None
    return Restorable(saved["coach"], session_id, downtime_s, judged_by)
