"""Replaying a recording through the coach: ``walkcoach replay FILE``.

Two kinds of file, told apart by their first line:

**walkcoach recording v1** (``device.recording``): body-frame gravity and
linear acceleration exactly as the coach saw them, replayed sample for sample
(resampled only if ``--rate`` asks for another rate), with the button marks,
so a replay reproduces the live run's bouts, steps and cues.

**Plain CSV** from any lower-back accelerometer:

- an optional run of ``#`` comment lines, then one header line, then one row
  per sample; comma-separated (a header without commas but with ``;`` or tabs
  sets that delimiter);
- columns, found by header name (case-insensitive; other columns are ignored
  with a warning):

  ====================  ================================================
  time, seconds         ``t``, ``time``, ``time_s``, ``timestamp``, ``timestamp_s``
  acceleration          ``ax ay az``, ``acc_x``..., ``accx``..., ``accel_x``...,
  (gravity included)    ``acceleration_x``...; m/s² (``--units g`` for g)
  angular rate,         ``gx gy gz``, ``gyr_x``..., ``gyro_x``..., ``gyrx``...,
  optional              ``gyrox``...; rad/s
  ====================  ================================================

- 25 to 200 samples per second (from the median time step), resampled to the
  loop rate (``--rate``, default the configured loop rate) by linear
  interpolation. A gap in time of up to 1 s is bridged by interpolation (with a
  warning); a longer one is left as a hole, which the coach treats like a
  sensor drop-out.

A bad file gets a ``RecordingError`` naming the line and what is wrong: a
missing or duplicated column, a row with the wrong number of fields, text or
NaN where a number belongs, time that stands still or goes backwards, a
sample rate out of range, acceleration that cannot include gravity, an empty
file.

The sensor's axes of a plain CSV are unknown, so the body frame is estimated:

1. Gravity: the complementary filter of gyro and accelerometer when the gyro
   is there (time constant 2 s, run forwards and backwards and averaged, so
   no lag), else a zero-phase 0.4 Hz low-pass of the total acceleration (gait
   is at 1-2.5 Hz; slower trunk motion goes into "gravity", which mostly
   affects the lean's fast wobble, not steps). Linear acceleration is total
   minus that.
2. Up: ``--upright first-still`` takes the mean gravity direction of the first
   still period (>= 2 s, every sample's linear acceleration < 0.6 m/s², the
   gravity direction within ~2°), and fails if there is none. ``auto`` (the
   default) takes the first still period whose direction is within 35° of the
   walking upright (so a sensor lying on a table before it is worn is
   skipped), else the median gravity direction while walking.
3. Forward: at each step the pelvis brakes after heel strike and speeds up in
   the second half of single support, so forward acceleration leads vertical
   acceleration by about a quarter step (inverted pendulum; Zijlstra & Hof
   2003), while side-to-side acceleration repeats once per *stride* and
   averages out against the per-step vertical signal. Forward is therefore
   the horizontal direction of the mean product of horizontal acceleration and
   the rate of change of vertical acceleration over the walking found (both
   low-passed at 3 Hz). With no walking, forward is taken opposite to where
   gravity moves when the trunk tilts most (forward bends are far more
   common than backward ones), with a warning.

   Limits: it needs some walking (>= ~20 steps) for a confident direction;
   about ±10° on the simulator; turns, stairs, a limp or walking backwards
   blur it; a belt worn on the front of the body is fine (the sign comes from
   the data, not the mount), a sensor on a limb is not. The method was checked
   against the simulator, whose gait model encodes the same physiology, so a
   real recording with known orientation should confirm it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hal.clock import VirtualClock
from hal.errors import EndOfStream
from hal.types import ImuSample

from .coach import Coach
from .feedback import CuePlayer
from .events import EventKind
from .loop import CoachLoop
from .recording import MAGIC, RecordingError
from .settings import CoachSettings, DeviceSettings
from .summary import RunSummary

log = logging.getLogger("walkcoach.replay")

G_MS2 = 9.80665
MIN_RATE_HZ, MAX_RATE_HZ = 25.0, 200.0
RATE_SLACK = 0.02  # a median step a little off (clock jitter) still counts as in range
GAP_FACTOR = 2.5  # a time step longer than this many median steps is a gap
MAX_BRIDGED_GAP_S = 1.0
MIN_SAMPLES = 10
GRAVITY_CORNER_HZ = 0.4
COMPLEMENTARY_TIME_CONSTANT_S = 2.0
GAIT_BAND_HZ = 3.0
STILL_S = 2.0
STILL_MAX_LINEAR_MS2 = 0.6
STILL_MIN_RESULTANT = math.cos(math.radians(2.0))
UPRIGHT_MAX_FROM_WALKING_DEG = 35.0
MAX_GYRO_RADS = 35.0  # ~2000 deg/s, the usual full scale: beyond it the column is in deg/s
MAX_LISTED_WARNINGS = 5
ZERO3 = (0.0, 0.0, 0.0)

TIME_NAMES = ("t", "time", "time_s", "timestamp", "timestamp_s")
ACC_PREFIXES = ("a", "acc", "acc_", "accel", "accel_", "acceleration_")
GYRO_PREFIXES = ("g", "gyr", "gyr_", "gyro", "gyro_")


def _aliases() -> dict[str, str]:
    names = {name: "t" for name in TIME_NAMES}
    for axis in "xyz":
        names.update({prefix + axis: "a" + axis for prefix in ACC_PREFIXES})
        names.update({prefix + axis: "w" + axis for prefix in GYRO_PREFIXES})
    return names


COLUMN_ALIASES = _aliases()


@dataclass
class FrameEstimate:
    """How a plain CSV's sensor axes were turned into the body frame."""

    sensor_to_body: np.ndarray  # 3x3, rows: forward, left, up in sensor coordinates
    upright_method: str
    forward_method: str
    forward_confidence: float  # 0..1: correlation behind the forward direction (0 if not from walking)
    gravity_method: str

    def to_json(self) -> dict:
        return {
            "sensor_to_body": np.round(self.sensor_to_body, 4).tolist(),
            "upright": self.upright_method,
            "forward": self.forward_method,
            "forward_confidence": round(self.forward_confidence, 3),
            "gravity": self.gravity_method,
        }


@dataclass
class Recording:
    """Samples ready for the coach: body frame, regular rate (holes allowed), times from the file."""

    path: str
    kind: str  # "walkcoach-v1" or "csv"
    rate_hz: float
    source_rate_hz: float
    t_s: np.ndarray  # (N,)
    gravity_ms2: np.ndarray  # (N, 3) body frame, points up
    linear_acc_ms2: np.ndarray  # (N, 3) body frame
    gyro_rads: np.ndarray | None = None  # (N, 3) body frame, if the file had it
    meta: dict[str, str] = field(default_factory=dict)
    button: list[tuple[float, bool]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frame: FrameEstimate | None = None

    @property
    def duration_s(self) -> float:
        if len(self.t_s) == 0:
            return 0.0
        return float(self.t_s[-1] - self.t_s[0]) + 1.0 / self.rate_hz


# -- reading lines ------------------------------------------------------------------
def _lines(path: Path):
    """(line number, text, complete) for every line, decoded strictly as UTF-8.

    ``complete`` is False only for a last line without its newline: a recording
    cut off by a kill or a power cut."""
    try:
        f = open(path, "rb")
    except IsADirectoryError:
        raise RecordingError("is a directory, not a recording", path=path) from None
    except OSError as exc:
        raise RecordingError(f"cannot read: {exc.strerror or exc}", path=path) from None
    with f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RecordingError(
                    f"not text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}", path=path, line=number
                ) from None
            if number == 1:
                text = text.lstrip("\ufeff")
            yield number, text.rstrip("\r\n"), raw.endswith(b"\n")


def _first_content_line(lines, path: Path, missing: str = "empty file", line: int | None = None) -> tuple[int, str]:
    for number, text, _ in lines:
        if text.strip():
            return number, text
    raise RecordingError(missing, path=path, line=line)


_BUTTON_MARK = re.compile(r"#\s*button\s+t=(\S+)\s+pressed=([01])\s*$")


class _Table:
    """Rows of chosen numeric columns, with the line number of each row, validated strictly."""

    def __init__(self, path: Path, names: list[str], indices: list[int], n_fields: int, delimiter: str) -> None:
        self.path = path
        self.names = names
        self.indices = indices
        self.n_fields = n_fields
        self.delimiter = delimiter
        self.rows: list[list[float]] = []
        self.line_numbers: list[int] = []
        self.marks: list[tuple[int, str]] = []
        self.cut_off_line: int | None = None

    def add_all(self, lines) -> None:
        for number, text, complete in lines:
            if complete:
                self.add(number, text)
                continue
            try:
                self.add(number, text)
            except RecordingError:
                self.cut_off_line = number  # the last line, cut off mid-write: dropped with a warning

    def add(self, number: int, text: str) -> None:
        if not text.strip():
            return
        if text.lstrip().startswith("#"):
            self.marks.append((number, text.strip()))
            return
        parts = text.split(self.delimiter)
        if len(parts) != self.n_fields:
            raise RecordingError(
                f"{len(parts)} field(s), the header has {self.n_fields}", path=self.path, line=number
            )
        try:
            self.rows.append([float(parts[i]) for i in self.indices])
        except ValueError:
            for name, i in zip(self.names, self.indices):
                field_text = parts[i].strip()
                try:
                    float(field_text)
                except ValueError:
                    what = "is empty" if not field_text else f"{_shown(field_text)} is not a number"
                    raise RecordingError(f"column {name!r} {what}", path=self.path, line=number) from None
            raise
        self.line_numbers.append(number)

    def array(self, header_line: int, *, repeats_allowed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        if not self.rows:
            raise RecordingError("no samples after the header", path=self.path, line=header_line)
        values = np.asarray(self.rows, dtype=float)
        lines = np.asarray(self.line_numbers)
        finite = np.isfinite(values)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise RecordingError(
                f"column {self.names[col]!r} is {float(values[row, col])!r}, not a finite number", path=self.path, line=int(lines[row])
            )
        if len(values) < MIN_SAMPLES:
            raise RecordingError(f"only {len(values)} sample(s); at least {MIN_SAMPLES} are needed", path=self.path)
        t = values[:, 0]
        steps = np.diff(t)
        bad = np.flatnonzero(steps < 0.0 if repeats_allowed else steps <= 0.0)
        if len(bad):
            i = bad[0] + 1
            if steps[bad[0]] == 0.0:
                why = f"time {t[i]:g} s repeats the previous sample's (line {lines[i - 1]})"
            else:
                why = f"time goes backwards: {t[i]:g} s after {t[i - 1]:g} s (line {lines[i - 1]})"
            raise RecordingError(why, path=self.path, line=int(lines[i]))
        return values, lines


def _note_cut_off(table: _Table, warnings: list[str]) -> None:
    if table.cut_off_line is not None:
        warnings.append(f"line {table.cut_off_line}: the last line is incomplete (recording cut off) and was dropped")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:27] + "...")


# -- the two formats ----------------------------------------------------------------
def read_recording(
    path: Path | str,
    *,
    units: str = "ms2",
    upright: str = "auto",
    rate_hz: float | None = None,
    default_rate_hz: float = 100.0,
    settings: CoachSettings | None = None,
) -> Recording:
    """Read, validate and prepare a recording for the coach. Raises RecordingError."""
    path = Path(path)
    if units not in ("ms2", "g"):
        raise RecordingError(f"units must be ms2 or g, not {units!r}", path=path)
    if upright not in ("auto", "first-still"):
        raise RecordingError(f"upright must be auto or first-still, not {upright!r}", path=path)
    if rate_hz is not None and not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise RecordingError(f"--rate {rate_hz:g} Hz is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz", path=path)
    lines = _lines(path)
    number, first = _first_content_line(lines, path)
    if first.startswith(MAGIC):
        return _read_v1(path, lines, number, first, rate_hz=rate_hz, units=units)
    return _read_csv(
        path, lines, number, first, units=units, upright=upright, rate_hz=rate_hz or default_rate_hz,
        settings=settings or CoachSettings(),
    )


def _parse_meta(path: Path, number: int, first: str) -> dict[str, str]:
    meta = {}
    for token in first[len(MAGIC) :].split():
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise RecordingError(f"header fact {token!r} is not key=value", path=path, line=number)
        meta[key] = value
    if "rate_hz" not in meta:
        raise RecordingError("the header has no rate_hz", path=path, line=number)
    try:
        rate = float(meta["rate_hz"])
    except ValueError:
        raise RecordingError(f"rate_hz={meta['rate_hz']!r} is not a number", path=path, line=number) from None
    if not MIN_RATE_HZ * (1 - RATE_SLACK) <= rate <= MAX_RATE_HZ * (1 + RATE_SLACK):
        raise RecordingError(f"rate_hz={rate:g} is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz", path=path, line=number)
    if meta.get("frame", "body") != "body" or meta.get("units", "ms2") != "ms2":
        raise RecordingError("only frame=body units=ms2 recordings can be replayed", path=path, line=number)
    return meta


def _read_v1(path: Path, lines, number: int, first: str, *, rate_hz: float | None, units: str) -> Recording:
    meta = _parse_meta(path, number, first)
    warnings: list[str] = []
    if units != "ms2":
        warnings.append("--units applies to plain CSV files; a walkcoach recording is in m/s²")
    header_number, header = _first_content_line(lines, path, "no column header after the first line", number)
    names = [name.strip().lower() for name in header.split(",")]
    if names != ["t", "gx", "gy", "gz", "ax", "ay", "az"]:
        raise RecordingError(
            "expected the column header t,gx,gy,gz,ax,ay,az of a walkcoach v1 recording", path=path, line=header_number
        )
    table = _Table(path, names, list(range(7)), 7, ",")
    table.add_all(lines)
    # a loop that fell behind catches up with ticks at one clock time: the coach saw those samples, so they stay
    values, line_numbers = table.array(header_number, repeats_allowed=True)
    _note_cut_off(table, warnings)
    t = values[:, 0]
    source_rate_hz = _rate_from_steps(t, path)
    button = []
    for mark_line, text in table.marks:
        if text.startswith("# button") or text.startswith("#button"):
            m = _BUTTON_MARK.match(text)
            if m is None:
                raise RecordingError(f"malformed button mark {_shown(text)}", path=path, line=mark_line)
            try:
                button.append((float(m.group(1)), m.group(2) == "1"))
            except ValueError:
                raise RecordingError(f"button mark time {m.group(1)!r} is not a number", path=path, line=mark_line) from None
    gravity, linear = values[:, 1:4], values[:, 4:7]
    rate = float(meta["rate_hz"])
    if abs(source_rate_hz - rate) > 0.05 * rate:
        warnings.append(f"the header says rate_hz={rate:g} but samples come at {source_rate_hz:.1f} Hz")
    holes = _gaps(t, line_numbers, source_rate_hz, warnings, bridge=False)
    if rate_hz is not None and abs(rate_hz - source_rate_hz) > 1e-6 * source_rate_hz:
        last_of_each_time = np.append(np.diff(t) > 0, True)  # interpolation needs one sample per time
        t, gravity, linear = t[last_of_each_time], gravity[last_of_each_time], linear[last_of_each_time]
        t_new, (gravity, linear), _ = _resample(t, (gravity, linear), rate_hz, holes)
        gravity = gravity * (G_MS2 / np.linalg.norm(gravity, axis=1, keepdims=True))
        t, rate = t_new, rate_hz
    return Recording(
        path=str(path), kind="walkcoach-v1", rate_hz=rate, source_rate_hz=source_rate_hz, t_s=t,
        gravity_ms2=gravity, linear_acc_ms2=linear, meta=meta, button=button, warnings=warnings,
    )


def _read_csv(path: Path, lines, number: int, first: str, *, units: str, upright: str, rate_hz: float, settings: CoachSettings) -> Recording:
    header_number, header = number, first
    while header.lstrip().startswith("#"):
        header_number, header = _first_content_line(lines, path, "no header line, only comments", header_number)
    delimiter = "," if "," in header else ";" if ";" in header else "\t" if "\t" in header else ","
    raw_names = [name.strip().strip('"').strip("'") for name in header.split(delimiter)]
    columns: dict[str, int] = {}
    ignored = []
    for index, raw in enumerate(raw_names):
        canonical = COLUMN_ALIASES.get(raw.lower())
        if canonical is None:
            ignored.append(raw or f"#{index + 1}")
            continue
        if canonical in columns:
            raise RecordingError(
                f"columns {raw_names[columns[canonical]]!r} and {raw!r} are the same quantity", path=path, line=header_number
            )
        columns[canonical] = index
    needed = ["t", "ax", "ay", "az"]
    missing = [name for name in needed if name not in columns]
    if missing:
        what = ", ".join({"t": "time (t)"}.get(name, name) for name in missing)
        raise RecordingError(
            f"missing column(s) {what}; the header needs t, ax, ay, az (optional gx, gy, gz), "
            f"found {', '.join(repr(n) for n in raw_names)}",
            path=path, line=header_number,
        )
    gyro_found = [name for name in ("wx", "wy", "wz") if name in columns]
    if gyro_found and len(gyro_found) != 3:
        raise RecordingError(
            "angular rate needs all three columns gx, gy, gz or none", path=path, line=header_number
        )
    order = needed + gyro_found
    shown = {"wx": "gx", "wy": "gy", "wz": "gz"}
    table = _Table(path, [shown.get(n, n) for n in order], [columns[n] for n in order], len(raw_names), delimiter)
    table.add_all(lines)
    values, line_numbers = table.array(header_number)
    warnings = []
    _note_cut_off(table, warnings)
    if ignored:
        warnings.append(f"line {header_number}: ignoring column(s) {', '.join(ignored)}")
    t = values[:, 0]
    acc = values[:, 1:4] * (G_MS2 if units == "g" else 1.0)
    gyro = values[:, 4:7] if gyro_found else None
    source_rate_hz = _rate_from_steps(t, path)
    _check_units(acc, gyro, units, path)
    holes = _gaps(t, line_numbers, source_rate_hz, warnings, bridge=True)
    arrays = (acc,) if gyro is None else (acc, gyro)
    t_grid, resampled, segment = _resample(t, arrays, rate_hz, holes)
    acc = resampled[0]
    gyro = resampled[1] if gyro is not None else None
    gravity_raw = np.empty_like(acc)
    for seg in np.unique(segment):
        inside = segment == seg
        if gyro is not None:
            gravity_raw[inside] = _complementary_gravity(acc[inside], gyro[inside], rate_hz)
        else:
            gravity_raw[inside] = zero_phase_lowpass(acc[inside], rate_hz, GRAVITY_CORNER_HZ)
    norm = np.linalg.norm(gravity_raw, axis=1, keepdims=True)
    gravity = gravity_raw * (G_MS2 / np.maximum(norm, 1e-9))  # as the BNO055 reports it: |g| = 9.807
    linear = acc - gravity  # the total stays what was measured; a scale error is a slow bias the coach removes
    frame = estimate_frame(t_grid, gravity, linear, rate_hz, segment, upright=upright, settings=settings, path=path, warnings=warnings)
    frame.gravity_method = "gyro+accelerometer complementary filter" if gyro is not None else f"{GRAVITY_CORNER_HZ:g} Hz zero-phase low-pass"
    m = frame.sensor_to_body.T
    return Recording(
        path=str(path), kind="csv", rate_hz=rate_hz, source_rate_hz=source_rate_hz, t_s=t_grid,
        gravity_ms2=gravity @ m, linear_acc_ms2=linear @ m, gyro_rads=None if gyro is None else gyro @ m,
        meta={}, warnings=warnings, frame=frame,
    )


def _rate_from_steps(t: np.ndarray, path: Path) -> float:
    steps = np.diff(t)
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise RecordingError("time never advances", path=path)
    median_s = float(np.median(steps))
    rate = 1.0 / median_s
    if not MIN_RATE_HZ * (1 - RATE_SLACK) <= rate <= MAX_RATE_HZ * (1 + RATE_SLACK):
        raise RecordingError(
            f"sample rate {rate:.3g} Hz (median time step {median_s:.4g} s) is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz"
            + (" (is t in milliseconds? it must be seconds)" if rate < MIN_RATE_HZ and median_s >= 1.0 else ""),
            path=path,
        )
    return rate


def _check_units(acc: np.ndarray, gyro: np.ndarray | None, units: str, path: Path) -> None:
    magnitude = float(np.median(np.linalg.norm(acc, axis=1)))
    if not 0.5 * G_MS2 <= magnitude <= 1.5 * G_MS2:
        if units == "ms2" and 0.5 <= magnitude <= 1.5:
            hint = ": it looks like g, use --units g"
        elif units == "g" and 0.5 * G_MS2 <= magnitude / G_MS2 <= 1.5 * G_MS2:
            hint = ": it looks like m/s² already, leave out --units g"
        elif magnitude < 0.5:
            hint = ": acceleration must include gravity (is this linear acceleration only?)"
        else:
            hint = ""
        raise RecordingError(
            f"median |acceleration| is {magnitude:.3g} m/s², not about 9.8 (gravity){hint}", path=path
        )
    if gyro is not None:
        peak = float(np.max(np.abs(gyro)))
        if peak > MAX_GYRO_RADS:
            raise RecordingError(
                f"angular rate reaches {peak:.0f}: that looks like deg/s; gx, gy, gz must be rad/s", path=path
            )


def _gaps(t: np.ndarray, line_numbers: np.ndarray, rate_hz: float, warnings: list[str], *, bridge: bool) -> list[tuple[float, float]]:
    """Find gaps; returns the holes (gaps not bridged) as (last time before, first time after)."""
    steps = np.diff(t)
    gap_at = np.flatnonzero(steps > GAP_FACTOR / rate_hz)
    holes = []
    notes = []
    for i in gap_at:
        gap_s = float(steps[i])
        if bridge and gap_s <= MAX_BRIDGED_GAP_S:
            notes.append(f"line {line_numbers[i + 1]}: {gap_s:.2f} s gap bridged by interpolation")
        elif bridge:
            holes.append((float(t[i]), float(t[i + 1])))
            notes.append(f"line {line_numbers[i + 1]}: {gap_s:.2f} s without samples, left as a hole")
        else:  # a walkcoach recording: the live coach had the same hole; only a long one is worth a word
            holes.append((float(t[i]), float(t[i + 1])))
            if gap_s > MAX_BRIDGED_GAP_S:
                notes.append(f"line {line_numbers[i + 1]}: {gap_s:.2f} s without samples (a sensor drop-out in the live run)")
    warnings.extend(notes[:MAX_LISTED_WARNINGS])
    if len(notes) > MAX_LISTED_WARNINGS:
        warnings.append(f"... and {len(notes) - MAX_LISTED_WARNINGS} more gap(s)")
    return holes


def _resample(t: np.ndarray, arrays, rate_hz: float, holes: list[tuple[float, float]]):
    """Linear interpolation onto t0 + k/rate_hz, skipping grid points inside holes."""
    n = int(math.floor((t[-1] - t[0]) * rate_hz + 1e-6)) + 1
    grid = t[0] + np.arange(n) / rate_hz
    keep = np.ones(n, dtype=bool)
    segment = np.zeros(n, dtype=int)
    for k, (before_s, after_s) in enumerate(holes, start=1):
        keep &= ~((grid > before_s) & (grid < after_s))
        segment[grid >= after_s] = k
    grid, segment = grid[keep], segment[keep]
    out = [np.column_stack([np.interp(grid, t, a[:, j]) for j in range(a.shape[1])]) for a in arrays]
    return grid, out, segment


# -- signal processing ------------------------------------------------------------------
def zero_phase_lowpass(x: np.ndarray, rate_hz: float, corner_hz: float) -> np.ndarray:
    """Zero-phase low-pass along axis 0: a 2nd-order Butterworth run forwards and backwards
    (gain 1/(1+(f/fc)^4)), applied in the frequency domain with mirrored ends."""
    n = x.shape[0]
    pad = min(n - 1, int(5.0 * rate_hz / max(corner_hz, 0.1)))
    if pad > 0:
        x = np.concatenate([x[pad:0:-1], x, x[-2 : -pad - 2 : -1]], axis=0)
    spectrum = np.fft.rfft(x, axis=0)
    freq = np.fft.rfftfreq(x.shape[0], 1.0 / rate_hz)
    gain = 1.0 / (1.0 + (freq / corner_hz) ** 4)
    y = np.fft.irfft(spectrum * gain.reshape(-1, *[1] * (x.ndim - 1)), n=x.shape[0], axis=0)
    return y[pad : pad + n]


def _complementary_pass(acc: np.ndarray, gyro: np.ndarray, dt_s: float, tau_s: float) -> np.ndarray:
    """Gravity (sensor frame) tracked by the gyro, pulled towards the accelerometer with time constant tau."""
    alpha = dt_s / (tau_s + dt_s)
    keep = 1.0 - alpha
    head = acc[: max(1, int(round(tau_s / dt_s)))].mean(axis=0)
    gx, gy, gz = (float(v) for v in head)
    out = np.empty_like(acc)
    for k, ((ax, ay, az), (wx, wy, wz)) in enumerate(zip(acc.tolist(), gyro.tolist())):
        # dg/dt = g x w for a world-fixed vector seen from the rotating sensor
        gx, gy, gz = (
            gx + dt_s * (gy * wz - gz * wy),
            gy + dt_s * (gz * wx - gx * wz),
            gz + dt_s * (gx * wy - gy * wx),
        )
        gx = keep * gx + alpha * ax
        gy = keep * gy + alpha * ay
        gz = keep * gz + alpha * az
        out[k] = (gx, gy, gz)
    return out


def _complementary_gravity(acc: np.ndarray, gyro: np.ndarray, rate_hz: float) -> np.ndarray:
    dt_s = 1.0 / rate_hz
    forward = _complementary_pass(acc, gyro, dt_s, COMPLEMENTARY_TIME_CONSTANT_S)
    backward = _complementary_pass(acc[::-1], -gyro[::-1], dt_s, COMPLEMENTARY_TIME_CONSTANT_S)[::-1]
    return 0.5 * (forward + backward)


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _walking_mask(t: np.ndarray, gravity: np.ndarray, linear: np.ndarray, rate_hz: float, settings: CoachSettings) -> tuple[np.ndarray, int]:
    """Samples inside the bouts the coach itself finds (steps need no frame: vertical is along gravity); and their steps."""
    coach = Coach(settings, rate_hz=rate_hz, cap_s=float("inf"))
    bouts = []
    zero = ZERO3
    for t_s, g, a in zip(t.tolist(), map(tuple, gravity.tolist()), map(tuple, linear.tolist())):
        for event in coach.update(ImuSample(t_s, g, a, zero, 3)):
            if event.kind is EventKind.WALK_ENDED and event.bout is not None:
                bouts.append(event.bout)
    bouts.extend(e.bout for e in coach.finish(float(t[-1])) if e.kind is EventKind.WALK_ENDED and e.bout is not None)
    mask = np.zeros(len(t), dtype=bool)
    for bout in bouts:
        mask |= (t >= bout.start_s) & (t <= bout.end_s)
    return mask, sum(bout.steps for bout in bouts)


def _still_periods(gravity: np.ndarray, linear: np.ndarray, rate_hz: float, segment: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of stillness lasting at least STILL_S."""
    n = len(gravity)
    w = max(2, int(round(STILL_S * rate_hz)))
    if n < w:
        return []
    quiet = (np.linalg.norm(linear, axis=1) < STILL_MAX_LINEAR_MS2).astype(float)
    unit = _unit_rows(gravity)
    c_quiet = np.concatenate([[0.0], np.cumsum(quiet)])
    c_unit = np.vstack([np.zeros((1, 3)), np.cumsum(unit, axis=0)])
    starts = np.arange(n - w + 1)
    all_quiet = (c_quiet[starts + w] - c_quiet[starts]) == w
    resultant = np.linalg.norm(c_unit[starts + w] - c_unit[starts], axis=1) / w
    same_segment = segment[starts] == segment[starts + w - 1]
    ok = all_quiet & (resultant >= STILL_MIN_RESULTANT) & same_segment
    periods = []
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return []
    run_start = prev = idx[0]
    for j in idx[1:]:
        if j != prev + 1:
            periods.append((int(run_start), int(prev + w)))
            run_start = j
        prev = j
    periods.append((int(run_start), int(prev + w)))
    return periods


def estimate_frame(
    t: np.ndarray,
    gravity: np.ndarray,
    linear: np.ndarray,
    rate_hz: float,
    segment: np.ndarray,
    *,
    upright: str,
    settings: CoachSettings,
    path: Path | str = "",
    warnings: list[str] | None = None,
) -> FrameEstimate:
    """Up and forward of a sensor with unknown axes; see the module docstring."""
    warnings = [] if warnings is None else warnings
    unit_g = _unit_rows(gravity)
    vertical = np.sum(linear * unit_g, axis=1)
    walking, steps = _walking_mask(t, gravity, linear, rate_hz, settings)
    walking_up = _unit(np.median(unit_g[walking], axis=0)) if walking.any() else None
    periods = _still_periods(gravity, linear, rate_hz, segment)

    def still_up(period):
        a, b = period
        return _unit(unit_g[a:b].sum(axis=0))

    up = None
    if upright == "first-still":
        if not periods:
            raise RecordingError(
                f"no still period of {STILL_S:g} s to take the upright from (try --upright auto)", path=path
            )
        up = still_up(periods[0])
        upright_method = f"first still period at {t[periods[0][0]] - t[0]:.1f} s"
    else:
        for period in periods:
            candidate = still_up(period)
            if walking_up is None or math.degrees(math.acos(min(1.0, float(candidate @ walking_up)))) <= UPRIGHT_MAX_FROM_WALKING_DEG:
                up = candidate
                upright_method = f"first still period at {t[period[0]] - t[0]:.1f} s"
                break
        if up is None:
            if walking_up is not None:
                up = walking_up
                upright_method = "median gravity direction while walking"
            else:
                up = _unit(np.median(unit_g, axis=0))
                upright_method = "median gravity direction (no still period, no walking)"
                warnings.append("no still standing and no walking found: upright is the median gravity direction")

    forward, confidence, forward_method = _forward(t, unit_g, linear, vertical, up, walking, steps, rate_hz, warnings)
    left = np.cross(up, forward)
    return FrameEstimate(
        sensor_to_body=np.vstack([forward, left, up]),
        upright_method=upright_method,
        forward_method=forward_method,
        forward_confidence=confidence,
        gravity_method="",
    )


def _horizontal(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - np.outer(v @ up, up) if v.ndim == 2 else v - (v @ up) * up


def _forward(t, unit_g, linear, vertical, up, walking, steps, rate_hz, warnings):
    if walking.sum() > 2 * rate_hz:
        horizontal = linear - vertical[:, None] * unit_g
        vertical_band = zero_phase_lowpass(vertical, rate_hz, GAIT_BAND_HZ)
        horizontal_band = zero_phase_lowpass(horizontal, rate_hz, GAIT_BAND_HZ)
        jerk = np.gradient(vertical_band, 1.0 / rate_hz)
        h, j = horizontal_band[walking], jerk[walking]
        d = _horizontal((h * j[:, None]).sum(axis=0), up)
        confidence = float(np.linalg.norm(d) / math.sqrt(max((h**2).sum() * (j**2).sum(), 1e-30)))
        if np.linalg.norm(d) > 0:
            if steps < 20 or confidence < 0.2:
                warnings.append(
                    f"forward direction uncertain ({steps} steps of walking, confidence {confidence:.2f}): lean may be off"
                )
            return _unit(d), confidence, f"forward acceleration leads vertical, over {steps} steps of walking"
    tilt = _horizontal(unit_g, up)
    tilted = np.linalg.norm(tilt, axis=1) > math.sin(math.radians(10.0))
    if tilted.any():
        warnings.append("no walking found: forward is taken from the direction the trunk tilts most (assumed forward bends)")
        return _unit(-tilt[tilted].sum(axis=0)), 0.0, "opposite to where gravity moves in the largest tilts"
    warnings.append("no walking and no tilting found: forward is arbitrary, lean cannot be measured")
    axis = np.eye(3)[int(np.argmin(np.abs(up)))]
    return _unit(_horizontal(axis, up)), 0.0, "arbitrary (no walking, no tilt)"


# -- running the coach over it ------------------------------------------------------------
class ReplayImu:
    """An Imu that yields the recording's samples one per read, then raises EndOfStream."""

    def __init__(self, recording: Recording, clock: VirtualClock, *, t0_s: float = 0.0) -> None:
        self._clock = clock
        self._t = (recording.t_s - t0_s).tolist()
        self._gravity = list(map(tuple, recording.gravity_ms2.tolist()))
        self._linear = list(map(tuple, recording.linear_acc_ms2.tolist()))
        self._gyro = list(map(tuple, recording.gyro_rads.tolist())) if recording.gyro_rads is not None else None
        self._i = 0
        self._n = len(self._t)

    def read(self) -> ImuSample:
        i = self._i
        if i >= self._n:
            raise EndOfStream("end of the recording")
        self._i = i + 1
        t_s = self._t[i]
        self._clock.sleep_until(t_s)
        return ImuSample(t_s, self._gravity[i], self._linear[i], self._gyro[i] if self._gyro else ZERO3, 3)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class ReplayButton:
    """A Button pressed and released at the recorded marks, in the replay clock's time."""

    def __init__(self, marks: list[tuple[float, bool]], clock: VirtualClock, *, t0_s: float = 0.0) -> None:
        self._marks = sorted((t - t0_s, pressed) for t, pressed in marks)
        self._clock = clock
        self._i = 0
        self._pressed = False

    @property
    def is_pressed(self) -> bool:
        now = self._clock.monotonic() + 1e-9
        marks = self._marks
        while self._i < len(marks) and marks[self._i][0] <= now:
            self._pressed = marks[self._i][1]
            self._i += 1
        return self._pressed

    def close(self) -> None:
        pass


@dataclass
class ReplayResult:
    summary: RunSummary
    duration_s: float
    cap_s: float
    elapsed_s: float
    t0_s: float
    coach: Coach
    loop: CoachLoop

    @property
    def speed_x(self) -> float:
        return self.duration_s / self.elapsed_s if self.elapsed_s > 0 else float("inf")


def replay(
    recording: Recording,
    settings: DeviceSettings,
    *,
    cap_s: float | None = None,
    today: dt.date | None = None,
    sinks=(),
    from_zero: bool = False,
) -> ReplayResult:
    """Run the coach over ``recording`` in virtual time through ``CoachLoop``.

    The cap is ``cap_s``, else the one the recording was made with (its
    ``cap_s`` fact), else the plan's cap for ``today``. Times are the
    recording's own, as the live run printed them; with ``from_zero`` they
    start at 0 at the first sample (``t0_s`` is what was subtracted).
    """
    if cap_s is None:
        try:
            cap_s = float(recording.meta["cap_s"])
        except (KeyError, ValueError):
            cap_s = settings.coach.plan.cap_s(today or dt.date.today())
    rate_hz = recording.rate_hz
    t0_s = float(recording.t_s[0]) if from_zero and len(recording.t_s) else 0.0
    clock = VirtualClock(float(recording.t_s[0]) - t0_s if len(recording.t_s) else 0.0)
    coach = Coach(settings.coach, rate_hz=rate_hz, cap_s=cap_s)
    summary = RunSummary(hold_s=settings.coach.lean.hold_s)
    button = ReplayButton(recording.button, clock, t0_s=t0_s) if recording.button else None
    loop = CoachLoop(
        imu=ReplayImu(recording, clock, t0_s=t0_s),
        coach=coach,
        player=CuePlayer({}),
        clock=clock,
        rate_hz=rate_hz,
        fault_grace_s=settings.imu.fault_grace_s,
        sinks=[summary, *sinks],
        button=button,
        button_hold_s=settings.loop.button_hold_s,
    )
    started = time.perf_counter()
    loop.run()
    elapsed_s = time.perf_counter() - started
    return ReplayResult(summary, recording.duration_s, cap_s, elapsed_s, t0_s, coach, loop)


def replay_json(recording: Recording, result: ReplayResult) -> dict:
    """The `walkcoach sim --json` keys (without ``truth``), plus what the replay knows about its file."""
    out = result.summary.to_json(result.duration_s)
    out["scenario"] = None
    out["seed"] = None
    out["cap_s"] = result.cap_s
    out["speed_x"] = round(result.speed_x, 1)
    out["recording"] = recording.path
    out["format"] = recording.kind
    out["rate_hz"] = recording.rate_hz
    out["source_rate_hz"] = round(recording.source_rate_hz, 2)
    out["t0_s"] = round(result.t0_s, 4)
    out["warnings"] = list(recording.warnings)
    if recording.frame is not None:
        out["frame"] = recording.frame.to_json()
    return out
