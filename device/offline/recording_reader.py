"""Reading a recording for replay: a walkcoach v1 recording or a plain CSV, checked, resampled and put in the body frame.

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

- 25 to 200 samples per second (from the median time step), replayed at its
  own rate when that is from ``NATIVE_MIN_RATE_HZ`` (50 Hz) up to the loop
  rate (the coach's detectors take any rate; interpolating a 50 Hz file up to
  100 Hz adds samples, not information, and doubles the replay's cost), else
  resampled to the loop rate; ``--rate`` asks for another. Resampling (also
  onto the file's own rate, to even out clock jitter) is by linear
  interpolation. A gap in time of up to 1 s is bridged by interpolation (with a
  warning); a longer one, or a jump of the clock, is left as a hole, which the
  coach treats like a sensor drop-out (a bout in progress ends unless steps
  resume soon after); no grid is ever laid over a hole.

A bad file gets a ``RecordingError`` naming the line and what is wrong: a
missing or duplicated column, a row with the wrong number of fields, text or
NaN where a number belongs, time that stands still or goes backwards, a
sample rate out of range, acceleration that cannot include gravity, an empty
file.

**Streaming.** A file is read, checked, resampled, filtered and coached in
chunks (``device.recording_csv``), so memory stays bounded whatever its length:
one chunk of text and arrays (~1 MB of file), the gravity filter's block with
its context (about 33 000 samples plus 2 x 1250, or 2 x 4000 with a gyro), and
the frame window below (``FRAME_WINDOW_S``, 20 minutes: about 10 MB of arrays
at 100 Hz while the frame is estimated, freed once replayed); plus what the
coach and the summary keep per bout and cue. The rate, the units and every
check of today are taken from the first ``PREFIX_ROWS`` rows at once (all of a
file shorter than that, so errors come out in the same order); later rows are
checked chunk by chunk as the replay reaches them. On a terminal, a file
longer than the frame window shows a progress bar on stderr.

The sensor's axes of a plain CSV are unknown, so the body frame is estimated
from the recording's first ``FRAME_WINDOW_S`` (``device.frame``), then the whole
file is replayed in that frame: one coach pass over the file, plus one over that
window to find the walking the frame is taken from. With no walking in it (a
belt left on a table before it is worn), the following windows are searched,
up to ``FRAME_SCAN_LIMIT_S`` in, and the first with walking gives the frame;
the file is then read again from its start.

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
   skipped) — one ending within 3 s of a walk's start if there is one (quiet
   stance before gait; a seated pelvis is within 35° too) — else the median
   gravity direction while walking.
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

import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from walkcoach.device.core.settings import CoachSettings
from walkcoach.device.offline.frame import FrameEstimate, estimate_frame
from walkcoach.device.offline.lowpass import edge_margin, zero_phase_lowpass
from walkcoach.device.offline.recording_csv import Chunk, LineSource, TableParser, TimeOrder, button_marks
from walkcoach.device.shell.recording import MAGIC, RecordingError
from walkcoach.hal.types import G_MS2

__all__ = ["Piece", "Recording", "RecordingError", "fewer_gc_passes", "read_recording", "replay_rate_hz"]

MIN_RATE_HZ, MAX_RATE_HZ = 25.0, 200.0
RATE_SLACK = 0.02  # a median step a little off (clock jitter) still counts as in range
GAP_FACTOR = 2.5  # a time step longer than this many median steps is a gap
MAX_BRIDGED_GAP_S = 1.0
MIN_SAMPLES = 10
# A plain CSV from this rate up to the loop rate replays at its own rate (the coach is checked at 50 and 100 Hz);
# slower ones are interpolated up to the loop rate, faster ones down to it.
NATIVE_MIN_RATE_HZ = 50.0
GRAVITY_CORNER_HZ = 0.4
COMPLEMENTARY_TIME_CONSTANT_S = 2.0
COMPLEMENTARY_MARGIN_TAUS = 20.0  # e^-20 of a cut edge is left: ~2e-8 m/s²
MAX_GYRO_RADS = 35.0  # ~2000 deg/s, the usual full scale: beyond it the column is in deg/s
MAX_LISTED_WARNINGS = 5
PREFIX_ROWS = 65_536  # rows checked at once before anything is replayed: the rate and units come from them
FRAME_WINDOW_S = 20 * 60.0  # the body frame of a plain CSV comes from its first 20 minutes...
FRAME_SCAN_LIMIT_S = 6 * 3600.0  # ...or, with no walking in them, from the first later window with walking
FILTER_BLOCK = 32_768  # samples per gravity-filter block (a 5-smooth FFT with its context)
GC_YOUNG_THRESHOLD = 100_000  # allocations between the collector's young passes while the coach replays (default 700)

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
class Piece:
    """A run of samples ready for the coach: body frame (or sensor frame before the frame is known)."""

    t_s: np.ndarray  # (n,)
    gravity_ms2: np.ndarray  # (n, 3)
    linear_acc_ms2: np.ndarray  # (n, 3)
    gyro_rads: np.ndarray | None = None  # (n, 3)
    segment: int = 0


class Recording:
    """Samples ready for the coach: body frame, regular rate (holes allowed), times from the file.

    Built from arrays (everything in memory), or by ``read_recording`` as a
    stream: then ``pieces()`` hands the samples out chunk by chunk, and the
    arrays ``t_s``, ``gravity_ms2``, ... are only gathered if asked for (the
    whole file in memory: ``replay`` never asks). ``warnings``, ``button`` and
    ``duration_s`` are complete once the stream has been read to its end
    (``replay`` does); a file shorter than the frame window is read whole at once.
    """

    def __init__(
        self,
        path: str,
        kind: str,
        rate_hz: float,
        source_rate_hz: float,
        t_s: np.ndarray | None = None,
        gravity_ms2: np.ndarray | None = None,
        linear_acc_ms2: np.ndarray | None = None,
        gyro_rads: np.ndarray | None = None,
        meta: dict[str, str] | None = None,
        button: list[tuple[float, bool]] | None = None,
        warnings: list[str] | None = None,
        frame: FrameEstimate | None = None,
        *,
        stream: _Stream | None = None,
    ) -> None:
        self.path = path
        self.kind = kind  # "walkcoach-v1" or "csv"
        self.rate_hz = rate_hz
        self.source_rate_hz = source_rate_hz
        self._t, self._gravity, self._linear, self._gyro = t_s, gravity_ms2, linear_acc_ms2, gyro_rads
        self.meta = meta if meta is not None else {}
        self._button = button if button is not None else []
        self._warnings = warnings if warnings is not None else []
        self.frame = frame
        self._stream = stream

    # -- the samples ------------------------------------------------------------------
    def pieces(self, on_progress: Callable[[float], None] | None = None) -> Iterator[Piece]:
        if self._stream is None:
            if self._t is not None and len(self._t):
                yield Piece(self._t, self.gravity_ms2, self.linear_acc_ms2, self._gyro)
            return
        yield from self._stream.pieces(on_progress)

    def _gather(self) -> None:
        if self._stream is None or self._t is not None:
            return
        pieces = list(self.pieces())
        self._t = np.concatenate([p.t_s for p in pieces]) if pieces else np.empty(0)
        self._gravity = np.concatenate([p.gravity_ms2 for p in pieces]) if pieces else np.empty((0, 3))
        self._linear = np.concatenate([p.linear_acc_ms2 for p in pieces]) if pieces else np.empty((0, 3))
        has_gyro = pieces and pieces[0].gyro_rads is not None
        self._gyro = np.concatenate([p.gyro_rads for p in pieces]) if has_gyro else None
        self._stream = None if self._stream.done else self._stream

    @property
    def t_s(self) -> np.ndarray:
        self._gather()
        return self._t if self._t is not None else np.empty(0)

    @property
    def gravity_ms2(self) -> np.ndarray:
        self._gather()
        return self._gravity if self._gravity is not None else np.empty((0, 3))

    @property
    def linear_acc_ms2(self) -> np.ndarray:
        self._gather()
        return self._linear if self._linear is not None else np.empty((0, 3))

    @property
    def gyro_rads(self) -> np.ndarray | None:
        self._gather()
        return self._gyro

    @property
    def warnings(self) -> list[str]:
        return self._stream.warnings() if self._stream is not None else self._warnings

    @property
    def button(self) -> list[tuple[float, bool]]:
        return self._stream.button if self._stream is not None else self._button

    def _settle(self) -> Recording:
        return _settle_recording(self)

    @property
    def is_streamed(self) -> bool:
        return self._stream is not None

    @property
    def first_t_s(self) -> float | None:
        """The first sample's time, known without reading the file to its end."""
        if self._stream is not None:
            return self._stream.first_t_s
        return float(self._t[0]) if self._t is not None and len(self._t) else None

    @property
    def duration_s(self) -> float:
        if self._stream is not None:
            first, last = self._stream.first_t_s, self._stream.last_t_s
        elif self._t is None or len(self._t) == 0:
            return 0.0
        else:
            first, last = float(self._t[0]), float(self._t[-1])
        if first is None or last is None:
            return 0.0
        return last - first + 1.0 / self.rate_hz


# -- gaps and resampling, chunk by chunk --------------------------------------------------
class _Gaps:
    """Finds the gaps in a stream of times; warns about them (the first few) and returns the holes."""

    def __init__(self, rate_hz: float, *, bridge: bool) -> None:
        self.limit_s = GAP_FACTOR / rate_hz
        self.bridge = bridge
        self.notes: list[str] = []
        self.more = 0
        self._last: tuple[float, int] | None = None

    def _note(self, text: str) -> None:
        if len(self.notes) < MAX_LISTED_WARNINGS:
            self.notes.append(text)
        else:
            self.more += 1

    def warnings(self) -> list[str]:
        return self.notes + ([f"... and {self.more} more gap(s)"] if self.more else [])

    def find(self, t: np.ndarray, lines: np.ndarray) -> list[tuple[float, float]]:
        """Holes (gaps not bridged) as (last time before, first time after), this chunk and the step into it."""
        if len(t) == 0:
            return []
        if self._last is not None:
            t_all = np.concatenate([[self._last[0]], t])
            lines_all = np.concatenate([[self._last[1]], lines])
        else:
            t_all, lines_all = t, lines
        self._last = (float(t[-1]), int(lines[-1]))
        steps = np.diff(t_all)
        holes = []
        for i in np.flatnonzero(steps > self.limit_s):
            gap_s = float(steps[i])
            line = lines_all[i + 1]
            if self.bridge and gap_s <= MAX_BRIDGED_GAP_S:
                self._note(f"line {line}: {gap_s:.2f} s gap bridged by interpolation")
                continue
            holes.append((float(t_all[i]), float(t_all[i + 1])))
            if self.bridge:
                self._note(f"line {line}: {gap_s:.2f} s without samples, left as a hole")
            elif gap_s > MAX_BRIDGED_GAP_S:  # a walkcoach recording: the live coach had the same hole
                self._note(f"line {line}: {gap_s:.2f} s without samples (a sensor drop-out in the live run)")
        return holes


class _Resampler:
    """Linear interpolation onto t0 + k/rate_hz, chunk by chunk, skipping the grid points inside holes.

    Each hole starts a new segment. The grid is laid piece by piece between
    holes, so a clock jump of a day costs nothing."""

    def __init__(self, t0_s: float, rate_hz: float) -> None:
        self.t0_s = t0_s
        self.rate_hz = rate_hz
        self.next_k = 0
        self.segment = 0
        self._carry: tuple[float, np.ndarray] | None = None

    def push(self, t: np.ndarray, values: np.ndarray, holes: list[tuple[float, float]], *, final: bool):
        """(segment, grid times, values on the grid) runs for this chunk."""
        if self._carry is not None:
            t = np.concatenate([[self._carry[0]], t])
            values = np.vstack([self._carry[1][None, :], values])
        if len(t) == 0:
            return []
        self._carry = (float(t[-1]), values[-1].copy())
        starts = [0] + [int(np.searchsorted(t, after)) for _, after in holes]
        ends = [int(np.searchsorted(t, before)) for before, _ in holes] + [len(t) - 1]
        out = []
        rate, t0 = self.rate_hz, self.t0_s
        for number, (a, b) in enumerate(zip(starts, ends, strict=True)):
            if number > 0:
                self.segment += 1
            last_piece = number == len(starts) - 1
            k_lo = max(self.next_k, math.ceil((t[a] - t0) * rate - 1e-6))
            if last_piece and not final:  # the last sample is carried: the grid stops short of it
                k_hi = math.ceil((t[b] - t0) * rate - 1e-6) - 1
            else:
                k_hi = math.floor((t[b] - t0) * rate + 1e-6)
            if k_hi < k_lo:
                continue
            grid = t0 + np.arange(k_lo, k_hi + 1) / rate
            seg_t, seg_v = t[a : b + 1], values[a : b + 1]
            resampled = np.empty((len(grid), values.shape[1]))
            for j in range(values.shape[1]):
                resampled[:, j] = np.interp(grid, seg_t, seg_v[:, j])
            self.next_k = k_hi + 1
            out.append((self.segment, grid, resampled))
        return out


# -- gravity, segment by segment, in blocks ------------------------------------------------------
def _complementary_pass(acc: np.ndarray, gyro: np.ndarray, dt_s: float, tau_s: float) -> np.ndarray:
    """Gravity (sensor frame) tracked by the gyro, pulled towards the accelerometer with time constant tau."""
    alpha = dt_s / (tau_s + dt_s)
    keep = 1.0 - alpha
    head = acc[: max(1, int(round(tau_s / dt_s)))].mean(axis=0)
    gx, gy, gz = (float(v) for v in head)
    out = np.empty_like(acc)
    for k, ((ax, ay, az), (wx, wy, wz)) in enumerate(zip(acc.tolist(), gyro.tolist(), strict=True)):
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


class _GravityBlocks:
    """Zero-phase gravity of each segment, in blocks of FILTER_BLOCK samples with ``margin`` samples of real
    context each side (mirrored ends only at a segment's true ends), so a day costs one block's memory."""

    def __init__(self, rate_hz: float, has_gyro: bool) -> None:
        self.rate_hz = rate_hz
        self.has_gyro = has_gyro
        if has_gyro:
            self.margin = int(COMPLEMENTARY_MARGIN_TAUS * COMPLEMENTARY_TIME_CONSTANT_S * rate_hz)
        else:
            self.margin = edge_margin(rate_hz, GRAVITY_CORNER_HZ)
        self._segment: int | None = None
        self._t = np.empty(0)
        self._x = np.empty((0, 6 if has_gyro else 3))
        self._context = 0  # leading samples of the buffer already handed out (context only)
        self._at_start = True

    def _gravity(self, x: np.ndarray, at_start: bool, at_end: bool) -> np.ndarray:
        if self.has_gyro:
            return _complementary_gravity(x[:, :3], x[:, 3:], self.rate_hz)
        return zero_phase_lowpass(
            x, self.rate_hz, GRAVITY_CORNER_HZ, margin=self.margin, mirror_start=at_start, mirror_end=at_end
        )

    def _piece(self, t, x, gravity_raw) -> Piece:
        norm = np.linalg.norm(gravity_raw, axis=1, keepdims=True)
        gravity = gravity_raw * (G_MS2 / np.maximum(norm, 1e-9))  # as the BNO055 reports it: |g| = 9.807
        acc = x[:, :3]
        # the total stays what was measured; a scale error is a slow bias the coach removes
        return Piece(t, gravity, acc - gravity, x[:, 3:] if self.has_gyro else None, self._segment or 0)

    def push(self, segment: int, t: np.ndarray, x: np.ndarray) -> list[Piece]:
        out = []
        if segment != self._segment:
            out.extend(self.flush())
            self._segment = segment
        self._t = np.concatenate([self._t, t]) if len(self._t) else t
        self._x = np.vstack([self._x, x]) if len(self._x) else x
        margin, block = self.margin, FILTER_BLOCK
        while len(self._t) - self._context >= block + margin:
            end = self._context + block
            gravity_raw = self._gravity(self._x[: end + margin], self._at_start, False)
            c = self._context
            out.append(self._piece(self._t[c:end], self._x[c:end], gravity_raw[c:end]))
            keep_from = max(0, end - margin)
            self._t, self._x = self._t[keep_from:], self._x[keep_from:]
            self._context = end - keep_from
            self._at_start = False
        return out

    def flush(self) -> list[Piece]:
        out = []
        c = self._context
        if len(self._t) > c:
            gravity_raw = self._gravity(self._x, self._at_start, True)
            out.append(self._piece(self._t[c:], self._x[c:], gravity_raw[c:]))
        self._t, self._x = np.empty(0), np.empty((0, self._x.shape[1]))
        self._context, self._at_start = 0, True
        return out


# -- the two formats ----------------------------------------------------------------------------
class _Stream:
    """One pass over a recording's file: header, checked rows, the samples for the coach, chunk by chunk.

    ``pieces()`` can be called again: it reads the file again from its start."""

    def __init__(self, open_rows: Callable[[], _Rows], prepare: Callable[[_Rows, Iterator[Chunk]], Iterator[Piece]]):
        self._open_rows = open_rows
        self._prepare = prepare
        self.first_t_s: float | None = None
        self.last_t_s: float | None = None
        self.done = False
        self.button: list[tuple[float, bool]] = []
        self.frame_notes: list[str] = []
        self._rows: _Rows | None = None
        self._head: list[Piece] | None = None  # pieces already prepared (the frame window)
        self._rest: Iterator[Piece] | None = None

    def start(self, head_samples: int) -> list[Piece]:
        """Open the file and prepare its first ``head_samples`` (all of a shorter file); they are kept for the replay."""
        self._rows = self._open_rows()
        self.button = self._rows.button
        self._rest = self._prepare(self._rows, self._rows.chunks())
        head, n = [], 0
        for piece in self._rest:
            head.append(piece)
            n += len(piece.t_s)
            if n >= head_samples:
                break
        else:
            self._finish()
        self._head = head
        if head:
            self.first_t_s = float(head[0].t_s[0])
            self.last_t_s = float(head[-1].t_s[-1])
        return head

    def _finish(self) -> None:
        self.done = True
        self._rest = None
        if self._rows is not None:
            self._rows.close()

    def warnings(self) -> list[str]:
        return (self._rows.warnings() if self._rows is not None else []) + self.frame_notes

    def next_window(self, samples: int) -> list[Piece]:
        """The next ``samples`` prepared after the head (looking for walking further in); they are not kept."""
        window: list[Piece] = []
        n = 0
        if self._rest is None:
            return window
        for piece in self._rest:
            window.append(piece)
            n += len(piece.t_s)
            if n >= samples:
                return window
        self._finish()
        return window

    def rewind(self) -> None:
        """Forget what was read: the next ``pieces()`` reads the file from its start."""
        if self._rows is not None:
            self._rows.close()
        self._head, self._rest, self.done = None, None, False

    def pieces(self, on_progress=None) -> Iterator[Piece]:
        if self._head is None:  # a second read: from the start again
            self.start(0)
        head, self._head = self._head, None
        rows = self._rows
        for piece in head or ():
            self.last_t_s = float(piece.t_s[-1])
            yield piece
        if self._rest is None:
            return
        try:
            for piece in self._rest:
                self.last_t_s = float(piece.t_s[-1])
                if on_progress is not None and rows is not None:
                    on_progress(rows.fraction_read())
                yield piece
        finally:
            if rows is self._rows:
                self._finish()


class _Rows:
    """A table's header and its checked rows; the first PREFIX_ROWS are read and checked at construction."""

    def __init__(self, source: LineSource, parser: TableParser, header_line: int, *, repeats_allowed: bool) -> None:
        self.source = source
        self.parser = parser
        self.path = source.path
        self.order = TimeOrder(source.path, repeats_allowed=repeats_allowed)
        self.button: list[tuple[float, bool]] = []
        self.early_notes: list[str] = []  # before the cut-off note (units)
        self.late_notes: list[str] = []  # after it (ignored columns, rate mismatch)
        self.gaps: _Gaps | None = None
        self._blocks = source.blocks()
        chunks, n = [], 0
        for first, lines, complete in self._blocks:
            chunk = parser.parse(first, lines, complete)
            chunks.append(chunk)
            n += len(chunk.values)
            if n >= PREFIX_ROWS:
                break
        if n == 0:
            raise RecordingError("no samples after the header", path=self.path, line=header_line)
        prefix = Chunk(
            np.concatenate([c.values for c in chunks]),
            np.concatenate([c.lines for c in chunks]),
            [m for c in chunks for m in c.marks],
        )
        parser.check_finite(prefix)
        if n < MIN_SAMPLES:
            raise RecordingError(f"only {n} sample(s); at least {MIN_SAMPLES} are needed", path=self.path)
        self.order.check(prefix.values[:, 0], prefix.lines)
        self.button.extend(button_marks(self.path, prefix.marks))
        self.prefix = prefix
        self._prefix_taken = False

    def chunks(self) -> Iterator[Chunk]:
        if not self._prefix_taken:
            self._prefix_taken = True
            yield self.prefix
        for first, lines, complete in self._blocks:
            chunk = self.parser.parse(first, lines, complete)
            self.parser.check_finite(chunk)
            self.order.check(chunk.values[:, 0], chunk.lines)
            self.button.extend(button_marks(self.path, chunk.marks))
            yield chunk

    def fraction_read(self) -> float:
        return self.source.bytes_read / self.source.size_bytes if self.source.size_bytes else 1.0

    def warnings(self) -> list[str]:
        cut = self.parser.cut_off_line
        cut_note = [f"line {cut}: the last line is incomplete (recording cut off) and was dropped"] if cut is not None else []
        gaps = self.gaps.warnings() if self.gaps is not None else []
        return [*self.early_notes, *cut_note, *self.late_notes, *gaps]

    def close(self) -> None:
        self.source.close()


def read_recording(
    path: Path | str,
    *,
    units: str = "ms2",
    upright: str = "auto",
    rate_hz: float | None = None,
    default_rate_hz: float = 100.0,
    settings: CoachSettings | None = None,
) -> Recording:
    """Read, check and prepare a recording for the coach (streamed; see the module docstring). Raises RecordingError."""
    path = Path(path)
    if units not in ("ms2", "g"):
        raise RecordingError(f"units must be ms2 or g, not {units!r}", path=path)
    if upright not in ("auto", "first-still"):
        raise RecordingError(f"upright must be auto or first-still, not {upright!r}", path=path)
    if rate_hz is not None and not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise RecordingError(f"--rate {rate_hz:g} Hz is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz", path=path)
    source = LineSource(path)
    try:
        number, first = source.first_content_line()
    finally:
        source.close()
    if first.startswith(MAGIC):
        return _read_v1(path, rate_hz=rate_hz, units=units)
    return _read_csv(
        path, units=units, upright=upright, rate_hz=rate_hz, default_rate_hz=default_rate_hz, settings=settings or CoachSettings()
    )


def replay_rate_hz(source_rate_hz: float, loop_rate_hz: float) -> float:
    """The rate a plain CSV is replayed at without ``--rate``: its own (to 0.01 Hz) from ``NATIVE_MIN_RATE_HZ``
    up to the loop rate, else the loop rate."""
    rate_hz = round(source_rate_hz, 2)
    if NATIVE_MIN_RATE_HZ * (1 - RATE_SLACK) <= rate_hz <= loop_rate_hz:
        return rate_hz
    return loop_rate_hz


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


def _open_v1(path: Path, units: str) -> tuple[_Rows, dict[str, str]]:
    source = LineSource(path)
    try:
        number, first = source.first_content_line()
        meta = _parse_meta(path, number, first)
        header_number, header = source.first_content_line("no column header after the first line", number)
        names = [name.strip().lower() for name in header.split(",")]
        if names != ["t", "gx", "gy", "gz", "ax", "ay", "az"]:
            raise RecordingError(
                "expected the column header t,gx,gy,gz,ax,ay,az of a walkcoach v1 recording", path=path, line=header_number
            )
        # a loop that fell behind catches up with ticks at one clock time: the coach saw those samples, so they stay
        rows = _Rows(source, TableParser(path, names, list(range(7)), 7, ","), header_number, repeats_allowed=True)
    except BaseException:
        source.close()
        raise
    if units != "ms2":
        rows.early_notes.append("--units applies to plain CSV files; a walkcoach recording is in m/s²")
    return rows, meta


def _read_v1(path: Path, *, rate_hz: float | None, units: str) -> Recording:
    rows, meta = _open_v1(path, units)
    source_rate_hz = _rate_from_steps(rows.prefix.values[:, 0], path)
    rows.close()
    rate = float(meta["rate_hz"])
    resample = rate_hz is not None and abs(rate_hz - source_rate_hz) > 1e-6 * source_rate_hz
    out_rate_hz = rate_hz if rate_hz is not None and resample else rate

    def open_rows() -> _Rows:
        rows, _ = _open_v1(path, units)
        if abs(source_rate_hz - rate) > 0.05 * rate:
            rows.late_notes.append(f"the header says rate_hz={rate:g} but samples come at {source_rate_hz:.1f} Hz")
        rows.gaps = _Gaps(source_rate_hz, bridge=False)
        return rows

    def prepare(rows: _Rows, chunks: Iterator[Chunk]) -> Iterator[Piece]:
        resampler = None
        gaps = rows.gaps
        assert gaps is not None  # open_rows sets them
        for chunk, final in _with_final_flag(chunks):
            t = chunk.values[:, 0]
            holes = gaps.find(t, chunk.lines)
            if not resample:
                if len(t):
                    yield Piece(t, chunk.values[:, 1:4], chunk.values[:, 4:7])
                continue
            if resampler is None:
                if not len(t):
                    continue
                resampler = _Resampler(float(t[0]), out_rate_hz)
            last_of_each_time = np.append(np.diff(t) > 0, True)  # interpolation needs one sample per time
            for segment, grid, values in resampler.push(t[last_of_each_time], chunk.values[last_of_each_time, 1:7], holes, final=final):
                gravity = values[:, :3]
                gravity = gravity * (G_MS2 / np.linalg.norm(gravity, axis=1, keepdims=True))
                yield Piece(grid, gravity, values[:, 3:], None, segment)

    stream = _Stream(open_rows, prepare)
    stream.start(int(FRAME_WINDOW_S * source_rate_hz))
    return Recording(
        path=str(path), kind="walkcoach-v1", rate_hz=out_rate_hz, source_rate_hz=source_rate_hz,
        meta=meta, stream=stream,
    )._settle()


def _with_final_flag(chunks: Iterator[Chunk]) -> Iterator[tuple[Chunk, bool]]:
    """Each chunk with whether it is the last one (one chunk of look-ahead)."""
    previous = None
    for chunk in chunks:
        if previous is not None:
            yield previous, False
        previous = chunk
    if previous is not None:
        yield previous, True


def _csv_header(source: LineSource, path: Path):
    header_number, header = source.first_content_line()
    while header.lstrip().startswith("#"):
        header_number, header = source.first_content_line("no header line, only comments", header_number)
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
        raise RecordingError("angular rate needs all three columns gx, gy, gz or none", path=path, line=header_number)
    order = needed + gyro_found
    shown = {"wx": "gx", "wy": "gy", "wz": "gz"}
    parser = TableParser(path, [shown.get(n, n) for n in order], [columns[n] for n in order], len(raw_names), delimiter)
    return header_number, parser, ignored, bool(gyro_found)


def _open_csv(path: Path) -> tuple[_Rows, bool]:
    source = LineSource(path)
    try:
        header_number, parser, ignored, has_gyro = _csv_header(source, path)
        rows = _Rows(source, parser, header_number, repeats_allowed=False)
    except BaseException:
        source.close()
        raise
    if ignored:
        rows.late_notes.append(f"line {header_number}: ignoring column(s) {', '.join(ignored)}")
    return rows, has_gyro


def _read_csv(
    path: Path, *, units: str, upright: str, rate_hz: float | None, default_rate_hz: float, settings: CoachSettings
) -> Recording:
    rows, has_gyro = _open_csv(path)
    prefix = rows.prefix.values
    rows.close()
    scale = G_MS2 if units == "g" else 1.0
    source_rate_hz = _rate_from_steps(prefix[:, 0], path)
    if rate_hz is None:
        rate_hz = replay_rate_hz(source_rate_hz, default_rate_hz)
    _check_units(prefix[:, 1:4] * scale, prefix[:, 4:7] if has_gyro else None, units, path)
    del prefix
    frame_holder: list[np.ndarray] = []

    def open_rows() -> _Rows:
        rows, _ = _open_csv(path)
        rows.gaps = _Gaps(source_rate_hz, bridge=True)
        return rows

    def prepare(rows: _Rows, chunks: Iterator[Chunk]) -> Iterator[Piece]:
        resampler = None
        gravity = _GravityBlocks(rate_hz, has_gyro)
        gaps = rows.gaps
        assert gaps is not None  # open_rows sets them
        for chunk, final in _with_final_flag(chunks):
            values = chunk.values
            t = values[:, 0]
            if has_gyro:
                _check_gyro(values[:, 4:7], path)
            holes = gaps.find(t, chunk.lines)
            if resampler is None:
                if not len(t):
                    continue
                resampler = _Resampler(float(t[0]), rate_hz)
            x = values[:, 1:]
            if scale != 1.0:
                x = x.copy()
                x[:, :3] *= scale
            for segment, grid, resampled in resampler.push(t, x, holes, final=final):
                for piece in gravity.push(segment, grid, resampled):
                    yield _to_body(piece, frame_holder)
        for piece in gravity.flush():
            yield _to_body(piece, frame_holder)

    stream = _Stream(open_rows, prepare)
    window = int(FRAME_WINDOW_S * rate_hz)
    head = stream.start(window)
    notes: list[str] = []
    frame = _frame_of(head, rate_hz, upright, settings, path, notes)
    if not _from_walking(frame) and not stream.done:
        # no walking in the first window (a belt left on a table before it is worn): look further in
        scanned_s = FRAME_WINDOW_S
        while not stream.done and scanned_s < FRAME_SCAN_LIMIT_S:
            later = stream.next_window(window)
            scanned_s += FRAME_WINDOW_S
            if not later:
                break
            later_notes: list[str] = []
            candidate = _frame_of(later, rate_hz, upright, settings, path, later_notes)
            if _from_walking(candidate):
                start_min = (later[0].t_s[0] - head[0].t_s[0]) / 60.0
                frame, notes = candidate, later_notes
                frame.forward_method += f" (no walking in the first {FRAME_WINDOW_S / 60:g} min: from the window at {start_min:.0f} min)"
                break
        stream.rewind()  # the replay reads the file again from its start, in the frame found
        head = []
    stream.frame_notes.extend(notes)
    frame.gravity_method = "gyro+accelerometer complementary filter" if has_gyro else f"{GRAVITY_CORNER_HZ:g} Hz zero-phase low-pass"
    frame_holder.append(frame.sensor_to_body.T)
    for piece in head:  # the window was prepared before the frame was known
        piece.gravity_ms2 = piece.gravity_ms2 @ frame_holder[0]
        piece.linear_acc_ms2 = piece.linear_acc_ms2 @ frame_holder[0]
        piece.gyro_rads = None if piece.gyro_rads is None else piece.gyro_rads @ frame_holder[0]
    return Recording(
        path=str(path), kind="csv", rate_hz=rate_hz, source_rate_hz=source_rate_hz, frame=frame, stream=stream,
    )._settle()


def _frame_of(pieces: list[Piece], rate_hz: float, upright: str, settings: CoachSettings, path: Path, notes: list[str]) -> FrameEstimate:
    """The frame from a window of pieces still in the sensor's axes."""
    t = np.concatenate([p.t_s for p in pieces])
    gravity = np.concatenate([p.gravity_ms2 for p in pieces])
    linear = np.concatenate([p.linear_acc_ms2 for p in pieces])
    segment = np.concatenate([np.full(len(p.t_s), p.segment) for p in pieces])
    with fewer_gc_passes():  # its coach pass over the window
        return estimate_frame(t, gravity, linear, rate_hz, segment, upright=upright, settings=settings, path=path, warnings=notes)


@contextmanager
def fewer_gc_passes():
    """Young garbage-collector passes every GC_YOUNG_THRESHOLD allocations instead of every 700.

    The coach's replay allocates a few short-lived tuples per sample and next to no
    reference cycles, while a run of SAMPLES_AT_ONCE samples is alive at once: at the
    default threshold the collector walks those live samples every ~200 samples (and
    again as they are promoted), 10-20 % of a long replay's CPU. Reference counting
    still frees every sample at once; only cycles wait (at most that many objects)."""
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], GC_YOUNG_THRESHOLD), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _from_walking(frame: FrameEstimate) -> bool:
    return frame.forward_confidence > 0.0


def _to_body(piece: Piece, frame_holder: list[np.ndarray]) -> Piece:
    """Into the body frame once it is known (the frame window's pieces are rotated when it is)."""
    if frame_holder:
        m = frame_holder[0]
        piece.gravity_ms2 = piece.gravity_ms2 @ m
        piece.linear_acc_ms2 = piece.linear_acc_ms2 @ m
        if piece.gyro_rads is not None:
            piece.gyro_rads = piece.gyro_rads @ m
    return piece


def _settle_recording(self: Recording) -> Recording:
    """A file shorter than the frame window was read whole: keep it as arrays, as a small recording always was."""
    stream = self._stream
    if stream is not None and stream.done:
        pieces = list(stream.pieces())
        self._warnings, self._button = stream.warnings(), list(stream.button)
        self._stream = None
        if pieces:
            self._t = np.concatenate([p.t_s for p in pieces])
            self._gravity = np.concatenate([p.gravity_ms2 for p in pieces])
            self._linear = np.concatenate([p.linear_acc_ms2 for p in pieces])
            self._gyro = np.concatenate([p.gyro_rads for p in pieces]) if pieces[0].gyro_rads is not None else None
        else:
            self._t, self._gravity, self._linear = np.empty(0), np.empty((0, 3)), np.empty((0, 3))
    return self


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
        raise RecordingError(f"median |acceleration| is {magnitude:.3g} m/s², not about 9.8 (gravity){hint}", path=path)
    if gyro is not None:
        _check_gyro(gyro, path)


def _check_gyro(gyro: np.ndarray, path: Path) -> None:
    if len(gyro):
        peak = float(np.max(np.abs(gyro)))
        if peak > MAX_GYRO_RADS:
            raise RecordingError(f"angular rate reaches {peak:.0f}: that looks like deg/s; gx, gy, gz must be rad/s", path=path)
