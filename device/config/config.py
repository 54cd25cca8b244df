"""The TOML config file: one file, tables mirroring the settings, every problem on one line.

The file is ``/etc/walkcoach/config.toml`` unless ``--config PATH`` or
``$WALKCOACH_CONFIG`` names another (flag > env > default). Its tables mirror
:class:`~device.settings.DeviceSettings` — ``[lean] [gait] [plan] [upright]``
(the coach), ``[mount] [imu] [pins] [loop]`` — plus ``[store]`` and
``[service]`` defined here. Every key is optional; a missing or empty file
means the defaults. A missing file that was named explicitly is an error,
except the default path itself (the systemd unit names it in
``$WALKCOACH_CONFIG`` only to be explicit).

Validation never raises a traceback at the wearer's owner: each problem is one
line ``FILE:LINE: KEY = VALUE: what is wrong; allowed: what is allowed``, built
from the unit/range/choices metadata of the settings fields, so the settings,
the checks and ``systemd/config.example.toml`` (see :func:`example_config_text`)
cannot disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import json
import math
import os
import re
import stat
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walkcoach.device.core.settings import (
    CoachSettings,
    DeviceSettings,
    GaitSettings,
    ImuSettings,
    LeanSettings,
    LoopSettings,
    MountSettings,
    PinSettings,
    PlanSettings,
    UprightSettings,
    setting,
)
from walkcoach.hal.errors import ConfigError
from walkcoach.hal.state_files import write_atomic

INSTALLED_CONFIG_PATH = Path("/etc/walkcoach/config.toml")  # where install.sh puts it, ConfigurationDirectory=
DEFAULT_CONFIG_PATH = INSTALLED_CONFIG_PATH
CONFIG_ENV = "WALKCOACH_CONFIG"
PID_FILE_NAME = "walkcoach.pid"
NEW_FILE_MODE = 0o644  # the service user must be able to read a config that root writes
MAX_SHOWN_CHARS = 60  # a bad value longer than this is shortened in problem lines


@dataclass(frozen=True, slots=True)
class StoreSettings:
    state_dir: Path = setting(Path("/var/lib/walkcoach"), "path", "where the session store lives (the systemd StateDirectory)")


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    runtime_dir: Path = setting(Path("/run/walkcoach"), "path",
                                "pid and status files of the running service (the systemd RuntimeDirectory)")

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / PID_FILE_NAME


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the config file sets: the device settings plus where the service keeps its files."""

    settings: DeviceSettings = field(default_factory=DeviceSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    path: Path | None = field(default=None, compare=False)  # the file read; None when no file existed


class ConfigProblems(ConfigError):
    """A config (or a proposed change to one) has problems; ``problems`` holds one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# -- the tables and their keys, from the settings dataclasses ----------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    cls: type
    about: str
    attrs: tuple[str, ...]  # where the table's settings object sits inside a Config


@dataclass(frozen=True, slots=True)
class _Key:
    table: str
    name: str
    kind: str  # bool | int | float | str | pin | date | path
    default: Any
    unit: str
    help: str
    range: tuple | None
    choices: tuple | None

    @property
    def path(self) -> str:
        return f"{self.table}.{self.name}"

    @property
    def hex(self) -> bool:
        return self.name == "address"


TABLES: tuple[_Table, ...] = (
    _Table("lean", LeanSettings, "Forward lean: when the wearer is cued to straighten up.", ("settings", "coach", "lean")),
    _Table("gait", GaitSettings, "Gait: what counts as a step, a bout of walking, a session.", ("settings", "coach", "gait")),
    _Table("plan", PlanSettings, "The walking plan: today's cap per session and how it grows.", ("settings", "coach", "plan")),
    _Table("upright", UprightSettings, "Capturing the wearer's own upright posture.", ("settings", "coach", "upright")),
    _Table("mount", MountSettings, "How the sensor sits on the belt.", ("settings", "mount")),
    _Table("imu", ImuSettings, "The BNO055 sensor.", ("settings", "imu")),
    _Table("pins", PinSettings, "Outputs and the button, by GPIO name (BCM numbering).", ("settings", "pins")),
    _Table("loop", LoopSettings, "The sampling loop.", ("settings", "loop")),
    _Table("store", StoreSettings, "Where the session store lives.", ("store",)),
    _Table("service", ServiceSettings, "The running service's own files.", ("service",)),
)
_TABLE_BY_NAME = {table.name: table for table in TABLES}

_PIN_RE = re.compile(r"GPIO([0-9]|1[0-9]|2[0-7])")
_PIN_ALLOWED = 'a GPIO name GPIO0 to GPIO27 (BCM numbering), or "" for none'
_DATE_EXAMPLE = "2025-03-01"


def _kind(table: str, annotation: Any) -> str:
    if table == "pins" and annotation is str:
        return "pin"
    for python_type, kind in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (Path, "path")):
        if annotation is python_type:
            return kind
    if set(typing.get_args(annotation)) == {dt.date, type(None)}:
        return "date"
    raise TypeError(f"config cannot read a setting of type {annotation!r} in [{table}]")


def _keys_of(table: _Table) -> dict[str, _Key]:
    hints = typing.get_type_hints(table.cls)
    keys = {}
    for f in dataclasses.fields(table.cls):
        meta = f.metadata
        keys[f.name] = _Key(
            table=table.name,
            name=f.name,
            kind=_kind(table.name, hints[f.name]),
            default=f.default,
            unit=meta.get("unit", ""),
            help=meta.get("help", ""),
            range=meta.get("range"),
            choices=meta.get("choices"),
        )
    return keys


KEYS: dict[str, dict[str, _Key]] = {table.name: _keys_of(table) for table in TABLES}


# -- showing values ---------------------------------------------------------------------------


_ONE_LINE_UNSAFE = re.compile("[\x7f\x85\u2028\u2029]")  # not escaped by json, but break lines (or TOML)


def toml_value(value: Any, *, hex_int: bool = False) -> str:
    """``value`` as TOML source text (None, meaning "unset", is the empty string)."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return hex(value) if hex_int and value >= 0 else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return _ONE_LINE_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(value, ensure_ascii=False))
    if isinstance(value, (dt.date, dt.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_show_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _show(value: Any, *, hex_int: bool = False) -> str:
    """A value for a problem line: TOML text on one line, shortened if long."""
    text = toml_value(value, hex_int=hex_int)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def _show_key(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return name
    shown = toml_value(name)
    return shown if len(shown) <= MAX_SHOWN_CHARS else shown[: MAX_SHOWN_CHARS - 4] + '..."'


def _type_name(value: Any) -> str:
    for python_type, name in (
        (bool, "true/false"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (dt.datetime, "a date-time"),
        (dt.date, "a date"),
        (dt.time, "a time"),
        (list, "an array"),
        (dict, "a table"),
    ):
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _number(value: float, kind: str) -> str:
    return str(int(value)) if kind == "int" else toml_value(float(value))


def allowed_text(key: _Key) -> str:
    """What ``key`` accepts, in words: type, range with unit, or choices."""
    unit = f" {key.unit}" if key.unit and key.unit not in ("path", "date") else ""
    if key.choices is not None:
        return "one of " + ", ".join(toml_value(c, hex_int=key.hex) for c in key.choices)
    if key.kind == "bool":
        return "true or false"
    if key.kind == "pin":
        return _PIN_ALLOWED
    if key.kind == "date":
        return f'a TOML date such as {_DATE_EXAMPLE} (no quotes), or "" for today'
    if key.kind == "path":
        return f"an absolute path such as {toml_value(key.default)}"
    noun = "a whole number" if key.kind == "int" else "a number"
    if key.range is not None:
        low, high = key.range
        return f"{noun} from {_number(low, key.kind)} to {_number(high, key.kind)}{unit}"
    if key.kind == "str":
        return "a string"
    return f"{noun}{' in' + unit if unit else ''}"


# -- finding the line of a key ------------------------------------------------------------------

_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_DOTTED = rf"{_PART}(?:[ \t]*\.[ \t]*{_PART})*"
_HEADER_RE = re.compile(rf"^[ \t]*\[\[?[ \t]*({_DOTTED})[ \t]*\]")
_KEY_RE = re.compile(rf"^[ \t]*({_DOTTED})[ \t]*=")
_PART_RE = re.compile(_PART)


def _unquote(part: str) -> str:
    if part.startswith('"'):
        try:
            return json.loads(part)
        except ValueError:
            return part[1:-1]
    if part.startswith("'"):
        return part[1:-1]
    return part


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(_unquote(m.group(0)) for m in _PART_RE.finditer(dotted))


class _Locator:
    """Line numbers of table headers and keys, by scanning the text (tomllib keeps none)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        self.duplicate: tuple[tuple[str, ...], int] | None = None
        table: tuple[str, ...] = ()
        in_multiline = None
        for number, line in enumerate(text.split("\n"), start=1):  # TOML's lines, not str.splitlines()
            if in_multiline is not None:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                table = _parts(header.group(1))
                self._note(table, number)
                continue
            key = _KEY_RE.match(line)
            if key:
                self._note(table + _parts(key.group(1)), number)
                rest = line[key.end():]
                for quotes in ('"""', "'''"):
                    if rest.count(quotes) % 2 == 1:
                        in_multiline = quotes
                        break

    def _note(self, path: tuple[str, ...], number: int) -> None:
        if path in self.lines:
            if self.duplicate is None:
                self.duplicate = (path, number)
        else:
            self.lines[path] = number

    def line(self, *paths: tuple[str, ...]) -> int | None:
        """The line of the first path found, else of its longest prefix that is found."""
        for path in paths:
            if path in self.lines:
                return self.lines[path]
        for path in paths:
            for end in range(len(path) - 1, 0, -1):
                if path[:end] in self.lines:
                    return self.lines[path[:end]]
        return None


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


# -- checking ---------------------------------------------------------------------------------


def _coerce(key: _Key, value: Any) -> tuple[Any, str | None]:
    """(the value as the settings want it, None) or (None, what is wrong with it)."""
    kind = key.kind
    wrong_type = f"wrong type ({_type_name(value)})"
    if kind == "bool":
        if not isinstance(value, bool):
            return None, wrong_type
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, wrong_type
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, wrong_type
        try:
            value = float(value)
        except OverflowError:
            return None, "out of range"
        if not math.isfinite(value):
            return None, "not a finite number"
    elif kind in ("str", "pin"):
        if not isinstance(value, str):
            return None, wrong_type
        if kind == "pin" and value and not _PIN_RE.fullmatch(value):
            return None, "not a pin name"
    elif kind == "path":
        if not isinstance(value, str):
            return None, wrong_type
        if not value.startswith("/") or "\x00" in value:
            return None, "not an absolute path"
        value = Path(value)
    elif kind == "date":
        if value == "":
            value = None
        elif isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            if isinstance(value, str):
                return None, "a string, not a date (write the date without quotes)"
            return None, wrong_type
    if key.choices is not None and value not in key.choices:
        return None, "not one of the choices"
    if key.range is not None and value is not None:
        low, high = key.range
        if not low <= value <= high:
            return None, "out of range"
    return value, None


_CROSS_CHECKS = (
    # (key, must be, other key, in words)
    ("plan.max_min", ">=", "plan.start_min", "at least"),
    ("plan.sessions_per_day_max", ">=", "plan.sessions_per_day_min", "at least"),
    ("lean.hysteresis_deg", "<", "lean.threshold_deg", "less than"),
)


def _check_data(data: dict, source: str, locate: _Locator) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The values per table (defaults filled in) and the problems, one line each."""
    problems: list[str] = []
    values = {name: {key.name: key.default for key in keys.values()} for name, keys in KEYS.items()}
    present: set[str] = set()  # key paths set in the file with a valid value
    bad_paths: set[str] = set()  # key paths set in the file with a bad value: no cross checks on them

    for table_name, table_value in data.items():
        where = _where(source, locate.line((table_name,)))
        if table_name not in _TABLE_BY_NAME:
            problems.append(f"{where}: {_show_key(table_name)} = {_show(table_value)}: {_unknown_table(table_name)}")
            continue
        if not isinstance(table_value, dict):
            problems.append(
                f"{where}: {table_name} = {_show(table_value)}: wrong type ({_type_name(table_value)}); "
                f"allowed: a table [{table_name}]"
            )
            continue
        keys = KEYS[table_name]
        for name, value in table_value.items():
            where = _where(source, locate.line((table_name, name)))
            key = keys.get(name)
            if key is None:
                problems.append(
                    f"{where}: {table_name}.{_show_key(name)} = {_show(value)}: {_unknown_key(table_name, name)}"
                )
                continue
            coerced, wrong = _coerce(key, value)
            if wrong:
                bad_paths.add(key.path)
                problems.append(
                    f"{where}: {key.path} = {_show(value, hex_int=key.hex)}: {wrong}; allowed: {allowed_text(key)}"
                )
                continue
            values[table_name][name] = coerced
            present.add(key.path)

    def get(path: str) -> Any:
        table, name = path.split(".")
        return values[table][name]

    def where_of(*paths: str) -> str:
        in_file = [tuple(p.split(".")) for p in paths if p in present]
        return _where(source, locate.line(*in_file) if in_file else None)

    for path, op, other, words in _CROSS_CHECKS:
        if path in bad_paths or other in bad_paths:
            continue
        a, b = get(path), get(other)
        ok = a >= b if op == ">=" else a < b
        if not ok:
            problems.append(
                f"{where_of(path, other)}: {path} = {_show(a)}: not {words} {other} = {_show(b)}; "
                f"allowed: {path} {op} {other}"
            )

    if not {"mount.forward", "mount.up"} & bad_paths:
        forward, up = get("mount.forward"), get("mount.up")
        if forward[1] == up[1]:
            others = " or ".join(axis for axis in "xyz" if axis != forward[1])
            problems.append(
                f"{where_of('mount.up', 'mount.forward')}: mount.up = {_show(up)}: on the same axis as "
                f"mount.forward = {_show(forward)}; allowed: an up axis on {others}"
            )

    used: dict[str, str] = {}
    for name in KEYS["pins"]:
        path = f"pins.{name}"
        pin = get(path)
        if path in bad_paths or not pin:
            continue
        if pin in used:
            problems.append(
                f"{where_of(path, used[pin])}: {path} = {_show(pin)}: {pin} is already {used[pin]}; "
                f'allowed: a pin no other output or button uses, or "" for none'
            )
        else:
            used[pin] = path
    return values, problems


def _suggest(name: str, options: Iterable[str]) -> list[str]:
    """The closest option: same letters in another case or order first, then difflib's pick."""
    options = list(options)
    for option in options:
        if option.lower() == name.lower() or sorted(option.lower()) == sorted(name.lower()):
            return [option]
    return difflib.get_close_matches(name, options, n=1)


def _unknown_table(name: str) -> str:
    close = _suggest(name, _TABLE_BY_NAME)
    if close:
        return f"unknown table (did you mean [{close[0]}]?)"
    homes = [t for t, keys in KEYS.items() if name in keys]
    if homes:
        return f"not a table; keys go inside their table (did you mean {homes[0]}.{name} under [{homes[0]}]?)"
    return "unknown table; allowed: " + ", ".join(f"[{t}]" for t in _TABLE_BY_NAME)


def _unknown_key(table: str, name: str) -> str:
    keys = KEYS[table]
    close = _suggest(name, keys)
    if close:
        return f"unknown key (did you mean {table}.{close[0]}?)"
    homes = [t for t, other in KEYS.items() if name in other]
    if homes:
        return f"unknown key in [{table}] (did you mean {homes[0]}.{name}?)"
    return f"unknown key; allowed in [{table}]: " + ", ".join(keys)


def _build(values: dict[str, dict[str, Any]]) -> Config:
    part = {name: _TABLE_BY_NAME[name].cls(**kwargs) for name, kwargs in values.items()}
    settings = DeviceSettings(
        coach=CoachSettings(lean=part["lean"], gait=part["gait"], plan=part["plan"], upright=part["upright"]),
        mount=part["mount"],
        imu=part["imu"],
        pins=part["pins"],
        loop=part["loop"],
    )
    return Config(settings=settings, store=part["store"], service=part["service"])


_TOML_ERROR_RE = re.compile(r"^(?P<msg>.*?)\s*\((?:at line (?P<line>\d+), column (?P<col>\d+)|at end of document)\)$", re.S)


def _decode(data: bytes | str, source: str) -> tuple[str | None, list[str]]:
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            line = data.count("\n", 0, exc.start) + 1
            return None, [f"{source}:{line}: not UTF-8 text (character {exc.object[exc.start]!a}); allowed: UTF-8 TOML text"]
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return None, [
                f"{source}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                f"allowed: UTF-8 TOML text"
            ]
    return text.removeprefix("\ufeff"), []


def _parse(data: bytes | str, source: str) -> tuple[dict | None, _Locator | None, list[str]]:
    text, problems = _decode(data, source)
    if text is None:
        return None, None, problems
    locate = _Locator(text)
    try:
        return tomllib.loads(text), locate, []
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_ERROR_RE.match(str(exc))
        message, line, column = (match["msg"], match["line"], match["col"]) if match else (str(exc), None, None)
        if line is None and message.startswith(("Cannot overwrite", "Cannot declare")) and locate.duplicate:
            path, line = locate.duplicate
            message = f"{'.'.join(_show_key(p) for p in path)} is set twice"
        elif line is None:
            line = text.count("\n") + (0 if text.endswith("\n") else 1) or None
        at = f", column {column}" if column else ""
        return None, None, [f"{_where(source, int(line) if line else None)}: not valid TOML: {message}{at}"]
    except RecursionError:
        return None, None, [f"{source}: not valid TOML: arrays or tables nested too deeply"]
    except ValueError as exc:  # e.g. an integer with thousands of digits
        return None, None, [f"{source}: not valid TOML: {str(exc).splitlines()[0]}"]


def _check(data: bytes | str, source: str) -> tuple[Config | None, list[str]]:
    parsed, locate, problems = _parse(data, source)
    if parsed is None or locate is None:
        return None, problems
    values, problems = _check_data(parsed, source, locate)
    if problems:
        return None, problems
    return _build(values), []


# -- the public API -----------------------------------------------------------------------------


def config_path(cli_value: Path | str | None = None) -> Path:
    """The config file to use: ``--config`` value, else ``$WALKCOACH_CONFIG``, else the default."""
    return _resolve(cli_value)[0]


def _resolve(cli_value: Path | str | None) -> tuple[Path, bool]:
    if cli_value not in (None, ""):
        return Path(cli_value), True
    env = os.environ.get(CONFIG_ENV, "")
    if env:
        return Path(env), True
    return DEFAULT_CONFIG_PATH, False


def validate_text(text: str | bytes, source_name: str) -> list[str]:
    """Every problem in config ``text`` (read from ``source_name``), one line each; [] when it is fine."""
    return _check(text, source_name)[1]


def load_config(path: Path | str | None = None) -> Config:
    """The effective config: defaults overridden by the file (``path``, else env, else default).

    Raises ConfigProblems (a ConfigError) whose message lists every problem, one line each.
    """
    target, explicit = _resolve(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        if explicit and target != DEFAULT_CONFIG_PATH:
            raise ConfigError(f"{target}: no such config file") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"{target}: cannot read the config: {exc.strerror or exc}") from None
    config, problems = _check(data, str(target))
    if config is None:
        raise ConfigProblems(problems)
    return dataclasses.replace(config, path=target)


def try_load_config(path: Path | str | None = None) -> tuple[Config | None, list[str]]:
    """The config at ``path`` and no problems, or None and every problem (one line each)."""
    try:
        return load_config(path), []
    except ConfigProblems as exc:
        return None, list(exc.problems)
    except ConfigError as exc:
        return None, [str(exc)]


def config_from_bytes(data: bytes, source: Path) -> Config:
    """The config in ``data`` (a saved copy the caller has read), named ``source`` in problems."""
    config, problems = _check(data, str(source))
    if config is None:
        raise ConfigProblems(problems)
    return dataclasses.replace(config, path=Path(source))


def load_settings(path: Path | str | None = None) -> DeviceSettings:
    """The effective device settings (see :func:`load_config`)."""
    return load_config(path).settings


def _key(key: str) -> _Key:
    table, _, name = key.partition(".")
    if table not in KEYS:
        raise ConfigProblems([f"{key}: {_unknown_table(table)}"])
    if name not in KEYS[table]:
        raise ConfigProblems([f"{key}: {_unknown_key(table, name)}"])
    return KEYS[table][name]


def get_value(config: Config, key: str) -> Any:
    """One value (``"lean.threshold_deg"``) or one table's settings object (``"lean"``)."""
    if "." not in key and key in _TABLE_BY_NAME:
        return functools.reduce(getattr, _TABLE_BY_NAME[key].attrs, config)
    spec = _key(key)
    return getattr(functools.reduce(getattr, _TABLE_BY_NAME[spec.table].attrs, config), spec.name)


def _table_lines(config: Config, table: _Table, *, mark_changes: bool) -> list[str]:
    lines = [f"[{table.name}]"]
    for key in KEYS[table.name].values():
        value = get_value(config, key.path)
        line = f"{key.name} = {toml_value(value, hex_int=key.hex)}"
        if mark_changes and value != key.default:
            line += f"  # default {toml_value(key.default, hex_int=key.hex)}"
        lines.append(line)
    return lines


def effective_as_toml(config: Config, *, tables: Iterable[str] | None = None) -> str:
    """The whole effective config as TOML, defaults filled in; values that differ from the default say so."""
    source = f"from {config.path}" if config.path else "no config file: all defaults"
    lines = [f"# walkcoach effective config ({source})"]
    wanted = set(tables) if tables is not None else None
    for table in TABLES:
        if wanted is None or table.name in wanted:
            lines += [""] + _table_lines(config, table, mark_changes=True)
    return "\n".join(lines) + "\n"


def example_config_text() -> str:
    """The commented example config (``systemd/config.example.toml``), written from the settings metadata."""
    out = [
        f"# walkcoach configuration: {INSTALLED_CONFIG_PATH}",
        "#",
        "# Every key is optional. A commented-out key keeps its default, which is the value",
        "# shown after the '='. To change one, remove the '# ' and edit the value, or run",
        "#   sudo walkcoach config set TABLE.KEY VALUE",
        "# which checks the value, keeps this file's layout and reloads the running service.",
        "# `walkcoach config validate` checks the file; `walkcoach config show` prints every",
        "# value in effect.",
        "#",
        "# Generated from device/core/settings.py by `python -m walkcoach.device.config`;",
        "# tests/test_config.py fails when this file and the settings disagree.",
    ]
    for table in TABLES:
        out += ["", f"[{table.name}]", f"# {table.about}"]
        for key in KEYS[table.name].values():
            facts = []
            if key.unit and key.unit not in ("path", "date"):
                facts.append(f"unit: {key.unit}")
            if key.range is not None and key.choices is None:
                low, high = key.range
                facts.append(f"range: {_number(low, key.kind)} to {_number(high, key.kind)}")
            else:
                facts.append(f"allowed: {allowed_text(key)}")
            facts.append(f"default: {toml_value(key.default, hex_int=key.hex)}")
            out += [
                "",
                f"# {key.help}",
                f"# ({'; '.join(facts)})",
                f"# {key.name} = {toml_value(key.default, hex_int=key.hex)}",
            ]
    return "\n".join(out) + "\n"


# -- changing one value in the file -------------------------------------------------------------


def parse_value_text(key: str, value_text: str) -> Any:
    """A command-line value for ``key`` as a TOML value; strings may be given without quotes."""
    spec = _key(key)
    if spec.kind in ("str", "pin", "path") and not value_text.startswith(('"', "'")):
        return value_text
    if spec.kind == "date" and value_text == "":
        return ""
    try:
        return tomllib.loads(f"value = {value_text}")["value"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError):
        return value_text  # a bare word: the file check says what is wrong with it, in context


def _edit_text(text: str, key: _Key, value: Any, *, present: bool) -> str:
    """``text`` with ``key`` set to ``value``, comments and layout kept."""
    rendered = toml_value(value, hex_int=key.hex)
    if not present:
        inserted = _insert_below_template(text, key, rendered)
        if inserted is not None:
            return inserted
    import tomlkit  # only `config set` needs it
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
        if key.table not in doc:
            doc.add(key.table, tomlkit.table())
        item = tomlkit.item(value)
        if key.hex and isinstance(value, int) and not isinstance(value, bool):
            item = tomlkit.value(rendered)
        doc[key.table][key.name] = item
        new_text = tomlkit.dumps(doc)
    except (TOMLKitError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cannot change {key.path} in this file automatically ({exc}); edit it by hand") from None
    if "\r\n" in text and not re.search(r"(?<!\r)\n", text):  # a CRLF file stays CRLF
        new_text = re.sub(r"(?<!\r)\n", "\r\n", new_text)
    return new_text


def _insert_below_template(text: str, key: _Key, rendered: str) -> str | None:
    """Put ``key = value`` right under its commented-out ``# key = default`` line, if the file has one."""
    lines = [line for line in re.split(r"(?<=\n)", text) if line]
    section: tuple[str, ...] | None = ()
    candidates = []
    for index, line in enumerate(lines):
        header = _HEADER_RE.match(line)
        if header:
            section = _parts(header.group(1)) if not line.lstrip().startswith("[[") else None
            continue
        if section == (key.table,) and re.match(rf"^[ \t]*#[ \t]*{re.escape(key.name)}[ \t]*=", line):
            candidates.append(index)
    if len(candidates) != 1:
        return None
    index = candidates[0]
    template = lines[index]
    indent = template[: len(template) - len(template.lstrip())]
    newline = "\r\n" if template.endswith("\r\n") else "\n"
    if not template.endswith("\n"):
        lines[index] = template + newline
    lines.insert(index + 1, f"{indent}{key.name} = {rendered}{newline}")
    return "".join(lines)


def _without(data: dict, key: _Key) -> dict:
    copy = {name: (dict(value) if isinstance(value, dict) else value) for name, value in data.items()}
    table = copy.get(key.table)
    if isinstance(table, dict):
        table.pop(key.name, None)
        if not table:
            del copy[key.table]
    return copy


def set_value(path: Path | str | None, key: str, value_text: str) -> Config:
    """Set ``key`` to ``value_text`` in the config file, keeping its comments and layout.

    The whole new file is checked first; with any problem, ConfigProblems is raised and
    the file is left byte for byte as it was. The write is atomic (a temp file in the
    same directory, fsync, rename) and keeps the file's mode and owner.
    """
    target = config_path(path)
    spec = _key(key)
    value = parse_value_text(key, value_text)
    real = Path(os.path.realpath(target))
    try:
        old_bytes = real.read_bytes()
        old_stat: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        if not real.parent.is_dir():
            raise ConfigError(f"{target}: no such directory {real.parent}") from None
        old_bytes, old_stat = b"", None
    except OSError as exc:
        raise ConfigError(f"{target}: cannot read the config: {exc.strerror or exc}") from None

    old_data, _, problems = _parse(old_bytes, str(target))
    if old_data is None:
        raise ConfigProblems(problems + [f"{target}: fix these first; nothing was changed"])
    old_text = old_bytes.decode("utf-8")
    old_table = old_data.get(spec.table)
    present = isinstance(old_table, dict) and spec.name in old_table
    new_text = _edit_text(old_text, spec, value, present=present)
    config, problems = _check(new_text, str(target))
    if config is None:
        raise ConfigProblems(problems)
    new_data = tomllib.loads(new_text.removeprefix("\ufeff"))
    wanted, _ = _coerce(spec, value)
    if get_value(config, key) != wanted or _without(new_data, spec) != _without(old_data, spec):
        raise ConfigError(f"cannot change {key} in {target} without touching other values; edit it by hand")
    _write_atomically(real, new_text.encode("utf-8"), old_stat)
    return dataclasses.replace(config, path=target)


def _write_atomically(target: Path, data: bytes, old_stat: os.stat_result | None) -> None:
    """The edited config replaces the old one whole, keeping its mode and owner (root writes, the service reads)."""
    if old_stat is None:
        mode, owner = NEW_FILE_MODE, None
    else:
        mode, owner = stat.S_IMODE(old_stat.st_mode), (old_stat.st_uid, old_stat.st_gid)
    try:
        write_atomic(target, data, mode=mode, durable=True, owner=owner)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the config: {exc.strerror or exc} (nothing was changed; try sudo)") from None


def main() -> None:
    """`python -m walkcoach.device.config > systemd/config.example.toml` regenerates the example config."""
    print(example_config_text(), end="")


if __name__ == "__main__":
    main()
