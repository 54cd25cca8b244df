"""`walkcoach config show | get KEY | set KEY VALUE | validate [FILE]`.

Wired into cli.py with :func:`add_config_commands` (``device.cli.arguments``) and :func:`run_config_command`.
Problems with the config content (``validate``, a rejected ``set``) are printed one
per line with exit status 1; anything else goes up as a ConfigError, which cli.py
prints as one line with exit status 2.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from walkcoach.device.cli.arguments import add_config_commands
from walkcoach.device.config.config import (
    Config,
    ConfigProblems,
    config_path,
    effective_as_toml,
    get_value,
    load_config,
    set_value,
    toml_value,
    validate_text,
)
from walkcoach.device.shell.status import is_walkcoach_service
from walkcoach.hal.errors import ConfigError
from walkcoach.hal.state_files import UnsafeFile, exclusive_lock, read_regular

__all__ = ["add_config_commands", "run_config_command", "signal_reload"]


def run_config_command(args, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    cli_config = getattr(args, "config", None)
    command = args.config_command
    if command == "show":
        print(effective_as_toml(load_config(cli_config)), end="", file=out)
        return 0
    if command == "get":
        print(_format_get(load_config(cli_config), args.key), file=out)
        return 0
    if command == "set":
        return _set(cli_config, args.key, _one_value(args), out, err, runtime_dir=getattr(args, "runtime_dir", None))
    if command == "validate":
        return _validate(args.file, cli_config, out, err)
    raise ConfigError(f"unknown config command {command!r}")


def _one_value(args) -> str:
    """The VALUE of `config set` (a REMAINDER): one word; a "--" before it and a trailing -v are fine."""
    words = list(args.value)
    if words and words[0] == "--":
        words = words[1:]
    while len(words) > 1 and words[-1] in ("-v", "--verbose"):
        words.pop()
        args.verbose = True
    if len(words) != 1:
        shown = " ".join(words) if words else "nothing"
        raise ConfigError(f"config set {args.key} takes one VALUE (quote a value with spaces), not {shown}")
    return words[0]


def _format_get(config: Config, key: str) -> str:
    value = get_value(config, key)
    if "." not in key:
        return effective_as_toml(config, tables=[key]).split("\n", 2)[2].rstrip("\n")
    if value is None:
        return ""
    if isinstance(value, (str, Path)):
        return str(value)  # plain, for shell scripts; `set` takes it back without quotes
    return toml_value(value, hex_int=key == "imu.address")


def _lock_path(path: Path) -> Path:
    real = Path(os.path.realpath(path))
    return real.with_name(f".{real.name}.lock")


def _set(cli_config, key: str, value_text: str, out: TextIO, err: TextIO, *, runtime_dir=None) -> int:
    path = config_path(cli_config)
    lock = _lock_path(path)
    if not lock.parent.is_dir():
        return _set_locked(path, key, value_text, out, err, runtime_dir)  # set_value says what is missing
    try:
        # read-modify-write under one lock: two `config set` at once both land (no lost update)
        with exclusive_lock(lock):
            return _set_locked(path, key, value_text, out, err, runtime_dir)
    except UnsafeFile as exc:
        raise ConfigError(exc.strerror) from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot lock {lock}: permission denied (try sudo)") from None


def _set_locked(path: Path, key: str, value_text: str, out: TextIO, err: TextIO, runtime_dir=None) -> int:
    try:
        before = load_config(path)
    except ConfigError:
        before = None
    try:
        config = set_value(path, key, value_text)
    except ConfigProblems as exc:
        for line in exc.problems:
            print(line, file=err)
        print(f"{path}: unchanged", file=err)
        return 1
    shown = toml_value(get_value(config, key), hex_int=key == "imu.address")
    print(f"{key} = {shown} written to {path}", file=out)
    runtime_dirs = [config.service.runtime_dir]
    if before is not None and before.service.runtime_dir not in runtime_dirs:
        runtime_dirs.insert(0, before.service.runtime_dir)
    if os.environ.get("RUNTIME_DIRECTORY"):  # systemd's, as every command finds the service
        runtime_dirs.append(Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]))
    if runtime_dir:  # --runtime-dir: that service and no other
        runtime_dirs = [Path(runtime_dir)]
    from walkcoach.device.shell.service import needs_restart  # which keys a running service cannot take on a reload

    print(signal_reload(runtime_dirs, restart_key=key if needs_restart(key) else None), file=out)
    return 0


def _validate(file: str | None, cli_config, out: TextIO, err: TextIO) -> int:
    if file == "-":
        problems = validate_text(sys.stdin.buffer.read(), "<stdin>")
        name = "<stdin>"
    else:
        name = str(Path(file) if file else config_path(cli_config))
        try:
            if file:
                problems = validate_text(Path(file).read_bytes(), name)
            else:
                config = load_config(cli_config)
                problems = []
                if config.path is None:  # the file in use is missing, and may be: nothing to check
                    print(f"{name}: no such file; the defaults apply (`walkcoach config show` lists them)", file=out)
                    return 0
        except ConfigProblems as exc:
            problems = exc.problems
        except FileNotFoundError:
            problems = [f"{name}: no such file"]
        except ConfigError as exc:
            problems = [str(exc)]
        except OSError as exc:
            problems = [f"{name}: cannot read: {exc.strerror or exc}"]
    if problems:
        for line in problems:
            print(line, file=err)
        return 1
    print(f"{name}: ok", file=out)
    return 0


def signal_reload(runtime_dirs: list[Path], restart_key: str | None = None) -> str:
    """Ask a running service to reload (SIGHUP to the PID in its pid file); what happened, in words.

    ``restart_key``: the key changed is read only at start (pins, the loop rate): the reload
    keeps the service's other settings in step, but this one applies at the next restart.
    """
    for runtime_dir in runtime_dirs:
        pid_file = Path(runtime_dir) / "walkcoach.pid"
        try:
            pid = int(read_regular(pid_file, 64).decode().strip())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            return f"cannot read {pid_file} ({exc}); run `sudo systemctl reload walkcoach` to apply the change"
        if pid <= 1 or not is_walkcoach_service(pid):
            continue  # a stale pid file: that process is gone (or the PID now belongs to another program)
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
        except PermissionError:
            return f"not allowed to signal the service (PID {pid}); run `sudo systemctl reload walkcoach`"
        if restart_key is not None:
            return (f"asked the running service (PID {pid}) to reload, but {restart_key} is read only at start: "
                    "it applies at the next restart (sudo systemctl restart walkcoach)")
        return f"asked the running service (PID {pid}) to reload: the change applies now"
    return "walkcoach is not running: the change applies at next start"
