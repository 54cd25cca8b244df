"""The coach against the truth of the messy walkers (issue 9): short daily-living walks between
sitting, standing and handling things; asymmetric gait; shuffling with a walking aid; very slow gait.

Targets from issue 9: steps within 5 %, walk time within 2 s per true walk, heel strikes found within
0.25 s (sensitivity and PPV >= 0.9), and no walking while sitting, standing or handling things.
Undercounting a slow walker is not a safe error: the cap would allow more walking than planned.

The detector before issue 9 fails many of these; those cases are marked strict xfail below, so the
suite passes now and each mark must come off (XPASS fails) once the issue-9 detector passes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.sim_runs import SEEDS, simulated
from walkcoach.device.core.gait import BoutTracker
from walkcoach.device.core.settings import GaitSettings
from walkcoach.device.offline.evaluate import match_contacts

MESSY_SCENARIOS = ("daily-living", "asymmetric-walk", "shuffle-walk", "very-slow-walk")
STEP_TOLERANCE = 0.05
WALK_TIME_TOLERANCE_S = 2.0
IC_TOLERANCE_S = 0.25
IC_TARGET = 0.9
OUTSIDE_MARGIN_S = 0.5  # a detected step this far outside every true walk is walking where there is none

NEEDS_DETECTOR = pytest.mark.xfail(strict=True, reason="the issue-9 detector does not pass it yet")
# (test, scenario, seed) that the detector still fails (the branches that passed the others say how, in
# their commits). very-slow-walk 1's bout starts 8 s late: two noise contacts among its first steps break
# the grid of two peaks a step that the fold looks for (its steps, -4.1 %, pass). shuffle-walk 4's heel
# strikes are found just under the target (sensitivity 0.896).
FAILS_BEFORE_ISSUE_9 = {("walk_time", "very-slow-walk", 1), ("contacts", "shuffle-walk", 4)}


def cases(test: str):
    return [pytest.param(scenario, seed, id=f"{scenario}-{seed}",
                         marks=[NEEDS_DETECTOR] if (test, scenario, seed) in FAILS_BEFORE_ISSUE_9 else [])
            for scenario in MESSY_SCENARIOS for seed in SEEDS]


def _inside_segments(times_s, segments, margin_s: float = 0.0) -> np.ndarray:
    times_s = np.asarray(times_s, dtype=float)
    inside = np.zeros(len(times_s), dtype=bool)
    for start_s, end_s in segments:
        inside |= (times_s >= start_s - margin_s) & (times_s <= end_s + margin_s)
    return inside


@pytest.mark.parametrize("scenario, seed", cases("steps"))
def test_steps_within_5_percent_of_truth(scenario, seed):
    run = simulated(scenario, seed)
    truth = run.walk.truth
    assert truth.steps > 0
    assert abs(run.summary.steps - truth.steps) <= STEP_TOLERANCE * truth.steps, (run.summary.steps, truth.steps)


@pytest.mark.parametrize("scenario, seed", cases("walk_time"))
def test_walk_time_within_2_s_per_true_walk(scenario, seed):
    run = simulated(scenario, seed)
    bouts = run.summary.bouts
    for start_s, end_s in run.walk.truth.bouts_s:  # first heel strike to the contact before the closing one
        overlapping = [b for b in bouts if b.end_s > start_s and b.start_s < end_s]
        assert overlapping, f"walk {start_s:.1f}-{end_s:.1f} s not detected"
        detected_s = sum(b.duration_s for b in overlapping)
        assert abs(detected_s - (end_s - start_s)) <= WALK_TIME_TOLERANCE_S, (start_s, end_s, detected_s)


@pytest.mark.parametrize("scenario, seed", cases("contacts"))
def test_heel_strikes_found_within_a_quarter_second(scenario, seed):
    run = simulated(scenario, seed)
    truth_s = list(run.walk.truth.step_times_s)
    detected_s = sorted(t for b in run.summary.bouts for t in b.step_times_s)
    matches = match_contacts(truth_s, detected_s, IC_TOLERANCE_S)
    sensitivity = len(matches) / len(truth_s)
    ppv = len(matches) / len(detected_s) if detected_s else 0.0
    assert sensitivity >= IC_TARGET and ppv >= IC_TARGET, (sensitivity, ppv)


@pytest.mark.parametrize("scenario, seed", cases("no_walking_elsewhere"))
def test_no_walking_while_sitting_standing_or_handling_things(scenario, seed):
    """Every counted step and every bout lies in a true walk: none in the sit-stands, the standing,
    the reaches and pick-ups, or the turns on the spot between walks."""
    run = simulated(scenario, seed)
    segments = run.walk.truth.walk_segments
    steps_s = [t for b in run.summary.bouts for t in b.step_times_s]
    outside = np.asarray(steps_s)[~_inside_segments(steps_s, segments, OUTSIDE_MARGIN_S)]
    assert len(outside) == 0, f"steps counted outside any walk at {np.round(outside, 1)} s"
    for bout in run.summary.bouts:
        assert any(bout.end_s > a and bout.start_s < b for a, b in segments), (bout.start_s, bout.end_s)


def test_the_messy_walkers_really_have_walking_and_not_walking_in_them():
    """What the tests above hold the coach to is there: short walks between non-walking stretches."""
    for seed in SEEDS:
        truth = simulated("daily-living", seed).walk.truth
        durations_s = [b - a for a, b in truth.walk_segments]
        assert len(durations_s) >= 4 and max(durations_s) < 30.0 and truth.bends
        assert np.mean(truth.walking) < 0.5


# --- Two peaks a step (slow gait, long double support) are one step ---------------------------------
def _bout_of(contacts):
    """The finished bout a BoutTracker makes of (time, peak) contacts (no regularity test)."""
    tracker = BoutTracker(GaitSettings())
    for t_s, peak_ms2 in contacts:
        tracker.add_step(t_s, peak_ms2)
    t_s = contacts[-1][0]
    while not tracker.check_end(t_s):
        t_s += 0.01
    return tracker.end()


def _walk_contacts(steps: int, step_s: float, second_at: float, strike_ms2: float, second_ms2: float, seed: int = 0):
    """Heel strikes ``step_s`` apart (3 % jitter), each followed ``second_at`` of a step later by a second peak."""
    rng = np.random.default_rng(seed)
    strikes_s = 2.0 + np.cumsum(step_s * (1.0 + 0.03 * rng.standard_normal(steps)))
    contacts = []
    for k, t_s in enumerate(strikes_s):
        contacts.append((float(t_s), strike_ms2 * rng.uniform(0.8, 1.2)))
        if k < steps - 1:
            contacts.append((float(t_s + second_at * step_s * rng.uniform(0.9, 1.1)), second_ms2 * rng.uniform(0.8, 1.2)))
    return contacts


@pytest.mark.parametrize("seed", range(3))
def test_a_shufflers_heel_strike_and_push_off_count_as_one_step(seed):
    """70 steps/min, push-off 0.38 of a step after each soft heel strike and as strong: every step once."""
    contacts = _walk_contacts(60, 0.86, 0.38, 0.3, 0.25, seed)
    bout = _bout_of(contacts)
    assert bout is not None and abs(bout.steps - 60) <= 0.05 * 60, bout.steps
    assert bout.cadence_spm == pytest.approx(70.0, rel=0.05)
    strikes_s = [t for t, _ in contacts[::2]]  # each step's first contact
    assert len(match_contacts(strikes_s, list(bout.step_times_s), 0.1)) >= IC_TARGET * len(strikes_s)


@pytest.mark.parametrize("strike_ms2, weak_ms2", [(0.3, 0.1), (2.5, 2.2)])
def test_alternate_steps_unalike_are_still_two_steps(strike_ms2, weak_ms2):
    """The same timing as a shuffler's two peaks, but from two feet: an asymmetric walker whose weak
    side strikes far fainter, or a brisk walker (peaks of brisk walking): every contact is a step."""
    contacts = _walk_contacts(40, 1.2, 0.42, strike_ms2, weak_ms2)
    bout = _bout_of(contacts)
    assert bout is not None and abs(bout.steps - len(contacts)) <= 0.05 * len(contacts), (bout.steps, len(contacts))


def _slow_walk_with_early_faint_peaks(seed: int, steps: int = 90, step_s: float = 1.5):
    """A very slow walker's contacts (40 steps/min, 5 % step-time scatter): each heel strike, its push-off
    0.4 of a step later, and from the 12th step on, every 6th step, a peak at the detection floor 0.3 of a
    step before the heel strike (the pelvis barely moves in slow gait: noise reaches the floor).
    Returns the contacts and the heel strikes' times."""
    rng = np.random.default_rng(seed)
    strikes_s = 2.0 + np.cumsum(step_s * (1.0 + 0.05 * rng.standard_normal(steps)))
    contacts = []
    for k, t_s in enumerate(strikes_s):
        contacts.append((float(t_s), 0.3 * rng.uniform(0.8, 1.2)))
        if k < steps - 1:
            contacts.append((float(t_s + 0.4 * step_s * rng.uniform(0.9, 1.1)), 0.25 * rng.uniform(0.8, 1.2)))
        if k >= 12 and k % 6 == 3:
            contacts.append((float(t_s - 0.3 * step_s * rng.uniform(0.8, 1.2)), GaitSettings().min_peak_ms2 + 0.01))
    return sorted(contacts), strikes_s


@pytest.mark.parametrize("seed", range(3))
def test_a_faint_peak_early_in_a_slow_step_is_not_counted_for_its_heel_strike(seed):
    """The faint early peak is counted (0.7 of a step after the step before), then the heel strike comes
    too soon after it to be a step: the heel strike, stronger and a step after the step before, takes
    its place. Else the next step time starts short and the push-offs soon count as steps."""
    contacts, strikes_s = _slow_walk_with_early_faint_peaks(seed)
    bout = _bout_of(contacts)
    assert bout is not None and abs(bout.steps - len(strikes_s)) <= 0.05 * len(strikes_s), bout.steps
    assert bout.cadence_spm == pytest.approx(40.0, rel=0.05)
    matched = match_contacts(list(strikes_s), list(bout.step_times_s), IC_TOLERANCE_S)
    assert len(matched) >= IC_TARGET * len(strikes_s)  # the steps are the heel strikes


# Draws beyond seeds 0-4 (`tools/sim_truth_figures.py --seeds 30`): the figures must hold per draw of the walker
# and its noise, not only for the seeds above. These draws (of seeds 0-29) count steps more than 5 % off the
# truth; strict xfail, so each mark must come off once the detector passes it. How each loses or gains its steps:
# - shuffle-walk 12, 14, 21; very-slow-walk 20, 26 (-6.5 to -16.6 %): one walk split in two, 10-25 s of it lost.
#   Where the regularity dips (the turn), contacts found at the trailing leg's push-off instead of the heel strike
#   put the step times around them off the rhythm, and the irregular end cuts the walk at its last regular step.
#   (very-slow-walk 20: a slowing walker's rhythm lags its steps, so its push-offs pass DOUBLE_STEP_SHARE.)
# - shuffle-walk 16 (-12.2 %), very-slow-walk 28 (-5.6 %): the bout opens 4.5-10 s late (the push-offs, seen on some
#   steps only, keep the first contacts off one rhythm and off the grid of two peaks a step).
# - shuffle-walk 8 (-5.7 %): 10 steps lost inside its one bout (not looked into).
# - shuffle-walk 20, 23 (+15.9, +42.2 %), very-slow-walk 19 (+7.0 %): push-offs counted as steps.
OFF_BY_MORE_THAN_5_PERCENT = [("shuffle-walk", 8), ("shuffle-walk", 12), ("shuffle-walk", 14), ("shuffle-walk", 16),
                              ("shuffle-walk", 20), ("shuffle-walk", 21), ("shuffle-walk", 23), ("very-slow-walk", 19),
                              ("very-slow-walk", 20), ("very-slow-walk", 26), ("very-slow-walk", 28)]


@pytest.mark.parametrize("scenario, seed", [pytest.param(s, n, id=f"{s}-{n}", marks=NEEDS_DETECTOR)
                                            for s, n in OFF_BY_MORE_THAN_5_PERCENT])
def test_steps_within_5_percent_on_later_draws(scenario, seed):
    run = simulated(scenario, seed)
    truth = run.walk.truth
    assert abs(run.summary.steps - truth.steps) <= STEP_TOLERANCE * truth.steps, (run.summary.steps, truth.steps)
