"""Lean coaching on the simulator's people: seated starts, stairs, a belt that moves, a wrong mount.

Every expectation comes from the walker's truth (its lean episodes, stair
flights, belt moves, walk segments), never from the coach's own numbers.
"""

import datetime as dt
import logging

import numpy as np
import pytest

from tests.sim_runs import SEEDS, simulated
from walkcoach.device.core import activity
from walkcoach.device.core.events import Cue, Event, EventKind
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.mount import Mount

HOLD_S = 5.0
THRESHOLD_DEG = 15.0


def _cues(run, kind):
    return [t for t, k, _ in run.summary.cues if k == kind]


def _due_s(run, episode):
    """When a straighten-up cue is due: the truth lean first passes the threshold, plus the hold."""
    truth, t_s = run.walk.truth, run.walk.t_s
    inside = (t_s >= episode.start_s) & (t_s <= episode.end_s) & (truth.lean_deg > THRESHOLD_DEG)
    assert np.sum(inside) / run.walk.rate_hz > HOLD_S  # the truth really holds the lean
    return float(t_s[np.argmax(inside)]) + HOLD_S


def _assert_leans_cued_on_time_and_nothing_else(run, slack_s=0.5):
    truth = run.walk.truth
    cues = _cues(run, Cue.STRAIGHTEN_UP)
    assert truth.lean_episodes
    for episode in truth.lean_episodes:
        due_s = _due_s(run, episode)
        assert any(due_s - slack_s <= c <= due_s + slack_s for c in cues), (due_s, cues)
    stray = [c for c in cues if not any(e.start_s <= c <= e.end_s for e in truth.lean_episodes)]
    assert stray == [], stray


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", ["seated-start", "belt-rotation", "belt-slip"])
def test_a_held_lean_is_cued_within_hold_plus_half_a_second_and_nothing_else(scenario, seed):
    _assert_leans_cued_on_time_and_nothing_else(simulated(scenario, seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_seated_start_coaches_against_the_standing_upright(seed):
    """Seated, the pelvis tilts back ~8-16 deg: walking measured against it would read as that much lean.
    The bouts without a held lean must read as upright walking."""
    run = simulated("seated-start", seed)
    truth = run.walk.truth
    assert truth.lean_deg[run.walk.t_s < 10.0].mean() < -5.0  # the recording really starts seated
    assert run.coach.upright.trusted
    upright_bouts = [b for b in run.summary.bouts
                     if not any(b.start_s <= e.end_s and e.start_s <= b.end_s for e in truth.lean_episodes)]
    assert upright_bouts
    for bout in upright_bouts:
        assert abs(bout.mean_lean_deg) < 4.0, bout


@pytest.mark.parametrize("seed", SEEDS)
def test_a_flight_of_stairs_is_walking_but_its_lean_is_not_coached(seed):
    run = simulated("stairs", seed)
    truth = run.walk.truth
    climbs = [f for f in truth.stair_flights if f[2] > 0]
    assert len(climbs) == 2
    for start_s, end_s, _ in climbs:  # people lean into the climb
        assert truth.lean_deg[(run.walk.t_s >= start_s) & (run.walk.t_s <= end_s)].max() > 10.0
    assert _cues(run, Cue.STRAIGHTEN_UP) == []
    for flight_start_s, flight_end_s, _ in truth.stair_flights:  # stair steps are walking: each flight is inside the bouts
        strikes_s = truth.step_times_s[(truth.step_times_s >= flight_start_s) & (truth.step_times_s <= flight_end_s)]
        start_s, end_s = strikes_s[0], strikes_s[-1]  # its first to last step (the closing contact is none), as a bout is bounded
        covered_s = sum(max(0.0, min(end_s, b.end_s) - max(start_s, b.start_s)) for b in run.summary.bouts)
        assert covered_s >= 0.9 * (end_s - start_s), (start_s, end_s, covered_s)
    for start_s, end_s, _ in truth.stair_flights:  # every flight, up or down, is recognised while on it
        assert any(start_s <= t <= end_s for t in run.coach.stairs.flight_starts_s), (start_s, end_s)
    assert all(any(a <= t <= b for a, b, _ in truth.stair_flights) for t in run.coach.stairs.flight_starts_s)


def test_without_the_stair_recognition_the_same_climbs_would_be_cued(monkeypatch):
    """The control: the stairs scenario's leans are long and deep enough to be cued on the level."""
    monkeypatch.setattr(activity, "STAIR_RISE_M", 10.0)
    cued = sum(len(_cues(run_simulation(DeviceSettings(), scenario="stairs", seed=seed), Cue.STRAIGHTEN_UP))
               for seed in SEEDS)
    assert cued >= 3


@pytest.mark.parametrize("scenario", ["upright-walk", "lbp-walk", "slow-walk", "leaning-walk", "full-session"])
def test_level_walking_is_never_taken_for_stairs(scenario):
    for seed in SEEDS:
        assert simulated(scenario, seed).coach.stairs.flight_starts_s == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_slow_belt_rotation_is_re_zeroed_with_its_cue_and_no_straighten_up(seed):
    run = simulated("belt-rotation", seed)
    (move,) = run.walk.truth.belt_moves
    start_s, duration_s, angle_deg, _ = move
    assert angle_deg == 25.0 and duration_s >= 180.0
    moved = _cues(run, Cue.BELT_MOVED)
    assert len(moved) >= 1 and all(start_s <= t <= start_s + duration_s + 30.0 for t in moved), moved
    lean_start_s = min(e.start_s for e in run.walk.truth.lean_episodes)
    assert [c for c in _cues(run, Cue.STRAIGHTEN_UP) if c < lean_start_s] == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_sudden_belt_slip_is_re_zeroed_within_seconds(seed):
    run = simulated("belt-slip", seed)
    ((slip_s, duration_s, _, _),) = run.walk.truth.belt_moves
    moved = _cues(run, Cue.BELT_MOVED)
    assert len(moved) == 1 and slip_s <= moved[0] <= slip_s + duration_s + 8.0, (slip_s, moved)


def test_the_belt_moved_cue_reaches_history_and_the_log(tmp_path, caplog):
    import sqlite3

    from walkcoach.device.shell.service import Service
    from walkcoach.device.shell.store import DB_NAME, Store, read_cues

    store = Store.open(tmp_path, mono_at_open=0.0, wall_at_open=dt.datetime(2025, 3, 3, 9).timestamp(),
                       planned_cap_s=600.0)
    run = run_simulation(DeviceSettings(), scenario="belt-slip", seed=0, sinks=[store])
    store.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        cues = read_cues(conn)
    finally:
        conn.close()
    moved = [c for c in cues if c.kind == "belt_moved"]
    assert len(moved) == 1 and moved[0].why.startswith("belt moved")
    assert [why for _, k, why in run.summary.cues if k == "belt_moved"] == [moved[0].why]
    with caplog.at_level(logging.INFO, logger="walkcoach"):
        Service._log_event(None, Event(1.0, EventKind.BELT_MOVED, Cue.BELT_MOVED, moved[0].why))
    assert f"cue belt_moved: {moved[0].why}" in caplog.text


# -- a belt worn upside down or turned, configured flat -----------------------------------------------
WRONG_MOUNTS = [("-x", "+z"), ("+y", "+z"), ("-x", "-z"), ("-y", "+x")]  # turned round, sideways, upside down, on its side


@pytest.mark.parametrize("true_mount", WRONG_MOUNTS, ids=["turned-round", "sideways", "upside-down", "on-its-side"])
def test_a_belt_worn_wrong_still_coaches_every_held_lean(true_mount):
    run = run_simulation(DeviceSettings(), scenario="leaning-walk", seed=0, mount=Mount(), true_mount=Mount(*true_mount))
    _assert_leans_cued_on_time_and_nothing_else(run)
    assert run.coach.upright.forward_checked()


@pytest.mark.parametrize("true_mount", WRONG_MOUNTS[:3], ids=["turned-round", "sideways", "upside-down"])
def test_a_wrong_forward_axis_is_corrected_with_the_belt_moved_cue(true_mount):
    run = run_simulation(DeviceSettings(), scenario="leaning-walk", seed=1, mount=Mount(), true_mount=Mount(*true_mount))
    whys = [why for _, k, why in run.summary.cues if k == "belt_moved"]
    assert len(whys) == 1 and whys[0].startswith("forward axis taken from walking"), whys
    first_lean_s = run.walk.truth.lean_episodes[0].start_s
    assert [t for t, k, _ in run.summary.cues if k == "belt_moved"][0] < first_lean_s


@pytest.mark.parametrize("rate_hz", [50.0, 200.0])
@pytest.mark.parametrize("scenario", ["stairs", "belt-slip", "seated-start"])
def test_other_sample_rates_give_the_same_lean_coaching(scenario, rate_hz):
    import dataclasses

    from walkcoach.device.core.settings import LoopSettings

    settings = dataclasses.replace(DeviceSettings(), loop=LoopSettings(rate_hz=rate_hz))
    run, at_100 = run_simulation(settings, scenario=scenario, seed=1), simulated(scenario, 1)
    for cue in (Cue.STRAIGHTEN_UP, Cue.BELT_MOVED):
        assert len(_cues(run, cue)) == len(_cues(at_100, cue)), cue
