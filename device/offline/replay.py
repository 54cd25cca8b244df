"""Replaying a recording through the coach: ``walkcoach replay FILE``.

The file is read by ``device.offline.recording_reader`` (its docstring has the
formats, the checks, streaming and how the body frame of a plain CSV is
found); here its samples run through the same ``CoachLoop`` as the live belt,
on a virtual clock, chunk by chunk, so a replay of a walkcoach recording
reproduces the live run's bouts, steps and cues.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import cast

import numpy as np

from walkcoach.device.core.coach import Coach
from walkcoach.device.core.feedback import CuePlayer
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.core.summary import RunSummary
from walkcoach.device.offline.frame import FrameEstimate, estimate_frame
from walkcoach.device.offline.lowpass import zero_phase_lowpass
from walkcoach.device.offline.recording_reader import Recording, RecordingError, fewer_gc_passes, read_recording, replay_rate_hz
from walkcoach.device.shell.loop import BUTTON_POLL_S, MAX_LAG_PERIODS, CoachLoop
from walkcoach.hal.clock import VirtualClock
from walkcoach.hal.errors import EndOfStream
from walkcoach.hal.types import ImuSample

__all__ = [
    "FrameEstimate", "Recording", "RecordingError", "ReplayButton", "ReplayImu", "ReplayResult", "estimate_frame",
    "read_recording", "replay", "replay_json", "replay_rate_hz", "zero_phase_lowpass",
]

SAMPLES_AT_ONCE = 2048  # ImuSamples built at a time by the replay's IMU
ZERO3 = (0.0, 0.0, 0.0)


# -- running the coach over it ------------------------------------------------------------
class _Progress:
    """A one-line progress bar on stderr, redrawn at most twice a second."""

    WIDTH = 30

    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._next_s = 0.0
        self._shown = False

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now < self._next_s:
            return
        self._next_s = now + 0.5
        fraction = min(1.0, max(0.0, fraction))
        filled = int(round(fraction * self.WIDTH))
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%}")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * (len(self.label) + self.WIDTH + 8) + "\r")
            self.stream.flush()


def _wants_progress(recording: Recording) -> bool:
    """A bar for a recording longer than the frame window (a shorter one replays in seconds), on a terminal."""
    if not recording.is_streamed:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _rows_as_tuples(a: np.ndarray) -> list[tuple[float, float, float]]:
    # zip over the columns builds the tuples in C: 5x faster than map(tuple, a.tolist())
    return list(zip(*a.T.tolist(), strict=True))


class ReplayImu:
    """An Imu that yields the recording's samples one per read, chunk by chunk, then raises EndOfStream."""

    def __init__(
        self, recording: Recording, clock: VirtualClock, *, t0_s: float = 0.0, on_progress: Callable[[float], None] | None = None
    ) -> None:
        self._clock = clock
        self._t0_s = t0_s
        self._runs = self._slices(recording.pieces(on_progress))
        self._samples: list[tuple] = []  # ImuSample's fields, as plain tuples
        self._i = 0
        self._n = 0
        self.samples = 0
        self.first_t_s: float | None = None
        self.last_t_s: float | None = None

    def _slices(self, pieces):
        """The pieces cut into runs of SAMPLES_AT_ONCE: few live sample objects keep the garbage collector's passes short."""
        for piece in pieces:
            for a in range(0, len(piece.t_s), SAMPLES_AT_ONCE):
                b = a + SAMPLES_AT_ONCE
                yield piece.t_s[a:b], piece.gravity_ms2[a:b], piece.linear_acc_ms2[a:b], (
                    piece.gyro_rads[a:b] if piece.gyro_rads is not None else None
                )

    def _next_piece(self) -> bool:
        for t_s, gravity, linear, gyro_rads in self._runs:
            n = len(t_s)
            gyro = _rows_as_tuples(gyro_rads) if gyro_rads is not None else repeat(ZERO3, n)
            # a run's samples built at once by zip, in C: plain tuples in ImuSample's field order (the coach
            # reads a sample by position; an ImuSample each would cost a Python __new__ call per sample)
            self._samples = list(zip(
                (t_s - self._t0_s).tolist(), _rows_as_tuples(gravity), _rows_as_tuples(linear), gyro, repeat(3, n), strict=True,
            ))
            self._i, self._n = 0, n
            if self.first_t_s is None:
                self.first_t_s = float(t_s[0])
            self.last_t_s = float(t_s[-1])
            return True
        self._samples = []
        return False

    def runs_in_order(self) -> Iterator[list[ImuSample]]:
        """Every sample, a run at a time, without moving the clock (``_ReplayLoop`` moves it); ``read()``
        and this share the position. The samples are plain tuples in ImuSample's field order."""
        while True:
            if self._i >= self._n and not self._next_piece():
                return
            samples, i, self._i = self._samples, self._i, self._n
            self.samples += self._n - i
            yield cast("list[ImuSample]", samples[i:] if i else samples)

    def read(self) -> ImuSample:
        i = self._i
        if i >= self._n:
            if not self._next_piece():
                raise EndOfStream("end of the recording")
            i = 0
        self._i = i + 1
        self.samples += 1
        sample = ImuSample._make(self._samples[i])
        self._clock.sleep_until(sample.t_s)
        return sample

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class ReplayButton:
    """A Button pressed and released at the recorded marks, in the replay clock's time.

    ``marks`` may grow while the replay runs (a streamed recording adds each chunk's marks as it is read)."""

    def __init__(self, marks: list[tuple[float, bool]], clock: VirtualClock, *, t0_s: float = 0.0) -> None:
        self._marks = marks
        self._t0_s = t0_s
        self._clock = clock
        self._i = 0
        self._pressed = False

    @property
    def is_pressed(self) -> bool:
        now = self._clock.monotonic() + 1e-9 + self._t0_s
        marks = self._marks
        while self._i < len(marks) and marks[self._i][0] <= now:
            self._pressed = marks[self._i][1]
            self._i += 1
        return self._pressed

    def close(self) -> None:
        pass


class _ReplayLoop(CoachLoop):
    """``CoachLoop.run`` for a recording on a virtual clock, with the clock kept in a local.

    Tick for tick what ``CoachLoop.run`` does with a ``ReplayImu`` (which never
    fails and only waits for each sample's time): the same tick times, events,
    button polls and cues, at about 1 us less per sample. The replay tests hold
    it to the live run's bouts, steps and cue times."""

    def run(self, *, until_s: float | None = None) -> None:
        if (until_s is not None or self.on_tick is not None or not isinstance(self.clock, VirtualClock)
                or not isinstance(self.imu, ReplayImu)):
            return super().run(until_s=until_s)
        clock, coach, player, button = self.clock, self.coach, self.player, self.button
        update, emit = coach.update, self.emit
        period_s = self.period_s
        max_lag_s = MAX_LAG_PERIODS * period_s
        stats = self.stats
        now = clock.now_s  # the clock's time, as the IMU's waits move it
        next_s = now
        next_button_s = next_s
        now_s = self.now_s
        samples = end_tick = overruns = 0  # a tick per sample, and the tick that finds the end
        playing = player.playing
        stopped = False
        try:
            for run in self.imu.runs_in_order():  # a loop over each run's list: no generator resumed per sample
                for sample in run:
                    if self.stop_requested:
                        stopped = True
                        break
                    if next_s > now:
                        now = next_s
                    now_s = now  # the tick's time: before the read waits for the sample
                    samples += 1
                    t_s = sample[0]
                    if t_s > now:
                        now = t_s
                    events = update(sample)
                    if events:
                        clock.now_s, self.now_s = now, now_s
                        emit(events, now_s)
                        playing = player.playing
                    if button is not None and now_s >= next_button_s:
                        clock.now_s, self.now_s = now, now_s
                        next_button_s = now_s + BUTTON_POLL_S
                        self._poll_button(now_s, button.is_pressed)
                        playing = player.playing
                    if playing is not None:  # only emit, a button poll and advance change it
                        player.advance(now_s)
                        playing = player.playing
                    next_s += period_s
                    if now - next_s > max_lag_s:
                        overruns += 1
                        next_s = now + period_s
                if stopped:
                    break
            else:
                if not self.stop_requested:  # the tick that found the end of the recording
                    if next_s > now:
                        now = next_s
                    now_s = now
                    end_tick = 1
        finally:
            clock.now_s, self.now_s = now, now_s
            stats.ticks += samples + end_tick
            stats.samples += samples
            stats.overruns += overruns
            self.finish()


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
    progress: bool | None = None,
) -> ReplayResult:
    """Run the coach over ``recording`` in virtual time through ``CoachLoop``, streaming it chunk by chunk.

    The cap is ``cap_s``, else the one the recording was made with (its
    ``cap_s`` fact), else the plan's cap for ``today``. Times are the
    recording's own, as the live run printed them; with ``from_zero`` they
    start at 0 at the first sample (``t0_s`` is what was subtracted).
    ``progress``: a bar on stderr (default: on a terminal, for a file longer than the 20-minute frame window).
    """
    if cap_s is None:
        try:
            cap_s = float(recording.meta["cap_s"])
        except (KeyError, ValueError):
            cap_s = settings.coach.plan.cap_s(today or dt.date.today())
    rate_hz = recording.rate_hz
    first_t_s = recording.first_t_s
    t0_s = first_t_s if from_zero and first_t_s is not None else 0.0
    clock = VirtualClock(first_t_s - t0_s if first_t_s is not None else 0.0)
    coach = Coach(settings.coach, rate_hz=rate_hz, cap_s=cap_s)
    summary = RunSummary(hold_s=settings.coach.lean.hold_s)
    bar = _Progress(f"replay {Path(recording.path).name}") if (progress if progress is not None else _wants_progress(recording)) else None
    marks = recording.button
    if not recording.is_streamed:
        marks = sorted(marks)
    button = ReplayButton(marks, clock, t0_s=t0_s) if (marks or (recording.is_streamed and recording.kind == "walkcoach-v1")) else None
    imu = ReplayImu(recording, clock, t0_s=t0_s, on_progress=bar)
    loop = _ReplayLoop(
        imu=imu,
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
    try:
        with fewer_gc_passes():
            loop.run()
    finally:
        if bar is not None:
            bar.close()
    elapsed_s = time.perf_counter() - started
    if imu.first_t_s is None or imu.last_t_s is None:
        duration_s = 0.0
    else:
        duration_s = imu.last_t_s - imu.first_t_s + 1.0 / rate_hz
    return ReplayResult(summary, duration_s, cap_s, elapsed_s, t0_s, coach, loop)


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
