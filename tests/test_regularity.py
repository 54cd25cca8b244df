"""StepDetector.regularity: the normalised autocorrelation of the last REGULARITY_WINDOW_S of vertical
acceleration at the step and stride lags (Moe-Nilssen & Helbostad 2004), summed when the bout rules ask."""

import numpy as np
import pytest

from walkcoach.device.core.gait import REGULARITY_WINDOW_S, StepDetector
from walkcoach.device.core.settings import GaitSettings


def feed(detector: StepDetector, acc_ms2: np.ndarray, rate_hz: float, start_s: float = 0.0) -> float:
    t_s = start_s
    for i, a in enumerate(acc_ms2.tolist()):
        t_s = start_s + i / rate_hz
        detector.update(t_s, a)
    return t_s + 1.0 / rate_hz


def walking(duration_s: float, rate_hz: float, step_s: float, *, stride_asymmetry: float = 0.0, seed: int = 0):
    """Vertical acceleration repeating every step (a peak per heel strike), alternate steps weaker by
    ``stride_asymmetry``, with a slightly wandering step time and sensor noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, 1.0 / rate_hz)
    phase = 2 * np.pi * np.cumsum(1.0 / (step_s * (1.0 + 0.02 * np.sin(2 * np.pi * t / 9.0)))) / rate_hz
    strength = 1.0 - stride_asymmetry * (np.cos(phase / 2.0) > 0)  # every other step
    return 2.0 * strength * np.cos(phase) + 0.1 * rng.standard_normal(len(t))


def fidgeting(duration_s: float, rate_hz: float, seed: int = 1):
    """Irregular movement with walking's frequencies: low-passed noise, no repeat."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(duration_s * rate_hz))
    kernel = np.hanning(int(0.3 * rate_hz))
    return 3.0 * np.convolve(noise, kernel / kernel.sum(), mode="same")


@pytest.mark.parametrize("rate_hz", [50.0, 100.0])
def test_walking_is_regular_at_its_step_time_and_fidgeting_is_not(rate_hz):
    walk = StepDetector(GaitSettings(), rate_hz)
    feed(walk, walking(20.0, rate_hz, 0.55), rate_hz)
    assert walk.regularity(0.55) > 0.8
    fidgets = [StepDetector(GaitSettings(), rate_hz) for _ in range(5)]
    for seed, fidget in enumerate(fidgets):
        feed(fidget, fidgeting(20.0, rate_hz, seed), rate_hz)
    for step_s in (0.4, 0.55, 0.7, 1.0, 1.4):  # by chance one window may look regular; on average none does
        assert np.mean([fidget.regularity(step_s) for fidget in fidgets]) < GaitSettings().min_regularity


def test_an_asymmetric_walk_is_regular_at_its_stride():
    rate_hz = 100.0
    walk = StepDetector(GaitSettings(), rate_hz)
    feed(walk, walking(20.0, rate_hz, 0.6, stride_asymmetry=0.8), rate_hz)
    assert walk.regularity(0.6) > 0.8  # the stride lag (two steps) repeats even when the step lag does not


def test_regularity_does_not_depend_on_amplitude():
    rate_hz = 50.0
    faint, strong = StepDetector(GaitSettings(), rate_hz), StepDetector(GaitSettings(), rate_hz)
    signal = walking(15.0, rate_hz, 1.2, seed=4)  # a slow walker
    feed(faint, 0.05 * signal, rate_hz)
    feed(strong, 5.0 * signal, rate_hz)
    assert faint.regularity(1.2) == pytest.approx(strong.regularity(1.2), abs=1e-9)
    assert faint.regularity(1.2) > 0.8


def test_only_the_last_window_counts():
    """Walking followed by a window of fidgeting is not regular, fidgeting followed by a window of walking is."""
    rate_hz = 100.0
    stopped = StepDetector(GaitSettings(), rate_hz)
    end_s = feed(stopped, walking(60.0, rate_hz, 0.5), rate_hz)
    feed(stopped, fidgeting(REGULARITY_WINDOW_S + 0.5, rate_hz), rate_hz, start_s=end_s)
    assert stopped.regularity(0.5) < 0.5
    started = StepDetector(GaitSettings(), rate_hz)
    end_s = feed(started, fidgeting(60.0, rate_hz), rate_hz)
    feed(started, walking(REGULARITY_WINDOW_S + 0.5, rate_hz, 0.5), rate_hz, start_s=end_s)
    assert started.regularity(0.5) > 0.8


def test_a_restart_forgets_the_movement_before_it():
    rate_hz = 100.0
    detector = StepDetector(GaitSettings(), rate_hz)
    feed(detector, walking(20.0, rate_hz, 0.5), rate_hz)
    detector.restart()
    assert detector.regularity(0.5) == -1.0  # nothing in the window yet: no evidence of walking


@pytest.mark.parametrize("rate_hz", [50.0, 100.0])
def test_a_slow_drift_under_fidgeting_is_not_regular(rate_hz):
    """A slow change of the trunk's tilt (leaning, turning over) moves the sensor bias projected on gravity,
    and the detector's 2 s bias tracker leaves a slow wave: a 0.1 Hz wave correlates with itself at every
    step and stride lag. The regularity is summed on the movement above the slowest stride (0.33 Hz at 40
    steps/min): fidgeting with a drift is as irregular as without, walking with one as regular."""
    t_s = np.arange(0.0, 20.0, 1.0 / rate_hz)
    drift = np.sin(2 * np.pi * 0.1 * t_s)
    fidgets = [StepDetector(GaitSettings(), rate_hz) for _ in range(5)]
    for seed, fidget in enumerate(fidgets):
        feed(fidget, fidgeting(20.0, rate_hz, seed) + drift, rate_hz)
    for step_s in (0.4, 0.55, 0.7, 1.0):
        assert np.mean([fidget.regularity(step_s) for fidget in fidgets]) < GaitSettings().min_regularity
    slow_walker = StepDetector(GaitSettings(), rate_hz)
    feed(slow_walker, 0.3 * walking(20.0, rate_hz, 1.5) + drift, rate_hz)  # 40 steps/min, fainter than the drift
    assert slow_walker.regularity(1.5) > 0.8
