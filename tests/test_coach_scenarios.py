"""The coach against the simulator's ground truth, over several seeds per scenario."""

import numpy as np
import pytest

from tests.sim_runs import SEEDS, WALKING_SCENARIOS, simulated, truth_time_of_walk
from walkcoach.device.core.events import Cue

HOLD_S = 5.0
THRESHOLD_DEG = 15.0


def _cues(run, kind):
    return [t for t, k, _ in run.summary.cues if k == kind]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", WALKING_SCENARIOS)
def test_steps_within_2_percent_of_truth(scenario, seed):
    run = simulated(scenario, seed)
    truth = run.walk.truth
    assert truth.steps > 0
    assert abs(run.summary.steps - truth.steps) <= 0.02 * truth.steps, (run.summary.steps, truth.steps)


# Walk time within 2 s, or within three of the walk's own step times if those are longer: a slow
# walker's first steps of gait initiation and last of termination can stay under the sensor's noise
# (at 1.1 s a step, two invisible steps and the half steps at the ends are ~3 s). One rule for every
# walker, in steps of that walker, not a number for one scenario.
WALK_TIME_TOLERANCE_S = 2.0
WALK_TIME_TOLERANCE_STEPS = 3.0


def _walk_time_tolerance_s(step_times_s: np.ndarray, start_s: float, end_s: float) -> float:
    inside = step_times_s[(step_times_s >= start_s) & (step_times_s <= end_s)]
    return max(WALK_TIME_TOLERANCE_S, WALK_TIME_TOLERANCE_STEPS * float(np.median(np.diff(inside))))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", WALKING_SCENARIOS)
def test_walk_time_within_2_s_or_3_steps_per_bout(scenario, seed):
    run = simulated(scenario, seed)
    bouts = run.summary.bouts
    for start_s, end_s in run.walk.truth.bouts_s:  # first heel strike to the contact before the closing one
        tolerance_s = _walk_time_tolerance_s(run.walk.truth.step_times_s, start_s, end_s)
        overlapping = [b for b in bouts if b.end_s > start_s and b.start_s < end_s]
        assert overlapping, f"walk {start_s:.0f}-{end_s:.0f} s not detected"
        detected_s = sum(b.duration_s for b in overlapping)
        assert abs(detected_s - (end_s - start_s)) <= tolerance_s, (start_s, end_s, detected_s)
    assert len(bouts) == len(run.walk.truth.bouts_s)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", ["leaning-walk", "full-session"])
def test_every_sustained_lean_is_cued_within_hold_plus_half_a_second(scenario, seed):
    run = simulated(scenario, seed)
    truth = run.walk.truth
    t_s = run.walk.t_s
    cues = _cues(run, Cue.STRAIGHTEN_UP)
    assert truth.lean_episodes
    for episode in truth.lean_episodes:
        inside = (t_s >= episode.start_s) & (t_s <= episode.end_s) & (truth.lean_deg > THRESHOLD_DEG)
        crossed_s = float(t_s[np.argmax(inside)])
        above_s = float(np.sum(inside)) / run.walk.rate_hz
        assert above_s > HOLD_S
        due_s = crossed_s + HOLD_S
        assert any(due_s - 0.5 <= c <= due_s + 0.5 for c in cues), (crossed_s, cues)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", ["upright-walk", "bend-and-go", "standing", "lbp-walk", "sitting"])
def test_no_straighten_up_cue_without_a_sustained_lean(scenario, seed):
    run = simulated(scenario, seed)
    assert _cues(run, Cue.STRAIGHTEN_UP) == []


def test_bends_are_really_there_and_deep():
    truth = simulated("bend-and-go", 0).walk.truth
    assert truth.bends and all(b.max_deg > 30 for b in truth.bends)


@pytest.mark.parametrize("scenario", [*WALKING_SCENARIOS, "standing", "sitting"])
def test_ready_once_the_wearer_stands_still(scenario):
    """Every scenario but fidget opens with >= 4 s of still standing: the upright is captured then."""
    ready = _cues(simulated(scenario, 0), Cue.READY)
    assert ready and ready[0] <= 4.5, ready


@pytest.mark.parametrize("seed", SEEDS)
def test_stop_cue_within_1_s_of_walk_time_reaching_the_cap(seed):
    run = simulated("full-session", seed)
    cap_s = run.coach.session.planned_cap_s
    truth = run.walk.truth
    assert truth.walk_s > cap_s
    reached_s = truth_time_of_walk(truth, run.walk.t_s, cap_s)
    stops = _cues(run, Cue.STOP)
    assert stops and abs(stops[0] - reached_s) <= 1.0, (stops[:1], reached_s)
    warnings = _cues(run, Cue.CAP_WARNING)
    assert len(warnings) == 1 and abs(warnings[0] - truth_time_of_walk(truth, run.walk.t_s, cap_s - 60)) <= 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", ["fidget", "standing", "sitting"])
def test_no_walking_where_there_is_none(scenario, seed):
    run = simulated(scenario, seed)
    assert run.walk.truth.steps == 0
    assert run.summary.bouts == []
    assert run.summary.steps == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_rotated_mount_configured_as_such_gives_the_same_results(seed):
    plain = simulated("leaning-walk", seed)
    rotated = simulated("leaning-walk", seed, mount=("-y", "+x"))
    assert abs(rotated.summary.steps - plain.summary.steps) <= 0.01 * plain.summary.steps
    assert [k for _, k, _ in rotated.summary.cues] == [k for _, k, _ in plain.summary.cues]
    for (a, _, _), (b, _, _) in zip(rotated.summary.cues, plain.summary.cues, strict=True):
        assert abs(a - b) <= 0.1


def test_a_mount_that_is_not_configured_is_not_silently_fine():
    """The walker wears the sensor rotated but the config says flat: the coach finds the upright from
    walking and checks its forward axis against the gait, so it coaches the same leans (more cases in
    tests/test_posture_scenarios.py)."""
    from walkcoach.device.core.settings import DeviceSettings
    from walkcoach.device.shell.runner import run_simulation
    from walkcoach.hal.mount import Mount

    run = run_simulation(DeviceSettings(), scenario="leaning-walk", seed=0, mount=Mount(), true_mount=Mount("-y", "+x"))
    plain = _cues(simulated("leaning-walk", 0), Cue.STRAIGHTEN_UP)
    rotated = _cues(run, Cue.STRAIGHTEN_UP)
    assert len(rotated) == len(plain) and all(abs(a - b) <= 0.5 for a, b in zip(rotated, plain, strict=True)), (rotated, plain)


@pytest.mark.parametrize("rate_hz", [50.0, 200.0])
@pytest.mark.parametrize("scenario", ["upright-walk", "lbp-walk", "leaning-walk", "bend-and-go", "fidget"])
def test_other_sample_rates_give_the_same_coaching(scenario, rate_hz):
    """Settings are in seconds and Hz, turned into sample counts once: the rate must not matter."""
    import dataclasses

    from walkcoach.device.core.settings import DeviceSettings, LoopSettings
    from walkcoach.device.shell.runner import run_simulation

    settings = dataclasses.replace(DeviceSettings(), loop=LoopSettings(rate_hz=rate_hz))
    run = run_simulation(settings, scenario=scenario, seed=1)
    at_100 = simulated(scenario, 1)
    truth = run.walk.truth
    assert abs(run.summary.steps - truth.steps) <= 0.02 * max(truth.steps, 50)
    assert abs(run.summary.walk_s - truth.walk_s) <= 2.0 * max(1, len(truth.walk_segments))
    assert len(_cues(run, Cue.STRAIGHTEN_UP)) == len(_cues(at_100, Cue.STRAIGHTEN_UP))
