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
k = 0..n-1, the displacement is ``-dt^2 sum_k k (a_k - mean(a))``.

A step rising or falling more than ``STAIR_RISE_M`` (half the lowest riser)
is a stair step; two of the last three steps on stairs is a flight, which
ends after ``LEVEL_STEPS_TO_END`` level steps. Pure Python, cheap: one
``append`` per walking sample, one sum over a step's samples per step.
"""

from __future__ import annotations

import math
from collections import deque

STAIR_RISE_M = 0.075  # half of a 15 cm riser
LEVEL_STEPS_TO_END = 2
MAX_STEP_S = 1.6  # a step time beyond the slowest walking cadence (40/min, with its tolerance) is a pause
STRIKE_SEARCH_S = 0.12  # the impact lies within this of the filtered peak (taken back by its delay)


class StairDetector:
    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._dt2 = 1.0 / (rate_hz * rate_hz)
        self._acc: deque[float] = deque(maxlen=int((MAX_STEP_S + 1.0) * rate_hz) + 2)  # + the confirmation delay
        self._n = 0  # samples appended so far
        self._last_step_index: int | None = None
        self._recent: deque[bool] = deque(maxlen=3)
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

    def on_step(self, t_s: float, step_s: float, step_time_s: float, band_hz: float, walking: bool = True) -> None:
        """A step (heel strike at ``step_s``) confirmed at ``t_s``: classify the step that it ended.

        ``step_s`` is a peak of vertical acceleration low-passed at ``band_hz`` (2nd-order
        Butterworth): it lags the heel strike by that filter's phase delay at the step frequency,
        which is taken back so the step starts where the vertical velocity is zero.
        """
        if step_time_s > 0:
            ratio = 1.0 / (step_time_s * band_hz)
            step_s -= math.atan2(math.sqrt(2.0) * ratio, 1.0 - ratio * ratio) * step_time_s / (2.0 * math.pi)
        index = self._heel_strike_index(self._n - round((t_s - step_s) * self.rate_hz))
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
        acc = self._acc
        start = previous - oldest
        total = 0.0
        weighted = 0.0
        for k in range(n):
            a = acc[start + k]
            total += a
            weighted += k * a
        mean = total / n
        rise_m = -self._dt2 * (weighted - mean * n * (n - 1) / 2.0)
        self.last_rise_m = rise_m
        stair = abs(rise_m) > STAIR_RISE_M
        self._recent.append(stair)
        if stair:
            self._level_run = 0
            if not self.on_stairs and sum(self._recent) >= 2:
                self.on_stairs = True
                self.flights += 1
                self.flight_starts_s.append(t_s)
        else:
            self._level_run += 1
            if self._level_run >= LEVEL_STEPS_TO_END:
                self.on_stairs = False

    def _heel_strike_index(self, index: int) -> int:
        """The heel strike's own sample: the raw vertical acceleration's largest value (the impact)
        within ``STRIKE_SEARCH_S`` of ``index`` (where the filtered peak puts it)."""
        oldest = self._n - len(self._acc)
        reach = round(STRIKE_SEARCH_S * self.rate_hz)
        lo, hi = max(oldest, index - reach), min(self._n - 1, index + reach)
        if lo > hi:
            return index
        acc = self._acc
        best = lo
        best_ms2 = acc[lo - oldest]
        for i in range(lo + 1, hi + 1):
            a = acc[i - oldest]
            if a > best_ms2:
                best, best_ms2 = i, a
        return best

    def end_walk(self) -> None:
        self._recent.clear()
        self._level_run = 0
        self.on_stairs = False
        self._last_step_index = None
