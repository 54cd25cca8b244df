"""Stairs, from the pelvis's rise per step: a flight of stairs is walking, but its lean is not coached.

People lean into a flight of stairs (trunk flexion rises by ~10-20° going up;
Reid et al. 2007, Protopapadaki et al. 2007), and that is normal. A stair
step lifts (or lowers) the pelvis by a riser, 15-19 cm in building codes,
while a level step brings it back to the height it started from (the
inverted pendulum: lowest in double support, at each heel strike; Zijlstra
& Hof 2003). So the net vertical displacement over one step, from heel strike
to heel strike, tells a stair step from a level one.

It is found by integrating vertical acceleration twice over the step with
the step's mean acceleration removed (so a constant sensor bias and any slow
gravity leak vanish) and the vertical velocity taken as zero at the heel
strike (the pelvis is at the bottom of its arc then on the level, and
between two pushes on stairs: the centre of mass is raised in single support,
McFadyen & Winter 1988). In closed form, for the step's samples ``a_k``,
k = 0..n (trapezoid weights), the displacement is ``-dt^2 sum_k k (a_k - mean(a))``.

A step rising or falling more than ``STAIR_RISE_M`` (half the lowest riser)
is a stair step; ``FLIGHT_STEPS`` of them in a row, all up or all down, is a
flight (a flight goes one way; sitting down at the end of a walk lowers the
pelvis over one or two "steps" of the detector, and a turn's sensor tilt
leaks either way), which ends after ``LEVEL_STEPS_TO_END`` level steps. Pure Python, cheap: one
``append`` per walking sample, one sum over a step's samples per step.
"""

from __future__ import annotations

import math
from collections import deque

STAIR_RISE_M = 0.075  # half of a 15 cm riser
LEVEL_STEPS_TO_END = 2
FLIGHT_STEPS = 3  # stair codes ask for three risers or more in a flight
MAX_STEP_S = 1.6  # a step time beyond the slowest walking cadence (40/min, with its tolerance) is a pause
STRIKE_BEFORE_S = 0.35  # the impact comes this much before the filtered peak at most (stairs: ~0.2 s)...
STRIKE_AFTER_S = 0.03  # ... or a little after it
IMPACT_S = 0.04  # a heel-strike transient lasts a few tens of ms


class StairDetector:
    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._dt2 = 1.0 / (rate_hz * rate_hz)
        self._acc: deque[float] = deque(maxlen=int((MAX_STEP_S + 1.0) * rate_hz) + 2)  # + the confirmation delay
        self._n = 0  # samples appended so far
        self._last_step_index: int | None = None
        self._recent: deque[int] = deque(maxlen=FLIGHT_STEPS)  # +1 up a riser, -1 down, 0 level
        self._level_run = 0
        self.on_stairs = False
        self.last_rise_m = 0.0
        self.flights = 0
        self.flight_starts_s: list[float] = []  # when each flight was recognised (for summaries and tests)

    def restart(self) -> None:
        """A gap in the data: the next step has no start."""
        self._acc.clear()
        self._last_step_index = None

    def add(self, acc_vertical_ms2: float) -> None:
        self._acc.append(acc_vertical_ms2)
        self._n += 1

    def on_step(self, t_s: float, step_s: float, walking: bool = True) -> None:
        """A step, detected at ``step_s`` and confirmed at ``t_s``: classify the step that it ended (only
        ``walking``: steps outside a bout are fidgeting, not a flight).

        ``step_s`` is a peak of low-passed vertical acceleration: on the level just after the heel
        strike, on stairs later (the push up the riser adds a broad peak). The heel strike itself is
        the impact: the largest raw vertical acceleration from ``STRIKE_BEFORE_S`` before it to
        ``STRIKE_AFTER_S`` after.
        """
        index = self._heel_strike_index(self._n - 1 - round((t_s - step_s) * self.rate_hz))
        previous = self._last_step_index
        self._last_step_index = index
        if previous is None:
            return
        if not walking:
            self._recent.clear()
            self.on_stairs = False
            return
        n = index - previous
        oldest = self._n - len(self._acc)
        if n < 3 or previous < oldest or n > MAX_STEP_S * self.rate_hz:
            self._recent.clear()
            return
        if index >= self._n:
            return
        acc = self._acc
        start = previous - oldest
        # trapezoid over the n intervals from strike to strike: each strike's own sample counts half in
        # the step it ends and half in the one it starts (an impact split at its peak cancels out)
        first, last = acc[start], acc[start + n]
        total = 0.5 * (first + last)
        weighted = 0.5 * n * last
        for k in range(1, n):
            a = acc[start + k]
            total += a
            weighted += k * a
        mean = total / n
        rise_m = -self._dt2 * (weighted - mean * n * n / 2.0)
        self.last_rise_m = rise_m
        stair = abs(rise_m) > STAIR_RISE_M
        self._recent.append(0 if not stair else 1 if rise_m > 0 else -1)
        if stair:
            self._level_run = 0
            if not self.on_stairs and abs(sum(self._recent)) == FLIGHT_STEPS:
                self.on_stairs = True
                self.flights += 1
                self.flight_starts_s.append(t_s)
        else:
            self._level_run += 1
            if self._level_run >= LEVEL_STEPS_TO_END:
                self.on_stairs = False

    def _heel_strike_index(self, index: int) -> int:
        """The heel strike's own sample near ``index`` (the filtered peak's): the sharpest rise of raw
        vertical acceleration above its neighbours ``IMPACT_S`` either side (the impact is a transient
        of tens of ms; a push up a riser is a broad swell that must not be taken for it)."""
        oldest = self._n - len(self._acc)
        r = max(1, round(IMPACT_S * self.rate_hz))
        lo = max(oldest + r, index - round(STRIKE_BEFORE_S * self.rate_hz))
        hi = min(self._n - 1 - r, index + round(STRIKE_AFTER_S * self.rate_hz))
        if lo > hi:
            return index
        acc = self._acc
        best, best_sharpness = index, -math.inf
        for i in range(lo, hi + 1):
            j = i - oldest
            sharpness = acc[j] - 0.5 * (acc[j - r] + acc[j + r])
            if sharpness > best_sharpness:
                best, best_sharpness = i, sharpness
        return best

    def end_walk(self) -> None:
        self._recent.clear()
        self._level_run = 0
        self.on_stairs = False
        self._last_step_index = None
