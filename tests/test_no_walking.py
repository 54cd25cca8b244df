"""No walking where there is none (issue 9: "no bout during sitting, standing or lying").

The simulator's ``lying`` scenario: from standing, sit on a bed, lie down supine, roll onto a side,
lie still, turn over, fidget, roll back, sit up, stand up and walk one short walk. Every expectation
comes from the walker's truth (its lean, heel strikes and bouts), run through the whole coach.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from tests.sim_runs import SEEDS
from tests.test_coach_scenarios import _walk_time_tolerance_s
from tests.test_replay import foreign_csv
from walkcoach.device.core.events import Cue
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.offline.replay import read_recording, replay
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.mount import Mount

LYING_DEG = -60.0  # truth lean this far back: the trunk is near horizontal (supine, or on a side)
STANDING_DEG = 5.0  # truth lean within this of the wearer's upright: standing (or walking)
UPRIGHT_FROM_STANDING_DEG = 5.0  # the captured upright is the standing gravity direction within the belt's sway
LEAN_AFTER_GETTING_UP_S = 10.0
LEAN_ERROR_DEG = 5.0


@functools.cache
def lying_run(seed: int):
    """The ``lying`` scenario through the loop, with the coach's upright (each change) and lean (each sample)."""
    uprights, leans = [], []

    def watch(loop):
        coach = loop.coach
        update = coach.update

        def update_and_watch(sample):
            events = update(sample)
            upright = coach.upright
            if not uprights or uprights[-1][1:] != (upright.source, upright.up):
                uprights.append((sample[0], upright.source, upright.up))
            leans.append(coach.lean.lean_deg)
            return events

        coach.update = update_and_watch

    run = run_simulation(DeviceSettings(), scenario="lying", seed=seed, mount=Mount("+x", "+z"), on_loop=watch)
    return run, uprights, np.array(leans)


def _lying_span_s(truth, t_s) -> tuple[float, float]:
    lying = np.flatnonzero(truth.lean_deg < LYING_DEG)
    assert len(lying) and np.all(np.diff(lying) == 1)  # one lying period
    return float(t_s[lying[0]]), float(t_s[lying[-1]])


@pytest.mark.parametrize("seed", SEEDS)
def test_lying_gives_no_step_no_bout_and_no_straighten_up_cue(seed):
    run, _, _ = lying_run(seed)
    truth, t_s = run.walk.truth, run.walk.t_s
    lying_from_s, lying_to_s = _lying_span_s(truth, t_s)
    assert lying_to_s - lying_from_s > 60.0  # the truth really lies (on the back, both sides) for minutes
    steps_lying = [s for s in run.summary.step_times_s if lying_from_s - 2.0 <= s <= lying_to_s + 2.0]
    assert steps_lying == []
    assert [b for b in run.summary.bouts if b.start_s < lying_to_s and b.end_s > lying_from_s] == []
    assert truth.lean_episodes == ()  # no lean to coach anywhere, so no straighten-up cue anywhere
    assert [t for t, cue, _ in run.summary.cues if cue == Cue.STRAIGHTEN_UP] == []


@pytest.mark.parametrize("seed", SEEDS)
def test_the_upright_is_only_ever_taken_standing_never_seated_or_lying(seed):
    run, uprights, _ = lying_run(seed)
    walk = run.walk
    truth, t_s = walk.truth, walk.t_s
    standing_up = np.mean(walk.gravity_ms2[t_s < 4.0], axis=0)  # the scenario opens with still standing
    standing_up /= np.linalg.norm(standing_up)
    captured = [(at_s, source, up) for at_s, source, up in uprights if source != "none"]
    assert captured
    for at_s, source, up in captured:
        index = min(int(np.searchsorted(t_s, at_s)), len(t_s) - 1)
        assert abs(truth.lean_deg[index]) < STANDING_DEG, (at_s, source)  # captured while standing
        assert math.degrees(math.acos(min(1.0, float(np.dot(up, standing_up))))) < UPRIGHT_FROM_STANDING_DEG
    assert captured[-1][1] == "stance"  # the stance right before the walk, trusted


@pytest.mark.parametrize("seed", SEEDS)
def test_the_walk_after_getting_up_is_counted_and_its_lean_is_right_at_once(seed):
    run, _, leans = lying_run(seed)
    truth, t_s = run.walk.truth, run.walk.t_s
    (first_s, last_s), = truth.bouts_s
    bouts = run.summary.bouts
    assert len(bouts) == 1
    assert abs(bouts[0].steps - truth.steps) <= 0.02 * truth.steps, (bouts[0].steps, truth.steps)
    assert abs(bouts[0].duration_s - (last_s - first_s)) <= _walk_time_tolerance_s(truth.step_times_s, first_s, last_s)
    soon = (t_s >= bouts[0].start_s) & (t_s <= bouts[0].start_s + LEAN_AFTER_GETTING_UP_S)
    assert np.abs(leans[soon] - truth.lean_deg[soon]).max() < LEAN_ERROR_DEG


def test_a_recording_that_starts_lying_is_replayed_with_the_standing_upright(tmp_path):
    """A plain CSV (axes unknown, 50 Hz) whose first minutes are lying: the frame must not take lying as upright."""
    path, walk = foreign_csv(tmp_path, "lying", 0, gyro=False)
    lying_from_s, lying_to_s = _lying_span_s(walk.truth, walk.t_s)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *(line for line in lines[1:] if float(line.split(",", 1)[0]) >= lying_from_s)]) + "\n")
    rec = read_recording(path, units="g")
    assert rec.t_s[0] == pytest.approx(lying_from_s, abs=0.05)
    standing = (rec.t_s > lying_to_s + 8.0) & (rec.t_s < walk.truth.bouts_s[0][0] - 1.0)  # stood up, before the walk
    assert standing.sum() > 1.0 * rec.rate_hz
    body_up = np.mean(rec.gravity_ms2[standing], axis=0)
    assert math.degrees(math.acos(body_up[2] / np.linalg.norm(body_up))) < UPRIGHT_FROM_STANDING_DEG
    summary = replay(rec, DeviceSettings(), cap_s=3600.0).summary
    assert len(summary.bouts) == 1 and summary.bouts[0].start_s > lying_to_s
    assert abs(summary.steps - walk.truth.steps) <= 0.03 * walk.truth.steps
    assert [t for t, cue, _ in summary.cues if cue == Cue.STRAIGHTEN_UP] == []
