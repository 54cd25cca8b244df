"""Gait: steps from vertical lumbar acceleration, bouts by the Mobilise-D definition, walk time.

Steps: at each heel strike the pelvis, at the bottom of its inverted-pendulum
arc, is pushed upward, so vertical acceleration (linear acceleration projected
on gravity, whatever the sensor's axes) peaks once per step (Zijlstra & Hof
2003). The signal is low-passed at 3 Hz (cadence up to 180 steps/min), its slow
mean (sensor bias) removed, and a local maximum above an adaptive threshold
becomes a step once no larger peak follows within ``CONFIRM_S`` (0.25 s): a
fixed delay, no look-ahead beyond it. The filter puts each peak its group delay
late (the centroid of its impulse response, ~75 ms at 3 Hz, computed from the
filter at the sample rate in use), so a step is the peak moved back by it: the
moment the pelvis is lowest, where a zero-phase smoothing would put the peak (the
offline contact detectors, e.g. McCamley et al. 2012, smooth with a zero-phase
wavelet), known ``CONFIRM_S`` plus that delay after it. The lumbar peak still follows the heel strike by the loading
response (35-65 ms on the real lab walks, more in slow gait), so a step is reported at its initial contact: the
heel strike's impact, the sharpest rise of raw vertical acceleration in the loading response before that lowest
point (``StepDetector.contact_s``, at 50 Hz and more); the bout rules run on the lowest points.

Bouts, as Mobilise-D defines a walking bout (Kluge et al. 2021): at least 4
strides (``min_bout_steps`` = 6 contacts of both feet), breaks between steps
of at most ``max_gap_s`` (3 s). A bout starts once ``min_bout_steps``
consecutive steps have step times in the walking cadence range and within
``rhythm_tolerance`` (40 %: real walks speed up, slow down and turn) of their
median, one missed step allowed, *and* the movement itself repeats: the
normalised autocorrelation of the last ``REGULARITY_WINDOW_S`` of vertical
acceleration at the step lag or at the stride lag (two steps, for asymmetric
gait whose alternate steps look unalike) reaches ``min_regularity``
(Moe-Nilssen & Helbostad 2004). That test does not depend on amplitude:
fidgeting and belt handling are irregular in the movement, even when their
knocks fall in a walking rhythm. The bout is counted from its first step
(and the less regular first steps of gait initiation before it); it goes on
while steps keep coming (after a break, walking resumes with a stride: a lone
contact does not extend the bout) and ends ``max_gap_s`` (or three missed
steps of a slow walker) plus the step latency (~0.33 s) after its last step. A contact after missed
steps is counted once a step follows in the rhythm (or ``min_bout_steps`` such
contacts in a row: alternate steps too faint to see); at the bout's end only
``TERMINATION_STEPS`` unconfirmed ones count (gait termination), unless the
bout's steps were often missed: sitting down or turning after a walk gives
contacts about two step times apart that are not walking. (Testing the
regularity on every step of a bout too cut the very slow walkers' bouts.) A bout is therefore known ~0.33 s
after its 6th step. It runs from its first step to the contact before its last: a walk ends with gait
termination's closing step (the trailing foot set down beside the other), whose contact starts no stride,
and a Mobilise-D walking bout runs from its first stride's start to its last stride's end with the last
stride before a break removed (mobgap's ``MaxBreakCriteria(remove_last_ic=True)``; the INDIP reference's
``start``/``end``, which list no contact for the closing step). Its steps are its contacts up to there, so
walk time, the sum of bout durations, is what the reference sums (``BoutTracker.end``). The
first steps taken in are only those made with the trunk upright: contacts
while the trunk is flexed ``TRANSITION_DEG`` or more from the walk's posture
are the feet moving while standing up (``drop_steps_until``).
The autocorrelation is summed on demand from block means at ~12.5 Hz.

Faint steps, told by their rhythm (a slow or shuffling walker's heel strikes can be as faint as the
sway of standing, peak by peak; a real walk's peaks vary tenfold): when the rhythm's next step (one
step time after the last contact, ± ``RHYTHM_WINDOW_SHARE``) has not come as a detected step by the
window's end plus the step latency, the largest local maximum in the window that stands ``RHYTHM_OVER_QUIET``
above the quiet level (the typical peak while not walking: the only amplitude floor) is taken as the
contact — before a bout while the movement is regular at that step time, inside a bout only in a
faint walker's (``FAINT_WALKER_MISSED_SHARE`` of its steps missed). It counts only if a detected step
follows a step later, never at a bout's end, at most ``MAX_FAINT_IN_ROW`` in a row: the sparse
contacts of turning or sitting down after a walk, with movement peaks between them, stay uncounted.

Two peaks a step: slow gait with a long double support shows the heel strike and, 0.2-0.55 of a step
later, the trailing leg's push-off, as strong. Their contacts alternate short and long intervals whose
median is no step time; on a whole-step grid (``_fold_second_peaks``) the push-offs are folded into
their steps, before a bout and once early in one (its messy first steps may hide the grid).
"""

from __future__ import annotations

import math
from collections import deque
from operator import mul

from walkcoach.device.core.events import Bout
from walkcoach.device.core.settings import GaitSettings

STEP_BAND_HZ = 3.0
BIAS_TIME_CONSTANT_S = 2.0
CONFIRM_S = 0.25  # a larger peak this soon after a candidate replaces it
RELATIVE_THRESHOLD = 0.35  # a step's peak must reach this share of recent step peaks
AMPLITUDE_MEMORY_S = 4.0  # recent step peaks are forgotten over this time when steps stop
ECHO_SHARE = 0.4  # before a bout: a detection this close to the previous (share of the step time) may be its echo
DOUBLE_STEP_SHARE = 0.55  # in a bout, an interval shorter than this share of the median is a double detection
RECENT_INTERVALS = 8
PEAK_SPREAD = math.sqrt(10.0)  # the peaks that start a bout are within this factor of their median: a real walk's vary tenfold
RECENT_PEAKS = 64  # local maxima kept for the faint steps a rhythm predicts and the last steps of a walk
FAINT_FLOOR_SHARE = 0.5  # a last step may be this much fainter than the detection floor...
FAINT_PEAK_SHARE = 0.12  # ...and reach this share of the bout's typical step peak...
FAINT_OVER_QUIET = 2.5  # ...and stand this far above the peaks of sway and noise while not walking
QUIET_AFTER_STEP_S = 2.0
QUIET_ALPHA = 0.05  # the quiet level follows about the last 20 such peaks
MAX_STEPS_BACK = 2  # faint last steps after a walk: at most its last stride (the stopping step and the closing one)
MAX_PENDING_STEPS = 16
INITIATION_SHARE = (0.5, 1.7)  # step times of the steps before a rhythm is found, as shares of its median
INITIATION_PEAK_SHARE = 0.1  # a walk's heel-strike peaks vary up to tenfold: a contact before the rhythm fainter is sway or noise
REGULARITY_HZ = 12.5  # the regularity test runs on block means at about this rate (the signal is below 3 Hz)
REGULARITY_WINDOW_S = 6.0  # two strides of the slowest walker (40 steps/min), so the stride lag has pairs to compare
REGULARITY_HIGH_PASS_HZ = 0.2  # under the slowest stride (0.33 Hz at 40 steps/min): a slow drift correlates at every lag
REGULARITY_MAX_LAG_S = 3.0  # a stride at 40 steps/min
MISSED_STEP_TOLERANCE = 0.2  # an interval is missed steps only if it is whole steps this close (steady rhythm)
BREAK_SHARE = 1.5  # in a bout, an interval this many step times or more is a break (or missed steps)
MAX_MISSED_STEPS = 2  # a slow walker's faint steps may go undetected: this many in a row keep the bout
TERMINATION_STEPS = 3  # gait termination (a slowed last stride and the closing step): a walk's last contacts may come after missed steps
FAINT_WALKER_MISSED_SHARE = 0.1  # a bout whose steps were this often missed is a faint walker's: its last missed steps count
RHYTHM_WINDOW_SHARE = 0.3  # a faint contact is looked for this share of a step time either side of the rhythm's next step
RHYTHM_OVER_QUIET = 1.5  # a faint contact at the rhythm's time stands this far above the typical peak of sway and noise while not walking
# Inside a bout, over its last ~5 steps (a running mean, weight ``IRREGULAR_ALPHA`` per step): the movement's
# regularity below ``IRREGULAR_BELOW`` while ``IRREGULAR_OFF_SHARE`` of the step times are off the rhythm
# (``OFF_RHYTHM_SHARE`` from it, or from whole missed steps of it) ends the bout. The very slow and shuffling
# walkers' regularity dips to ~0.15 over a few steps (tests/test_messy_walkers.py), so the level is below that.
IRREGULAR_ALPHA = 0.2
IRREGULAR_BELOW = 0.15
IRREGULAR_OFF_SHARE = 0.3
OFF_RHYTHM_SHARE = 0.25
MAX_FAINT_IN_ROW = 3  # rhythm contacts in a row without a detected step (a shuffler's soft contacts); then the rhythm must be seen again
SECOND_PEAK_SHARE = (0.2, 0.55)  # slow gait's second peak (the trailing leg's push-off) comes this share of a step after the heel strike...
SECOND_PEAK_TYPICAL_SHARE = 0.44  # ...typically before this: alternate steps of an asymmetric gait are seldom so unlike (1.27x)...
SECOND_PEAK_RATIO = (0.5, 1.1)  # ...its peak like the heel strike's (a gait that asymmetric has a weak side with far smaller strikes)...
SLOW_GAIT_PEAK_MS2 = 1.0  # ...and only in slow gait, whose heel strikes are faint (slowest real lab bout, 0.41 m/s: ~1.4 m/s2 at 10 Hz)
COUNTED_FOLD_CONTACTS = 36  # a bout's counted contacts are folded (once) only this early in it: its messy first steps hid the grid
# A step's initial contact is the heel strike's impact: the sharpest rise of raw vertical acceleration
# from the loading response before the pelvis's lowest point (the detector's peak) to just after it.
IMPACT_BEFORE_S = 0.15
IMPACT_AFTER_S = 0.05
IMPACT_MIN_RATE_HZ = 50.0  # the transient lasts a few tens of ms: at slower rates two samples do not resolve it


def _lowpass_biquad(cutoff_hz: float, rate_hz: float) -> tuple[float, float, float, float, float]:
    """2nd-order Butterworth low-pass (bilinear transform): b0, b1, b2, a1, a2."""
    k = math.tan(math.pi * cutoff_hz / rate_hz)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b0 = k * k * norm
    return b0, 2.0 * b0, b0, 2.0 * (k * k - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k * k) * norm


class _BlockMeans:
    """Means of blocks of ``decimation`` samples (~``REGULARITY_HZ``) over the last ``REGULARITY_WINDOW_S``:
    what ``StepDetector.regularity`` correlates. Its own small object (slots): it keeps StepDetector's
    attributes few enough for CPython's fast attribute access on every sample."""

    __slots__ = ("sample_rate_hz", "decimation", "rate_hz", "max_lag", "window", "phase", "sum", "means", "slow", "slow_alpha")

    def __init__(self, rate_hz: float) -> None:
        self.sample_rate_hz = rate_hz  # the detector's own (kept here: StepDetector is at its attribute limit)
        self.decimation = max(1, round(rate_hz / REGULARITY_HZ))
        self.rate_hz = rate_hz / self.decimation
        self.max_lag = int(round(REGULARITY_MAX_LAG_S * self.rate_hz))
        self.window = int(round(REGULARITY_WINDOW_S * self.rate_hz))
        self.means: deque[float] = deque(maxlen=self.window)
        self.slow_alpha = 1.0 - math.exp(-2.0 * math.pi * REGULARITY_HIGH_PASS_HZ / self.rate_hz)
        self.clear()

    def clear(self) -> None:
        self.phase = 0
        self.sum = 0.0
        self.slow = 0.0
        self.means.extend([0.0] * self.window)


def _biquad_delay_s(b0: float, b1: float, b2: float, a1: float, a2: float, rate_hz: float) -> float:
    """How late the filter puts a rounded peak: the centroid of its impulse response (its group
    delay at 0 Hz), from the coefficients. A peak that is locally a parabola comes out exactly this
    much later; ~sqrt(2) / (2 pi f_c) for a 2nd-order Butterworth (75 ms at 3 Hz)."""
    delay_samples = (b1 + 2.0 * b2) / (b0 + b1 + b2) - (a1 + 2.0 * a2) / (1.0 + a1 + a2)
    return delay_samples / rate_hz


class StepDetector:
    """Causal step detection from vertical linear acceleration (m/s²), one sample at a time."""

    def __init__(self, settings: GaitSettings, rate_hz: float) -> None:
        cutoff_hz = min(STEP_BAND_HZ, 0.4 * rate_hz)
        self._b0, self._b1, self._b2, self._a1, self._a2 = _lowpass_biquad(cutoff_hz, rate_hz)
        # Steps are timed at the pelvis's lowest point: a peak of the low-passed signal at t was the
        # signal's peak filter_delay_s earlier. All the detector's times (peaks, steps) are those; a
        # step is known step_latency_s after it, and ``contact_s`` finds its heel strike.
        self.step_latency_s = CONFIRM_S + _biquad_delay_s(self._b0, self._b1, self._b2, self._a1, self._a2, rate_hz)
        # raw samples back to the earliest heel strike of a step being confirmed (filter_delay_s is a
        # property: StepDetector keeps at most 30 attributes, see _BlockMeans)
        self._raw_ms2: deque[float] = deque(maxlen=int(math.ceil((self.step_latency_s + IMPACT_BEFORE_S) * rate_hz)) + 2)
        self._bias_alpha = 1.0 - math.exp(-1.0 / (BIAS_TIME_CONSTANT_S * rate_hz))
        self._block_means = _BlockMeans(rate_hz)  # one attribute: StepDetector keeps at most 30 (see _BlockMeans)
        self.configure(settings)
        self.recent_peaks: deque[tuple[float, float]] = deque(maxlen=RECENT_PEAKS)
        self.restart()
        self._amplitude_ms2 = 0.0
        self.last_peak_ms2 = 0.0  # peak of the step update() returned last
        self._quiet_peak_ms2 = 0.0  # typical local maximum while not walking (postural sway, noise)
        self._quiet_peaks_seen = 0
        self._last_step_s = -math.inf
        self._last_rhythm_s = -math.inf  # the last faint contact found at the rhythm's time

    @property
    def filter_delay_s(self) -> float:
        """How late the low-pass filter puts a rounded peak (``_biquad_delay_s``)."""
        return self.step_latency_s - CONFIRM_S

    def configure(self, settings: GaitSettings) -> None:
        self._min_peak_ms2 = settings.min_peak_ms2
        self._min_interval_s = 0.85 * 60.0 / settings.max_cadence_spm

    def restart(self) -> None:
        """Forget the filter state (after a gap in the data)."""
        self._x1 = self._x2 = 0.0
        self._z1 = self._z2 = 0.0
        self._bias = 0.0
        self._y1 = self._y2 = 0.0
        self._t1 = 0.0
        self._candidate_s = -math.inf
        self._candidate_ms2 = 0.0
        self._has_candidate = False
        self._warmup = 3
        self._block_means.clear()

    def update(self, t_s: float, acc_vertical_ms2: float) -> float | None:
        """Feed one sample; returns the time of a confirmed step, else None."""
        x = acc_vertical_ms2
        self._raw_ms2.append(x)
        z = self._b0 * x + self._b1 * self._x1 + self._b2 * self._x2 - self._a1 * self._z1 - self._a2 * self._z2
        self._x2 = self._x1
        self._x1 = x
        self._z2 = self._z1
        self._z1 = z
        self._bias += self._bias_alpha * (z - self._bias)
        y = z - self._bias
        y1 = self._y1
        step_s = None
        if self._warmup:
            self._warmup -= 1
        elif y1 > self._y2 and y1 >= y:
            peak_s = self._t1 - self.filter_delay_s
            self.recent_peaks.append((peak_s, y1))
            if peak_s - max(self._last_step_s, self._last_rhythm_s) > QUIET_AFTER_STEP_S:
                if self._quiet_peaks_seen < 1.0 / QUIET_ALPHA:  # running mean until the average is established
                    self._quiet_peaks_seen += 1
                self._quiet_peak_ms2 += (max(0.0, y1) - self._quiet_peak_ms2) / self._quiet_peaks_seen
            self._consider_peak(peak_s, y1)
        if self._has_candidate and t_s - self._candidate_s >= self.step_latency_s:  # CONFIRM_S after the filtered peak
            step_s = self._confirm()
        self._y2 = y1
        self._y1 = y
        self._t1 = t_s
        blocks = self._block_means
        blocks.sum += y
        blocks.phase += 1
        if blocks.phase == blocks.decimation:
            mean = blocks.sum / blocks.decimation
            blocks.slow += blocks.slow_alpha * (mean - blocks.slow)
            blocks.means.append(mean - blocks.slow)
            blocks.phase = 0
            blocks.sum = 0.0
        return step_s

    def regularity(self, step_s: float) -> float:
        """Normalised autocorrelation of the last ``REGULARITY_WINDOW_S`` of vertical acceleration at
        the step lag and at the stride lag (two steps), the better of the two (Moe-Nilssen &
        Helbostad 2004): walking repeats every step, or at least every stride when alternate steps
        look unalike; fidgeting does not. It does not depend on amplitude. The block means are
        high-passed at ``REGULARITY_HIGH_PASS_HZ`` first: a slow drift (a bias moved by a change of the
        trunk's tilt) correlates with itself at every lag, and would make fidgeting look regular.

        Summed here, when a bout's rules ask (once or twice per step), from the window's block means
        (~25 us a call): keeping every lag's sums up to date on each block cost more than the rest of
        the step detection."""
        block_means = self._block_means
        blocks = list(block_means.means)
        squares = list(map(mul, blocks, blocks))  # once for the six lags' energies: the same sums, in the same order
        n = len(blocks)
        best = -1.0
        for steps in (1, 2):
            centre = int(round(steps * step_s * block_means.rate_hz))
            for lag in (centre - 1, centre, centre + 1):
                if 1 <= lag <= block_means.max_lag and lag < n:
                    later, earlier = blocks[lag:], blocks[: n - lag]  # the pairs y[m], y[m - lag] inside the window
                    later_energy = sum(squares[lag:])
                    earlier_energy = sum(squares[: n - lag])
                    if later_energy > 0.0 and earlier_energy > 0.0:
                        best = max(best, sum(map(mul, later, earlier)) / math.sqrt(later_energy * earlier_energy))
        return best

    def _consider_peak(self, peak_s: float, peak_ms2: float) -> None:
        if peak_s - self._last_step_s < self._min_interval_s:
            return
        recent = self._amplitude_ms2 * math.exp(-(peak_s - self._last_step_s) / AMPLITUDE_MEMORY_S)
        if peak_ms2 < self._min_peak_ms2 or peak_ms2 < RELATIVE_THRESHOLD * recent:
            return
        if not self._has_candidate or peak_ms2 > self._candidate_ms2:
            self._has_candidate = True
            self._candidate_s = peak_s
            self._candidate_ms2 = peak_ms2

    def faint_steps_after(self, last_step_s: float, step_s: float, tolerance: float) -> list[float]:
        """Peaks that continue an ending bout's rhythm (the faint last steps of gait termination)."""
        return self._continue_rhythm(last_step_s, step_s, tolerance)

    def _continue_rhythm(self, from_s: float, step_s: float, tolerance: float) -> list[float]:
        """Up to ``MAX_STEPS_BACK`` recent local maxima (gait termination: the last stride), each about one step time
        from the previous, above the faint-step floor; the largest in each window."""
        floor = max(
            FAINT_FLOOR_SHARE * self._min_peak_ms2,
            FAINT_PEAK_SHARE * self._amplitude_ms2,
            FAINT_OVER_QUIET * self._quiet_peak_ms2,
        )
        found: list[float] = []
        for _ in range(MAX_STEPS_BACK):
            lo, hi = sorted((from_s + (1 - tolerance) * step_s, from_s + (1 + tolerance) * step_s))
            best = None
            for peak_s, peak_ms2 in self.recent_peaks:
                if lo <= peak_s <= hi and peak_ms2 >= floor and (best is None or peak_ms2 > best[1]):
                    best = (peak_s, peak_ms2)
            if best is None:
                break
            found.append(best[0])
            from_s = best[0]
        return found

    def rhythm_peak(self, lo_s: float, hi_s: float) -> tuple[float, float] | None:
        """The largest local maximum between ``lo_s`` and ``hi_s`` (where the rhythm puts the next
        step) that stands above the peaks of sway and noise while not walking, as (time, peak): a
        faint contact that only the rhythm can tell from noise. None if there is none."""
        floor = RHYTHM_OVER_QUIET * self._quiet_peak_ms2 if self._quiet_peaks_seen else self._min_peak_ms2
        best = None
        for peak_s, peak_ms2 in self.recent_peaks:
            if lo_s <= peak_s <= hi_s and peak_ms2 >= floor and (best is None or peak_ms2 > best[1]):
                best = (peak_s, peak_ms2)
        if best is not None:
            self._last_rhythm_s = best[0]
        return best

    def contact_s(self, step_s: float) -> float:
        """The initial contact of the step ``update`` has just returned (``step_s``, the pelvis's lowest
        point): the heel strike's impact, the sharpest rise of raw vertical acceleration from
        ``IMPACT_BEFORE_S`` before to ``IMPACT_AFTER_S`` after it. The lumbar peak comes in the loading
        response after the strike (Zijlstra & Hof 2003), later in slow gait, so no constant moves it back.
        ``step_s`` itself where the impact cannot be told: a rise that is steepest at the window's start
        (a soft contact, no transient in it), or a sample rate under ``IMPACT_MIN_RATE_HZ``."""
        rate_hz = self._block_means.sample_rate_hz
        if rate_hz < IMPACT_MIN_RATE_HZ:
            return step_s
        raw = self._raw_ms2
        dt_s = 1.0 / rate_hz
        newest = len(raw) - 1  # the sample at self._t1, the last one update() was fed
        lo = max(1, newest - round((self._t1 - step_s + IMPACT_BEFORE_S) / dt_s))
        hi = newest - round((self._t1 - step_s - IMPACT_AFTER_S) / dt_s)
        best, best_rise = lo, -math.inf
        for i in range(lo, hi + 1):
            rise = raw[i] - raw[i - 1]
            if rise > best_rise:
                best, best_rise = i, rise
        if best == lo or hi <= lo:
            return step_s
        return self._t1 - (newest - best + 0.5) * dt_s  # the steepest slope, between its two samples

    def _confirm(self) -> float:
        self._has_candidate = False
        self.last_peak_ms2 = self._candidate_ms2
        self._last_step_s = self._candidate_s
        if self._amplitude_ms2 == 0.0:
            self._amplitude_ms2 = self._candidate_ms2
        else:
            self._amplitude_ms2 += 0.3 * (self._candidate_ms2 - self._amplitude_ms2)
        return self._candidate_s


def _median(values) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _whole_steps(interval_s: float, median_s: float) -> int:
    """The steps an interval between two counted contacts held: whole step times, the missed ones in the steady
    rhythm (``MISSED_STEP_TOLERANCE``) and at most ``MAX_MISSED_STEPS`` of them (longer, it is a break: a pause
    inside the bout, standing, holds no steps); otherwise one (a hesitation, the slow first step of gait
    initiation, a long step of an asymmetric gait, the contact after a break: the step that came)."""
    whole_steps = max(1, round(interval_s / median_s))
    if whole_steps > 1 and (
        whole_steps > MAX_MISSED_STEPS + 1 or abs(interval_s / whole_steps - median_s) > MISSED_STEP_TOLERANCE * median_s
    ):
        return 1
    return whole_steps


def _interquartile_mean(values: list[float]) -> float:
    """The mean of the middle half of ``values`` (a quarter trimmed off each end)."""
    ordered = sorted(values)
    quarter = len(ordered) // 4
    middle = ordered[quarter : len(ordered) - quarter]
    return sum(middle) / len(middle)


def _merge_double_detections(steps: list[float], peaks: list[float], tolerance: float) -> None:
    """One heel strike seen twice (a slow walker's strike can show two peaks): of two
    detections much closer than the rhythm, drop the one whose removal leaves normal step
    times around the other (the smaller peak if either would do)."""
    typical_s = _median([b - a for a, b in zip(steps, steps[1:], strict=False)])

    def whole_step(a: int, b: int) -> bool:
        return 0 <= a and b < len(steps) and abs(steps[b] - steps[a] - typical_s) <= tolerance * typical_s

    i = 1
    while i < len(steps):
        if steps[i] - steps[i - 1] < ECHO_SHARE * typical_s:
            drop_earlier, drop_later = whole_step(i - 2, i), whole_step(i - 1, i + 1)
            if drop_earlier or drop_later:
                if drop_earlier and drop_later:
                    drop = i if peaks[i] < peaks[i - 1] else i - 1
                else:
                    drop = i - 1 if drop_earlier else i
                del steps[drop]
                del peaks[drop]
                continue
        i += 1


def _fold_second_peaks(steps: list[float], peaks: list[float], faint: set[float], heel_strikes: int,
                       tolerance: float, min_step_s: float, max_step_s: float) -> bool:
    """Slow gait with a long double support shows two peaks a step: the heel strike, then the trailing
    leg's push-off at the end of the double support, 0.2-0.55 of a step later and not larger. Its
    contacts alternate short and long intervals, so their median is no step time at all.

    On a whole-step grid: the step time is the median of every other interval summed (contact to the
    contact after next); walking from a first heel strike (the oldest contact that gives a grid), a
    contact under ``SECOND_PEAK_SHARE[1]`` of a step after the last heel strike is its second peak, any
    later one the next heel strike. The grid holds if at least ``heel_strikes`` heel strikes are whole
    steps apart (within ``tolerance``, one missed step allowed), in the walking range, and most steps
    show a second peak, typically before ``SECOND_PEAK_TYPICAL_SHARE`` of its step (more unlike than an
    asymmetric gait's alternate steps), with a peak like its heel strike's (``SECOND_PEAK_RATIO``: a gait
    that asymmetric has a weak side with far smaller strikes), in slow gait (``SLOW_GAIT_PEAK_MS2``).
    Then the second peaks are removed. Returns True if it folded."""
    for first in range(len(steps) - heel_strikes - heel_strikes // 2 + 1):  # the longest stretch that holds
        step_s = _median([b - a for a, b in zip(steps[first:], steps[first + 2 :], strict=False)])
        if not min_step_s <= step_s <= max_step_s:
            continue
        kept, seconds = [first], {}  # heel strike index -> its second peak's index
        for i in range(first + 1, len(steps)):
            since_s = steps[i] - steps[kept[-1]]
            if since_s < SECOND_PEAK_SHARE[1] * step_s:
                if since_s < SECOND_PEAK_SHARE[0] * step_s or kept[-1] in seconds:
                    break  # not a second peak, or a third contact in one step: not this pattern
                seconds[kept[-1]] = i
            else:
                kept.append(i)
        else:
            # each second peak's share of its own step (the walk may speed up or slow down)
            shares = [(steps[seconds[a]] - steps[a]) / (steps[b] - steps[a]) for a, b in zip(kept, kept[1:], strict=False) if a in seconds]
            strike_peaks = [peaks[a] for a in seconds]
            ratios = [peaks[j] / peaks[a] if peaks[a] > 0 else 1.0 for a, j in seconds.items()]
            missed = 0
            for a, b in zip(kept, kept[1:], strict=False):
                whole_steps = max(1, round((steps[b] - steps[a]) / step_s))
                missed += whole_steps - 1
                if missed > 1 or abs((steps[b] - steps[a]) / whole_steps - step_s) > tolerance * step_s:
                    break
            else:
                if (len(kept) >= heel_strikes and shares and 2 * len(shares) >= len(kept) - 1
                        and _median(shares) <= SECOND_PEAK_TYPICAL_SHARE and _median(strike_peaks) <= SLOW_GAIT_PEAK_MS2
                        and SECOND_PEAK_RATIO[0] <= _median(ratios) <= SECOND_PEAK_RATIO[1]):
                    keep = set(kept)
                    for i in range(len(steps) - 1, first - 1, -1):
                        if i not in keep:
                            faint.discard(steps[i])
                            del steps[i]
                            del peaks[i]
                    return True
    return False


class BoutTracker:
    """Turns step times into bouts and walk time."""

    def __init__(self, settings: GaitSettings, step_latency_s: float = CONFIRM_S) -> None:
        self.configure(settings)
        self.step_latency_s = step_latency_s  # a step is known this long after its contact (StepDetector.step_latency_s)
        self._pending: list[float] = []
        self._pending_peaks: list[float] = []
        self._pending_faint_s: set[float] = set()  # pending contacts found at the rhythm's time, not detected
        self._contact_of: dict[float, float] = {}  # detected step -> its initial contact (the heel strike), for the bout
        self.in_bout = False
        self._gap_allowance_s = 0.0
        self.rhythm_window_s = (0.0, 0.0)
        self.ended_last_step_s = 0.0  # the last counted step of the bout ``end`` closed, as the step was detected
        self._reset_bout()

    def configure(self, settings: GaitSettings) -> None:
        """New settings (a config reload); the bout in progress goes on."""
        self._min_steps = settings.min_bout_steps
        self._max_gap_s = settings.max_gap_s
        self._tolerance = settings.rhythm_tolerance
        self._min_regularity = settings.min_regularity
        self._min_interval_s = 60.0 / settings.max_cadence_spm * (1.0 - settings.rhythm_tolerance)
        self._max_interval_s = 60.0 / settings.min_cadence_spm * (1.0 + settings.rhythm_tolerance)
        # Before a bout, steps this far apart can still be one walk: a missed step of the slowest walker.
        self._pending_gap_s = max(settings.max_gap_s, 2.0 * 60.0 / settings.min_cadence_spm)

    def _reset_bout(self) -> None:
        self.rhythm_due_s = math.inf  # when the rhythm's next step should have come: look for a faint one
        self._faint_in_row = 0
        self._regularity_avg = 1.0  # over the bout's last few steps: the movement's regularity, the share off the rhythm
        self._off_rhythm_avg = 0.0
        self._irregular = False
        self._regular_until = (0, 0, 0)  # (step times, steps, missed steps) while the movement was last regular
        self._held_s: float | None = None
        # (time, whole steps, faint) of contacts after missed steps or found only by the rhythm,
        # counted once a detected step follows in rhythm
        self._unconfirmed: list[tuple[float, int, bool]] = []
        self._first_s = 0.0
        self._last_s = 0.0
        self._steps = 0
        self._missed_steps = 0
        self._intervals: list[float] = []
        self._all_intervals: list[float] = []
        self._median_s = 0.0
        self._step_times: list[float] = []
        self._folded = False  # the bout's counted contacts were folded into whole steps
        self._retimable = False  # the last counted step came one step after the one before (_retime_last_step)
        self._contact_peaks: deque[tuple[float, float]] = deque(maxlen=RECENT_PEAKS)  # detected contacts' peaks

    @property
    def median_step_s(self) -> float:
        return self._median_s

    @property
    def first_step_s(self) -> float:
        return self._first_s

    @property
    def last_step_s(self) -> float:
        """The last contact of the bout (counted, or waiting for the rhythm to confirm it)."""
        return self._latest_s()

    def _faint_walker(self) -> bool:
        return self._missed_steps >= FAINT_WALKER_MISSED_SHARE * self._steps

    def bout_start_s(self) -> float:
        return self._first_s

    def live_duration_s(self, t_s: float) -> float:
        """Walk time of the bout in progress at ``t_s`` (a step is known ``step_latency_s`` after it): grows with
        the clock from the first step while the next step is due, so it does not lag a step behind while
        walking; once a step is overdue the walk may have ended, and it is the bout's span to the contact
        before its last (``end``: the last one is the closing step). So when a walk ends it falls back, by
        about two step times (the closing step and the step time the clock ran on after it), to what the
        bout will report."""
        if not self.in_bout:
            return 0.0
        known_s = t_s - self.step_latency_s
        last_s = self._last_s
        if known_s - last_s > (1.0 + self._tolerance) * self._median_s:
            known_s = self._before_closing_s()
        return max(0.0, min(known_s, last_s + self._median_s) - self._first_s)

    def live_steps(self) -> int:
        """The bout's steps as it would end now (``end``): to the contact before its last, so the count
        shown while walking never falls back when the walk ends on its closing step."""
        if not self.in_bout:
            return 0
        return self._steps - self._closing_whole_steps()

    def drop_steps_until(self, transition_s: float) -> None:
        """The trunk was flexed at ``transition_s`` (standing up: a sit-to-stand flexes it 30-45 deg):
        steps taken in before the bout's rhythm at or before then were the feet moving while rising,
        not walking, and the bout starts after them. The steps of the rhythm itself stay."""
        times = self._step_times
        keep_from = 0
        while keep_from < len(times) - self._min_steps and times[keep_from] <= transition_s:
            keep_from += 1
        if keep_from:
            del times[:keep_from]
            del self._all_intervals[:keep_from]
            self._first_s = times[0]
            self._steps -= keep_from

    def append_steps(self, steps_s: list[float]) -> None:
        """Take in steps found after the bout's last step (before it is closed). Being faint, they
        continue the rhythm but do not confirm steps that came after missed steps."""
        self._drop_faint_tail()
        if self._unconfirmed:
            self._unconfirmed.extend((step_s, 0, False) for step_s in steps_s)
            return
        for step_s in steps_s:
            self._continue_bout(step_s)

    def bridge_gap(self, gap_s: float) -> None:
        """The sample stream had a hole of ``gap_s``: if walking resumes right after it, the bout goes on."""
        if self.in_bout:
            self._gap_allowance_s += gap_s

    def add_step(self, step_s: float, peak_ms2: float = 0.0, regularity=None, contact_s: float | None = None) -> bool:
        """Feed a detected step (and its peak); True when it started a bout.

        ``regularity(step_s) -> -1..1``, if given, is the autocorrelation of the movement at that
        step time (``StepDetector.regularity``): a bout starts only where it reaches ``min_regularity``.
        ``contact_s``, if given, is the step's initial contact (``StepDetector.contact_s``): the bout's
        rules run on the steps' own times, and the bout reports its steps, start and end at their contacts."""
        self._faint_in_row = 0
        contact_of = self._contact_of
        if contact_s is not None:
            contact_of[step_s] = contact_s
        if self.in_bout and regularity is not None:
            self._test_regularity(step_s, regularity)
        self._contact_peaks.append((step_s, peak_ms2))
        was_in_bout = self.in_bout
        started = self._add_step(step_s, peak_ms2, regularity)
        if not self.in_bout and contact_of:  # keep only the contacts of steps a bout may still take in
            oldest_s = self._pending[0] if self._pending else math.inf
            for old_s in [t for t in contact_of if t < oldest_s]:
                del contact_of[old_s]
        if was_in_bout:
            self._fold_counted_second_peaks()
        self._expect_next_step()
        return started

    def _fold_counted_second_peaks(self) -> None:
        """A bout that opened on a slow walker's two peaks a step (its messy first steps hid the pattern)
        counts each step twice: once, early in the bout, if its counted contacts show the whole-step grid
        (``_fold_second_peaks``), the second peaks are uncounted and the bout recounted on that grid."""
        times = self._step_times
        # no lower bound here: _fold_second_peaks needs its heel strikes (a six-step walk is 11 contacts)
        if (self._folded or len(times) > COUNTED_FOLD_CONTACTS
                or self._unconfirmed or self._held_s is not None):
            return
        peak_of = dict(self._contact_peaks)
        folded = list(times)
        if not _fold_second_peaks(folded, [peak_of.get(t, 0.0) for t in folded], set(), self._min_steps,
                                  self._tolerance, self._min_interval_s, self._max_interval_s):
            return
        self._folded = True
        self._retimable = False
        intervals = [b - a for a, b in zip(folded, folded[1:], strict=False)]
        step_s = _median(intervals)
        counts = [_whole_steps(i, step_s) for i in intervals]
        self._step_times = folded
        self._steps = 1 + sum(counts)
        self._missed_steps = sum(c - 1 for c in counts)
        self._all_intervals = [i / c for i, c in zip(intervals, counts, strict=True)]
        self._intervals = self._all_intervals[-RECENT_INTERVALS:]
        self._median_s = _median(self._intervals)
        self._first_s, self._last_s = folded[0], folded[-1]

    def _test_regularity(self, step_s: float, regularity) -> None:
        """Walking repeats its movement every step (or stride) all along; contacts that keep coming at
        random (knocking, handling the belt after a walk) do not, and once a bout has started any
        contact 0.55-1.5 step times on (or whole missed steps later) continues it. Over the last few
        steps, a movement this irregular (``IRREGULAR_BELOW``) with step times often off the rhythm
        (``IRREGULAR_OFF_SHARE``) ends the bout. Either alone is not enough: a very slow or shuffling
        walker's regularity dips for a few steps, and daily-living step times vary 30-40 %. (Tested on
        every step with a hysteresis instead, it cut the very slow walkers' bouts.)"""
        median_s = self._median_s
        interval = step_s - self._latest_s()
        if interval < DOUBLE_STEP_SHARE * median_s:
            return
        whole_steps = max(1, round(interval / median_s))
        off = abs(interval / whole_steps - median_s) > OFF_RHYTHM_SHARE * median_s
        step_regularity = regularity(median_s)
        self._regularity_avg += IRREGULAR_ALPHA * (step_regularity - self._regularity_avg)
        self._off_rhythm_avg += IRREGULAR_ALPHA * (off - self._off_rhythm_avg)
        if self._regularity_avg >= self._min_regularity:
            self._regular_until = (len(self._step_times), self._steps, self._missed_steps)
        elif self._regularity_avg < IRREGULAR_BELOW and self._off_rhythm_avg >= IRREGULAR_OFF_SHARE:
            self._irregular = True
            self._end_where_regular()

    def _end_where_regular(self) -> None:
        """The bout ends at its last step while its movement was still regular (as regular as a bout's
        start needs): the contacts after it, the walk's own end or no walk at all, are dropped."""
        kept, steps, missed = self._regular_until
        times = self._step_times
        if 2 <= kept < len(times):
            del times[kept:]
            del self._all_intervals[kept - 1 :]
            self._steps, self._missed_steps = steps, missed
            self._last_s = times[-1]
            self._retimable = False
        self._unconfirmed.clear()
        self._held_s = None

    def add_rhythm_step(self, found: tuple[float, float] | None, regularity=None) -> None:
        """The rhythm's next step did not come as a detected step by ``rhythm_due_s``: take ``found``
        (``StepDetector.rhythm_peak`` over ``rhythm_window_s``: a faint contact, or None) as the step.

        Steps too faint to tell from standing noise one by one, told by their rhythm: inside a bout,
        or before one while the movement is regular at that step time (the amplitude-free test that
        starts a bout). It counts only once a detected step follows in rhythm (a walk that goes on),
        never at the end of a bout, and at most ``MAX_FAINT_IN_ROW`` in a row."""
        self.rhythm_due_s = math.inf
        if found is None:
            return
        step_s, peak_ms2 = found
        self._faint_in_row += 1
        if self.in_bout:
            if not self._faint_walker():  # a strong walker's noise-level peaks between sparse contacts
                return  # after a walk (turning, sitting down) are not its steps
            self._unconfirmed.append((step_s, 1, True))
            self._follow_rhythm(step_s - self._latest_s(True))
        else:
            step_time_s = self._pending_step_s()
            if regularity is None or step_time_s is None or regularity(step_time_s) < self._min_regularity:
                return
            self._pending.append(step_s)
            self._pending_peaks.append(peak_ms2)
            self._pending_faint_s.add(step_s)
        self._expect_next_step()

    def _pending_step_s(self) -> float | None:
        """The step time of the contacts before a bout (their last few intervals), if in the walking range."""
        pending = self._pending
        if len(pending) < 2:
            return None
        recent = pending[-5:]
        step_s = _median([b - a for a, b in zip(recent, recent[1:], strict=False)])
        return step_s if self._min_interval_s <= step_s <= self._max_interval_s else None

    def _expect_next_step(self) -> None:
        """Where the rhythm puts the next step (``rhythm_window_s``), and when to look for it if no
        detected step came (``rhythm_due_s``: the window's end plus the detector's step latency)."""
        if self._faint_in_row >= MAX_FAINT_IN_ROW:
            self.rhythm_due_s = math.inf
            return
        if self.in_bout:
            if self._held_s is not None:  # after a break: walking resumes with a stride, not a faint contact
                self.rhythm_due_s = math.inf
                return
            step_s = self._median_s
            last_s = self._latest_s()
        else:
            pending_step_s = self._pending_step_s()
            if pending_step_s is None:
                self.rhythm_due_s = math.inf
                return
            step_s, last_s = pending_step_s, self._pending[-1]
        self.rhythm_window_s = (last_s + (1.0 - RHYTHM_WINDOW_SHARE) * step_s, last_s + (1.0 + RHYTHM_WINDOW_SHARE) * step_s)
        self.rhythm_due_s = self.rhythm_window_s[1] + self.step_latency_s

    def _add_step(self, step_s: float, peak_ms2: float, regularity) -> bool:
        if self.in_bout:
            self._continue_bout(step_s)
            return False
        pending = self._pending
        peaks = self._pending_peaks
        faint = self._pending_faint_s
        if pending and pending[-1] in faint:
            step_time_s = self._pending_step_s()
            if step_time_s is None or step_s - pending[-1] > (1.0 + RHYTHM_WINDOW_SHARE) * step_time_s:
                while pending and pending[-1] in faint:  # faint contacts count only if the walk goes on a step later
                    faint.discard(pending.pop())
                    peaks.pop()
        if pending and step_s - pending[-1] > self._pending_gap_s:
            pending.clear()
            peaks.clear()
            self._pending_faint_s.clear()
        pending.append(step_s)
        peaks.append(peak_ms2)
        n = self._min_steps
        if len(pending) >= n:
            _merge_double_detections(pending, peaks, self._tolerance)
            _fold_second_peaks(pending, peaks, self._pending_faint_s, n, self._tolerance,
                               self._min_interval_s, self._max_interval_s)
        if len(pending) < n:
            return False
        window = pending[-n:]
        faint = self._pending_faint_s
        before_s = pending[-n - 1] if len(pending) > n else None
        median_s = self._rhythm_step_s(window, [p for t, p in zip(window, peaks[-n:], strict=True) if t not in faint],
                                       before_s, first_detected=window[0] not in faint)
        if median_s is not None and regularity is not None and regularity(median_s) < self._min_regularity:
            median_s = None
        if median_s is None:
            if len(pending) > MAX_PENDING_STEPS:
                faint.discard(pending[0])
                del pending[0]
                del peaks[0]
            return False
        first = len(pending) - n
        initiation_floor_ms2 = INITIATION_PEAK_SHARE * _median(peaks[-n:])
        while (
            first > 0
            and INITIATION_SHARE[0] * median_s <= pending[first] - pending[first - 1] <= INITIATION_SHARE[1] * median_s
            and peaks[first - 1] >= initiation_floor_ms2
        ):
            first -= 1  # the first steps of a walk (gait initiation) are less regular: take them in
        intervals = [b - a for a, b in zip(pending[first:], pending[first + 1 :], strict=False)]
        # the rhythm allows a missed step in the window (an interval of two step times): it is a step walked
        whole_steps = [_whole_steps(interval, median_s) for interval in intervals]
        self.in_bout = True
        self._first_s = pending[first]
        self._last_s = window[-1]
        self._steps = 1 + sum(whole_steps)
        self._missed_steps = self._steps - (len(pending) - first)
        self._all_intervals = [interval / n for interval, n in zip(intervals, whole_steps, strict=True)]
        self._intervals = self._all_intervals[-RECENT_INTERVALS:]
        self._median_s = median_s
        self._step_times = pending[first:]
        self._regular_until = (len(self._step_times), self._steps, 0)
        # opened a contact early (on a faint first step), the window's last may be a noise peak before its heel strike:
        # it may give way to the strike (_retime_last_step) if it came one step after a contact that keeps the rhythm
        on_rhythm = abs(window[-2] - window[-3] - median_s) <= MISSED_STEP_TOLERANCE * median_s
        self._retimable = on_rhythm and round((window[-1] - window[-2]) / median_s) == 1
        pending.clear()
        peaks.clear()
        faint.clear()
        return True

    def _rhythm_step_s(self, window: list[float], peaks: list[float], before_s: float | None = None,
                       first_detected: bool = False) -> float | None:
        """The step time if ``window`` is walking's rhythm, else None.

        Every step time within ``rhythm_tolerance`` of the median, in the walking
        cadence range, allowing one missed step (an interval of two step times);
        and the heel-strike peaks alike (within a factor of ``PEAK_SPREAD``):
        fidgeting is irregular in both timing and force. ``peaks`` are the detected
        contacts' (``peaks[0]`` is ``window[0]``'s if ``first_detected``, not a faint
        contact found at the rhythm's time). The walk's first step may be fainter, down to
        ``INITIATION_PEAK_SHARE`` of the others: gait initiation starts from standing,
        its first heel strike at a fraction of the walking speed, which the first step
        brings to near its steady value (Brenière & Do 1986, Jian et al. 1993). Only the
        first: ``window[0]`` is it when it leads into the rhythm at a gait initiation's step
        time (``INITIATION_SHARE``, as the steps taken in before a rhythm) and the walker was
        standing before it: no contact (``before_s``) within the slowest such step time.
        """
        intervals = [b - a for a, b in zip(window, window[1:], strict=False)]
        median_s = _median(intervals)
        if not self._min_interval_s <= median_s <= self._max_interval_s:
            return None
        missed = 0
        for interval in intervals:
            whole_steps = max(1, round(interval / median_s))
            missed += whole_steps - 1
            if missed > 1 or abs(interval / whole_steps - median_s) > self._tolerance * median_s:
                return None
        lo_s, hi_s = INITIATION_SHARE[0] * median_s, INITIATION_SHARE[1] * median_s
        first_peak = None
        if first_detected and lo_s <= window[1] - window[0] <= hi_s and (before_s is None or window[0] - before_s > hi_s):
            first_peak, peaks = peaks[0], peaks[1:]  # the walk's first step: its peak is tested on its own
        typical_peak = _median(peaks)
        if typical_peak > 0 and not all(typical_peak / PEAK_SPREAD <= p <= typical_peak * PEAK_SPREAD for p in peaks):
            return None
        if first_peak is not None and not INITIATION_PEAK_SHARE * typical_peak <= first_peak <= typical_peak * PEAK_SPREAD:
            return None
        return median_s

    def _continue_bout(self, step_s: float) -> None:
        """After a break (longer than the slowest step, and not missed steps) walking resumes
        with a stride, not a lone contact: the first step after it is held (keeping the bout open)
        until the next one comes, and dropped if none does before the bout ends."""
        median_s = self._median_s
        held_s = self._held_s
        if self._unconfirmed and self._unconfirmed[-1][2] and step_s - self._latest_s() > (1.0 + RHYTHM_WINDOW_SHARE) * median_s:
            self._drop_faint_tail()  # faint contacts count only if the walk goes on a step later, not after a pause
        if held_s is None:
            interval = step_s - self._latest_s()
            if interval < DOUBLE_STEP_SHARE * median_s:
                self._retime_last_step(step_s)
                return
            if self._is_break(interval):
                self._held_s = step_s
                return
        else:
            interval = step_s - held_s
            if interval < DOUBLE_STEP_SHARE * median_s:
                return
            self._held_s = None
            self._count_step(held_s)  # a second contact after it: the walk went on (a slow walker's missed steps)
            if self._is_break(interval):
                self._held_s = step_s
                return
        self._count_step(step_s)

    def _retime_last_step(self, step_s: float) -> None:
        """Two contacts in one step: slow gait's long step shows noise-level peaks near the detection floor
        before its heel strike (the pelvis barely moves). The bout counts one step, at the heel strike: if
        ``step_s`` is stronger than the contact counted last, one step time after the step before it (in
        the steady rhythm, ``MISSED_STEP_TOLERANCE``) and nearer it, it is the step. Keeping the early
        one would make the next step time short, and then the push-offs would count as steps until the
        bout's step time had halved (two counts a step)."""
        times = self._step_times
        if not self._retimable or self._unconfirmed or len(times) < 2:
            return
        peak_of = dict(self._contact_peaks)
        before_s, median_s = times[-2], self._median_s
        off_s = abs(step_s - before_s - median_s)
        if (peak_of.get(step_s, 0.0) <= peak_of.get(times[-1], math.inf) or off_s > MISSED_STEP_TOLERANCE * median_s
                or off_s >= abs(times[-1] - before_s - median_s)):
            return
        times[-1] = self._last_s = step_s
        self._all_intervals[-1] = self._intervals[-1] = step_s - before_s
        self._median_s = _median(self._intervals)

    def _is_break(self, interval_s: float) -> bool:
        """Longer than the slowest walker's step and not whole missed steps of the rhythm."""
        median_s = self._median_s
        whole_steps = round(interval_s / median_s)
        if interval_s <= max(BREAK_SHARE * median_s, self._max_interval_s):
            return False
        return not (whole_steps <= MAX_MISSED_STEPS + 1 and abs(interval_s / whole_steps - median_s) <= MISSED_STEP_TOLERANCE * median_s)

    @property
    def last_detected_step_s(self) -> float:
        """The last contact of the bout, not counting faint ones at the rhythm's time that no detected step followed."""
        for step_s, _, faint in reversed(self._unconfirmed):
            if not faint:
                return step_s
        return self._last_s

    def _drop_faint_tail(self) -> None:
        unconfirmed = self._unconfirmed
        while unconfirmed and unconfirmed[-1][2]:
            unconfirmed.pop()

    def _latest_s(self, before_last: bool = False) -> float:
        unconfirmed = self._unconfirmed[:-1] if before_last else self._unconfirmed
        return unconfirmed[-1][0] if unconfirmed else self._last_s

    def _count_step(self, step_s: float) -> None:
        """Count a step; after missed steps it waits until a step follows in rhythm: a walk that goes on
        confirms its missed steps, while the sparse contacts of sitting down or turning after a walk
        (about two step times apart) never do, and are dropped when the bout ends."""
        interval = step_s - self._latest_s()
        median_s = self._median_s
        self._gap_allowance_s = 0.0
        whole_steps = _whole_steps(interval, median_s)
        if whole_steps > 1:
            self._unconfirmed.append((step_s, whole_steps, False))
            self._follow_rhythm(interval / whole_steps)
            if sum(not faint for _, _, faint in self._unconfirmed) >= self._min_steps:  # as many contacts in
                self._commit_unconfirmed(len(self._unconfirmed))  # the rhythm as start a bout: alternate steps are faint
            return
        self._commit_unconfirmed(len(self._unconfirmed), followed=True)
        self._commit_step(step_s)

    def _commit_unconfirmed(self, n: int, followed: bool = False) -> None:
        """Count the first ``n`` waiting contacts; faint ones at the end count only if a detected step followed."""
        if not followed:
            self._drop_faint_tail()
        unconfirmed = self._unconfirmed
        for unconfirmed_s, whole_steps, _ in unconfirmed[:n]:
            self._commit_step(unconfirmed_s, whole_steps)
        unconfirmed.clear()

    def _follow_rhythm(self, step_time_s: float) -> None:
        recent = self._intervals
        recent.append(step_time_s)
        if len(recent) > RECENT_INTERVALS:
            del recent[0]
        self._median_s = _median(recent)

    def _commit_step(self, step_s: float, whole_steps: int = 0) -> None:
        """Count a step (and ``whole_steps - 1`` missed steps before it, if known: its rhythm was followed)."""
        interval = step_s - self._last_s
        median_s = self._median_s
        rhythm_followed = whole_steps > 0
        if not rhythm_followed:
            whole_steps = _whole_steps(interval, median_s)
        self._retimable = not rhythm_followed and whole_steps == 1  # its interval is the rhythm's last
        self._steps += whole_steps
        self._missed_steps += whole_steps - 1
        self._last_s = step_s
        self._step_times.append(step_s)
        per_step = interval / whole_steps
        self._all_intervals.append(per_step)
        if not rhythm_followed:
            self._follow_rhythm(per_step)

    def check_end(self, t_s: float) -> bool:
        """Call every sample while in a bout: True once steps have stopped for longer than a gap (or the
        movement stopped repeating)."""
        if self._irregular:
            return True
        missed_steps_s = (MAX_MISSED_STEPS + 1 + self._tolerance) * self._median_s
        gap_s = max(self._max_gap_s, missed_steps_s) + self.step_latency_s + self._gap_allowance_s
        held_s = self._held_s
        if held_s is None:
            return t_s - self._latest_s() > gap_s
        if t_s - self._last_s <= gap_s:
            return False
        # Past a break after the bout's last step, a contact held after that break (no stride has followed it)
        # keeps the bout open only while a next contact could still continue the walk from it: a lone contact
        # (a knock, a noise peak, a foot moved while standing) is no stride, and cannot stretch a bout across a
        # pause longer than a break.
        longest_step_s = max(self._max_interval_s, (MAX_MISSED_STEPS + 1) * (1.0 + MISSED_STEP_TOLERANCE) * self._median_s)
        return t_s - held_s > min(gap_s, longest_step_s + self.step_latency_s + self._gap_allowance_s)

    def _before_closing_s(self) -> float:
        """The contact counted before the bout's last one."""
        times = self._step_times
        return times[-2] if len(times) >= 2 else self._last_s

    def _closing_whole_steps(self) -> int:
        """The steps the bout's last contact (the closing step, once the walk has ended) counted: one, or with
        the missed steps before it; none while the bout has a single contact."""
        times = self._step_times
        if len(times) < 2:
            return 0
        return max(1, round((times[-1] - times[-2]) / self._all_intervals[-1]))

    def _drop_closing_contact(self) -> float:
        """A walk ends with gait termination's closing step (the trailing foot set down beside the other). Its
        contact starts no stride: by the Mobilise-D definition the last stride before a break is removed
        (mobgap's ``MaxBreakCriteria(remove_last_ic=True)``), so the bout ends at the contact before it, and
        its steps are its contacts up to there (``n_raw_initial_contacts``; the INDIP reference lists no
        contact for it). The closing step is often slower than the walk's (no push-off): an interval of about
        two step times before it is that, not a missed step, and is uncounted with it. Returns the new end."""
        times = self._step_times
        if len(times) < 2:
            return self._last_s
        whole_steps = self._closing_whole_steps()
        self._all_intervals.pop()
        self._steps -= whole_steps
        times.pop()
        self._last_s = times[-1]
        return self._last_s

    def end(self) -> Bout | None:
        """Close the bout in progress and return it: at the contact before its last (the closing step),
        unless the movement's irregularity ended it (``_end_where_regular``: at its last regular step)."""
        if not self.in_bout:
            return None
        self._commit_unconfirmed(len(self._unconfirmed) if self._faint_walker() else TERMINATION_STEPS)
        end_s = self._last_s if self._irregular else self._drop_closing_contact()
        self.ended_last_step_s = end_s
        intervals = self._all_intervals
        contact_of = self._contact_of  # a step's initial contact; a faint one's own time (no impact to find)
        contacts_s = [contact_of.get(t, t) for t in self._step_times]
        # The cadence of the walk's initial contacts (the reference's, and mobgap's, cadence comes from them;
        # the detection times' intervals, split at missed steps, run a few percent short), from its stride
        # times (an asymmetric walker's alternate steps are unalike, its strides alike), by their
        # interquartile mean: pauses inside the bout (up to max_gap_s), a missed contact and the slower
        # strides of gait initiation and termination do not pull it down, and a few contacts moved by a
        # sample or two move it less than they move a median.
        stride_times_s = [b - a for a, b in zip(contacts_s, contacts_s[2:], strict=False)]
        cadence_spm = 120.0 / _interquartile_mean(stride_times_s) if stride_times_s else 0.0
        mean = sum(intervals) / len(intervals)
        variance = sum((i - mean) ** 2 for i in intervals) / len(intervals)
        bout = Bout(
            start_s=contact_of.get(self._first_s, self._first_s),
            end_s=contact_of.get(end_s, end_s),
            steps=self._steps,
            cadence_spm=cadence_spm,
            step_time_cv=math.sqrt(variance) / mean if mean > 0 else 0.0,
            step_times_s=tuple(contacts_s),
        )
        contact_of.clear()
        self.in_bout = False
        self._gap_allowance_s = 0.0
        self._reset_bout()
        return bout
