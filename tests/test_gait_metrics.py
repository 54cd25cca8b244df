"""Step length by the inverted pendulum (Zijlstra & Hof 2003) and per-bout gait metrics."""

import math

import numpy as np
import pytest

from walkcoach.device.core.gait import CONFIRM_S, StepDetector
from walkcoach.device.core.gait_metrics import BoutGaitMetrics, StepLengthEstimator, StepLengthSettings, step_rise_m
from walkcoach.device.core.settings import GaitSettings

RATE_HZ = 100.0


def pendulum_signal(rise_m: float, step_s: float, duration_s: float = 40.0, *, rate_hz: float = RATE_HZ,
                    bias_ms2: float = 0.2, noise_ms2: float = 0.05, seed: int = 0):
    """Vertical acceleration of a pelvis that dips by ``rise_m`` at each heel strike (k * step_s),
    with a slowly varying step time, a constant sensor bias and white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, 1.0 / rate_hz)
    period_s = step_s * (1.0 + 0.03 * np.sin(2 * np.pi * t / 7.0))
    phase = 2 * np.pi * np.cumsum(1.0 / period_s) / rate_hz
    height_m = -0.5 * rise_m * np.cos(phase)
    acc = np.gradient(np.gradient(height_m, 1.0 / rate_hz), 1.0 / rate_hz)
    return t, acc + bias_ms2 + noise_ms2 * rng.standard_normal(len(t))


def run_estimator(t, acc, settings=StepLengthSettings(), rate_hz=RATE_HZ):
    estimator = StepLengthEstimator(settings, rate_hz)
    detector = StepDetector(GaitSettings(), rate_hz)
    lengths, rises = [], []
    for t_s, a in zip(t.tolist(), acc.tolist(), strict=True):
        estimator.update(t_s, a)
        step_s = detector.update(t_s, a)
        if step_s is not None:
            length = estimator.on_step(step_s + detector.filter_delay_s)  # peak to peak, as the coach does
            if length is not None:
                lengths.append(length)
                rises.append(estimator.last_rise_m)
    return lengths, rises


@pytest.mark.parametrize("rise_m, step_s", [(0.015, 0.75), (0.03, 0.55), (0.045, 0.5), (0.025, 1.1)])
def test_rise_of_a_known_pendulum_within_10_percent(rise_m, step_s):
    t, acc = pendulum_signal(rise_m, step_s)
    lengths, rises = run_estimator(t, acc)
    assert len(rises) > 0.8 * 40.0 / step_s
    assert np.median(rises) == pytest.approx(rise_m, rel=0.10)
    settings = StepLengthSettings()
    expected_m = settings.correction_factor * 2 * math.sqrt(2 * settings.leg_length_m * rise_m - rise_m**2)
    assert np.median(lengths) == pytest.approx(expected_m, rel=0.05)


def test_a_step_that_starts_anywhere_in_the_cycle_has_the_same_rise():
    dt_s = 0.01
    t = np.arange(0.0, 0.6, dt_s)
    for offset in (0.0, 0.7, 2.0):
        height = -0.5 * 0.03 * np.cos(2 * np.pi * t / 0.6 + offset)
        acc = -0.5 * 0.03 * (2 * np.pi / 0.6) ** 2 * -np.cos(2 * np.pi * t / 0.6 + offset)
        assert step_rise_m(acc.tolist(), dt_s) == pytest.approx(np.ptp(height), rel=0.05)


def test_first_step_and_steps_across_a_gap_have_no_length():
    estimator = StepLengthEstimator(StepLengthSettings(), RATE_HZ)
    assert estimator.on_step(1.0) is None  # nothing before it
    for k in range(100, 160):
        estimator.update(k / RATE_HZ, 0.0)
    assert estimator.on_step(1.55) is None  # only a few samples of this step were seen: a gap
    estimator.restart()
    assert estimator.on_step(2.0) is None


def test_all_zero_input_gives_no_lengths():
    t = np.arange(0.0, 20.0, 1.0 / RATE_HZ)
    estimator = StepLengthEstimator(StepLengthSettings(), RATE_HZ)
    for t_s in t:
        estimator.update(float(t_s), 0.0)
    assert [estimator.on_step(s) for s in (5.0, 5.5, 6.0)] == [None, None, None]


def test_simulated_walks_step_length_with_the_devices_default_leg_and_factor():
    """The walker's scripted step length is the truth; the estimator runs with the device's defaults,
    not the simulated person's leg length and correction factor (which the walker's own pendulum used:
    feeding those back would only check that the formula inverts itself)."""
    from walkcoach.sim import walker
    from walkcoach.sim.gait_model import Walk
    from walkcoach.sim.scenarios import SCENARIOS

    for scenario, seed in (("upright-walk", 0), ("lbp-walk", 1), ("slow-walk", 2)):
        w = walker.simulate(scenario, seed, rate_hz=RATE_HZ)
        script_seed, _, _, _ = np.random.SeedSequence(seed).spawn(4)
        walks = [a for a in SCENARIOS[scenario].build(np.random.default_rng(script_seed)) if isinstance(a, Walk)]
        g, lin = np.asarray(w.gravity_ms2), np.asarray(w.linear_acc_ms2)
        vertical = np.sum(g * lin, axis=1) / np.linalg.norm(g, axis=1)
        scripted_m = np.mean([walk.step_length_m for walk in walks])
        default_lengths, _ = run_estimator(w.t_s, vertical)
        assert np.mean(default_lengths) == pytest.approx(scripted_m, rel=0.15), scenario


def test_bout_metrics_take_in_the_steps_before_the_bout_was_recognised():
    metrics = BoutGaitMetrics()
    for k in range(1, 10):
        metrics.add_step(k * 0.5, 0.6 if k > 3 else 2.0, 0.5)  # steps 1-3 (and their lengths) are before the bout
    metrics.add_step(10 * 0.5, None, 0.5)
    metrics.start_bout(first_step_s=1.5)
    metrics.add_step(5.5, 0.6, 0.5)
    for lean in (2.0, 4.0, 12.0, 6.0):
        metrics.add_lean(lean)
    result = metrics.end_bout()
    assert result.step_length_m == pytest.approx(0.6)
    assert result.speed_m_s == pytest.approx(1.2)
    assert result.mean_lean_deg == pytest.approx(6.0)
    assert result.peak_lean_deg == pytest.approx(12.0)
    assert metrics.end_bout() == (None, None, None, None)


def _bout_of(steps, last_step_s=math.inf):
    """BoutGaitMetrics over ``steps`` (end time, length, step time), the bout recognised at its first step."""
    metrics = BoutGaitMetrics()
    metrics.start_bout(first_step_s=steps[0][0] - steps[0][2])
    for step_s, length_m, step_time_s in steps:
        metrics.add_step(step_s, length_m, step_time_s)
    return metrics.end_bout(last_step_s)


def test_the_closing_step_after_the_bouts_last_counted_step_has_no_part_in_its_figures():
    """Ten 0.6 m steps of 0.5 s, then the closing step (the trailing foot set down beside the other: a short,
    slow step). The bout ends at the contact before it, as the reference's does (Mobilise-D removes the last
    stride before a break), so its stride length and speed are its walking's: 2 x 0.6 m, 1.2 m/s."""
    walking = [(10.0 + 0.5 * k, 0.6, 0.5) for k in range(1, 11)]
    closing = (walking[-1][0] + 0.7, 0.3, 0.7)
    bout = _bout_of([*walking, closing], last_step_s=walking[-1][0])
    assert bout.step_length_m == pytest.approx(0.6)
    assert bout.speed_m_s == pytest.approx(1.2)


def test_a_pause_or_a_missed_contact_is_not_one_step_of_the_stride_length():
    """Steps of 0.6 m at 0.5 s with a 1.6 s pause (a look around) and a 1.0 s interval (a contact the detector
    missed): the pendulum measured one arc or none over each, which is not one step's length."""
    steps = [(10.0 + 0.5 * k, 0.6, 0.5) for k in range(1, 7)]
    steps.append((steps[-1][0] + 1.6, 0.25, 1.6))
    steps += [(steps[-1][0] + 0.5 * k, 0.6, 0.5) for k in range(1, 5)]
    steps.append((steps[-1][0] + 1.0, 0.75, 1.0))
    steps += [(steps[-1][0] + 0.5 * k, 0.6, 0.5) for k in range(1, 5)]
    assert _bout_of(steps).step_length_m == pytest.approx(0.6)


def test_the_coach_ends_a_bouts_gait_figures_at_the_bouts_last_counted_step(mocker):
    """The coach hands BoutGaitMetrics the step the bout ended at (the contact before the closing step, as
    BoutTracker.end counted it): each daily-living walk's figures stop there, never at the closing step."""
    from walkcoach.device.core.gait import BoutTracker
    from walkcoach.device.core.settings import DeviceSettings
    from walkcoach.device.shell.runner import run_simulation
    from walkcoach.hal.mount import Mount

    ends = []
    tracker_end = BoutTracker.end

    def end_and_note(tracker):
        bout = tracker_end(tracker)
        if bout is not None:
            ends.append(tracker.ended_last_step_s)
        return bout

    mocker.patch.object(BoutTracker, "end", end_and_note)
    end_bout = mocker.spy(BoutGaitMetrics, "end_bout")
    run = run_simulation(DeviceSettings(), scenario="daily-living", seed=0, mount=Mount("+x", "+z"))
    assert len(run.summary.bouts) >= 3
    passed = [call.args[1] for call in end_bout.call_args_list]
    assert passed == ends
    for bout, last_step_s in zip(run.summary.bouts, passed, strict=True):
        assert bout.start_s < last_step_s < bout.end_s + CONFIRM_S  # detected a little after its contact
