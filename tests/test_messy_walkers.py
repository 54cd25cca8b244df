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
from walkcoach.device.offline.evaluate import match_contacts

MESSY_SCENARIOS = ("daily-living", "asymmetric-walk", "shuffle-walk", "very-slow-walk")
STEP_TOLERANCE = 0.05
WALK_TIME_TOLERANCE_S = 2.0
IC_TOLERANCE_S = 0.25
IC_TARGET = 0.9
OUTSIDE_MARGIN_S = 0.5  # a detected step this far outside every true walk is walking where there is none

NEEDS_DETECTOR = pytest.mark.xfail(strict=True, reason="needs the issue-9 detector (branch detect)")
# (test, scenario, seed) that the detector before issue 9 fails, as of this commit.
FAILS_BEFORE_ISSUE_9 = {
    ("steps", "daily-living", s) for s in SEEDS if s not in (2, 3, 4)} | {
    ("steps", "shuffle-walk", s) for s in SEEDS} | {
    ("steps", "very-slow-walk", s) for s in SEEDS if s != 3} | {
    ("walk_time", "daily-living", s) for s in SEEDS if s not in (2, 3, 4)} | {
    ("walk_time", "shuffle-walk", s) for s in SEEDS} | {
    ("walk_time", "very-slow-walk", s) for s in SEEDS} | {
    ("contacts", "daily-living", s) for s in SEEDS if s not in (2, 3, 4)} | {
    ("contacts", "shuffle-walk", s) for s in SEEDS} | {
    ("contacts", "very-slow-walk", s) for s in SEEDS}
# Branch detect (Mobilise-D bouts: 6 steps, 3 s breaks, the regularity test) passes asymmetric-walk
# walk time and daily-living seeds 2 and 3: their marks are removed above. Seed 4 passes since no walk
# starts lying (branch nowalk: a contact with the trunk 60 deg from upright before a bout is no step).


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
    for start_s, end_s in run.walk.truth.bouts_s:  # first to last heel strike, as Mobilise-D bounds a bout
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
