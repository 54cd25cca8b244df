"""Per-step and per-bout gait metrics: step length, walking speed, lean while walking.

Step length by the inverted-pendulum model of the centre of mass (Zijlstra &
Hof 2003, Gait & Posture 18:1-10). During single support the pelvis vaults
over the stance foot on a leg of length ``L``; between two heel strikes it
rises and falls by ``h``, and the step length is

    step_length_m = K * 2 * sqrt(2 * L * h - h**2)

``h`` is the peak-to-peak vertical displacement of the pelvis over one step,
found by integrating vertical acceleration twice between consecutive heel
strikes. Integration drift is removed per step, which is what makes this work
on a cheap IMU: over one step the pelvis comes back to the same height and the
same vertical velocity, so the step's mean acceleration is removed before the
first integration (the velocity ends where it started) and the straight line
from the first to the last position is removed after the second (the height
ends where it started). A constant sensor bias, and a constant error in the
unknown starting velocity, both disappear.

``K`` is the model's correction factor. The pendulum with the leg's length
underestimates step length because the pelvis also moves during double
support and the foot rolls; Zijlstra & Hof calibrated K against measured step
lengths and found a mean of 1.25 (individual values ~1.1-1.4). Mobilise-D's
re-implementation (mobgap ``SlZijlstra``), which uses the sensor's height
instead of leg length, calibrates 1.15. We use L = the wearer's leg length
(configurable, default 0.9 m) and K = 1.25, as Zijlstra & Hof did; a wearer
who walks a measured distance once can calibrate K for themselves.

Data requirements: vertical *linear* acceleration in m/s² (gravity removed,
projected on gravity, as ``Coach.update`` computes it), at >= 25 Hz; heel
strike times from ``StepDetector`` (any consistent point of the step cycle
works: the peak-to-peak height over one whole period does not depend on where
the period starts). Pure and streaming: no I/O, no clock, one ``update`` per
sample.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import NamedTuple

from walkcoach.device.core.gait import BREAK_SHARE

MIN_STEP_S = 0.25  # shorter than this between heel strikes: not one step
MAX_STEP_S = 2.2  # longer: a pause, not one step (slowest cadence 40/min with 35 % tolerance)
MIN_COVERAGE = 0.8  # a step needs at least this share of its samples (else there was a gap)
MAX_RISE_SHARE = 0.25  # h beyond this share of the leg length is an artefact, not a pendulum
PENDING_STEPS = 32  # step lengths kept before a bout is recognised (BoutTracker looks back up to ~19 steps)


@dataclass(frozen=True, slots=True)
class StepLengthSettings:
    leg_length_m: float = 0.9  # L: greater trochanter to floor
    correction_factor: float = 1.25  # K: Zijlstra & Hof 2003 mean calibration
    min_step_length_m: float = 0.1  # estimates outside this range are dropped
    max_step_length_m: float = 1.4


class StepLengthEstimator:
    """Streaming step length from vertical linear acceleration (m/s²) and heel-strike times.

    ``update(t_s, acc_vertical_ms2)`` every sample; ``on_step(step_s)`` for every
    detected step (it may come a little after the step, as ``StepDetector``
    confirms steps with a delay: the samples are kept for ``MAX_STEP_S`` plus
    a margin). Returns the length of the step that ended at ``step_s``, or None
    for the first step after a (re)start, a step that spans a gap, or an
    estimate outside the plausible range.
    """

    def __init__(self, settings: StepLengthSettings, rate_hz: float) -> None:
        self.settings = settings
        self.rate_hz = rate_hz
        keep = int(math.ceil((MAX_STEP_S + 1.0) * rate_hz)) + 2
        self._t_s: deque[float] = deque(maxlen=keep)
        self._acc_ms2: deque[float] = deque(maxlen=keep)
        self._last_step_s: float | None = None
        self._last_step_time_s = 0.0
        self.last_rise_m = 0.0  # h of the last estimated step, for plots and tests

    def restart(self) -> None:
        """Forget the samples and the last step (after a gap in the data)."""
        self._t_s.clear()
        self._acc_ms2.clear()
        self._last_step_s = None

    def update(self, t_s: float, acc_vertical_ms2: float) -> None:
        self._t_s.append(t_s)
        self._acc_ms2.append(acc_vertical_ms2)

    def sample_appenders(self) -> tuple[Callable[[float], None], Callable[[float], None]]:
        """``update`` as the two appends it makes (time, then acceleration), for a caller that feeds every
        sample: a Python call less per sample. Valid for the estimator's life (``restart`` clears the
        deques, it never replaces them)."""
        return self._t_s.append, self._acc_ms2.append

    @property
    def last_step_time_s(self) -> float:
        """Duration of the step last passed to ``on_step`` (0 for the first after a restart)."""
        return self._last_step_time_s

    def on_step(self, step_s: float) -> float | None:
        previous_s = self._last_step_s
        self._last_step_s = step_s
        if previous_s is None:
            self._last_step_time_s = 0.0
            return None
        step_time_s = self._last_step_time_s = step_s - previous_s
        if not MIN_STEP_S <= step_time_s <= MAX_STEP_S:
            return None
        acc = []
        times, values = self._t_s, self._acc_ms2
        for i in range(len(times) - 1, -1, -1):  # newest first: only this step's samples are visited
            t = times[i]
            if t < previous_s:
                break
            if t < step_s:
                acc.append(values[i])
        if len(acc) < max(4, MIN_COVERAGE * step_time_s * self.rate_hz):
            return None
        acc.reverse()
        rise_m = step_rise_m(acc, 1.0 / self.rate_hz)
        return self._length_from_rise(rise_m)

    def _length_from_rise(self, rise_m: float) -> float | None:
        s = self.settings
        if not 0.0 < rise_m <= MAX_RISE_SHARE * s.leg_length_m:
            return None
        self.last_rise_m = rise_m
        length_m = s.correction_factor * 2.0 * math.sqrt(2.0 * s.leg_length_m * rise_m - rise_m * rise_m)
        if not s.min_step_length_m <= length_m <= s.max_step_length_m:
            return None
        return length_m


def step_rise_m(acc_vertical_ms2, dt_s: float) -> float:
    """Peak-to-peak vertical displacement over one step (m), drift removed per step."""
    n = len(acc_vertical_ms2)
    mean = sum(acc_vertical_ms2) / n
    velocity = 0.0
    position = 0.0
    positions = [0.0] * n
    for i, a in enumerate(acc_vertical_ms2):
        velocity += (a - mean) * dt_s
        position += velocity * dt_s
        positions[i] = position
    # the height ends where it started: remove the line from the start (0) to the last position
    slope = position / n
    lo = hi = 0.0
    for i, p in enumerate(positions, start=1):
        d = p - slope * i
        if d < lo:
            lo = d
        elif d > hi:
            hi = d
    return hi - lo


class BoutGait(NamedTuple):
    """What a bout adds to its steps and cadence; None where nothing could be measured."""

    step_length_m: float | None
    speed_m_s: float | None
    mean_lean_deg: float | None
    peak_lean_deg: float | None


class BoutGaitMetrics:
    """Step lengths, walking speed and lean of the bout in progress.

    A bout is recognised some steps after it began (``BoutTracker`` looks back
    over the pending steps), so the lengths of recent steps are kept with their
    times and ``start_bout(first_step_s)`` takes in those that lie inside the
    bout. Lean is the coach's filtered lean, fed every sample while walking.

    The bout's figures are over the reference's strides (INDIP, Mobilise-D): a
    bout's strides run from its first contact to the contact before its
    closing step, so ``end_bout(last_step_s)`` leaves out the steps after its
    last counted one. The pendulum measures one single-support arc per step:
    an interval of ``BREAK_SHARE`` step times or more (a pause, or contacts
    the detector missed) is not one step, and the stride length leaves it
    out. The speed is the bout's measured distance over those steps' time.
    """

    def __init__(self, keep_steps: int = PENDING_STEPS) -> None:
        self._pending: deque[tuple[float, float, float]] = deque(maxlen=keep_steps)
        self.in_bout = False
        self._measured_steps: list[tuple[float, float, float]] = []  # (step end, length, step time) inside the bout
        self._reset()

    def _reset(self) -> None:
        self._measured_steps = []
        self._lean_sum_deg = 0.0
        self._lean_n = 0
        self._lean_peak_deg = -math.inf

    def restart_pending(self) -> None:
        """After a gap: steps before it do not belong to a bout after it."""
        self._pending.clear()

    def add_step(self, step_s: float, length_m: float | None, step_time_s: float) -> None:
        """A detected step ending at ``step_s``: its length (None if not estimated) and duration."""
        if length_m is None:
            return
        if self.in_bout:
            self._measured_steps.append((step_s, length_m, step_time_s))
        else:
            self._pending.append((step_s, length_m, step_time_s))

    def start_bout(self, first_step_s: float) -> None:
        """A bout was recognised whose first step is at ``first_step_s``; earlier steps inside it count."""
        self.in_bout = True
        self._reset()
        self._measured_steps = [step for step in self._pending if step[0] - step[2] >= first_step_s - 1e-6]
        self._pending.clear()

    def add_lean(self, lean_deg: float) -> None:
        self._lean_sum_deg += lean_deg
        self._lean_n += 1
        if lean_deg > self._lean_peak_deg:
            self._lean_peak_deg = lean_deg

    def end_bout(self, last_step_s: float = math.inf) -> BoutGait:
        """The bout's figures over its steps up to ``last_step_s`` (its last counted step, as detected)."""
        steps = [step for step in self._measured_steps if step[0] <= last_step_s + 1e-6]
        single = []
        if steps:
            typical_s = median([step_time_s for _, _, step_time_s in steps])
            single = [length_m for _, length_m, step_time_s in steps if step_time_s < BREAK_SHARE * typical_s]
        distance_m = sum(length_m for _, length_m, _ in steps)
        time_s = sum(step_time_s for _, _, step_time_s in steps)
        result = BoutGait(
            step_length_m=sum(single) / len(single) if single else None,
            speed_m_s=distance_m / time_s if steps and time_s > 0 else None,
            mean_lean_deg=self._lean_sum_deg / self._lean_n if self._lean_n else None,
            peak_lean_deg=self._lean_peak_deg if self._lean_n else None,
        )
        self.in_bout = False
        self._reset()
        return result
