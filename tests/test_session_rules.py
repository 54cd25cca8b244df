"""The session's rules, each held by a test that fails when the rule breaks (issue 14's survivors).

The coach is fed small synthetic signals (a known cadence, a known pause), so every
expectation is a number stated here, not one taken from the code under test.
"""

import dataclasses
import datetime as dt
import math
import statistics

import pytest

from tests.sim_runs import finished_bout
from tests.test_plan import PLAN
from tests.test_plan import START as PLAN_START
from tests.test_plan import day as _day
from tests.test_plan import session as _record
from walkcoach.device.core.coach import Coach
from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.plan import effective_plan, format_plan
from walkcoach.device.core.session import SessionTracker
from walkcoach.device.core.settings import CoachSettings, PlanSettings
from walkcoach.hal.types import ImuSample

RATE_HZ = 50.0
G_MS2 = 9.80665
CADENCE_SPM = 110.0


def _sample(t_s: float, acc_vertical_ms2: float) -> ImuSample:
    return ImuSample(t_s, (0.0, 0.0, G_MS2), (0.0, 0.0, acc_vertical_ms2), (0.0, 0.0, 0.0), 3)


def _feed(coach: Coach, start_s: float, end_s: float, walking: bool) -> list:
    """Upright the whole time; walking is a 2.5 m/s^2 vertical bounce at 110 steps/min."""
    events = []
    step_hz = CADENCE_SPM / 60.0
    for i in range(int(round((end_s - start_s) * RATE_HZ))):
        t_s = start_s + i / RATE_HZ
        acc = 2.5 * math.cos(2 * math.pi * step_hz * t_s) if walking else 0.0
        events.extend(coach.update(_sample(t_s, acc)))
    return events


def _coach(pause_s: float = 120.0, cap_s: float = 3600.0, **plan) -> Coach:
    settings = CoachSettings()
    settings = dataclasses.replace(
        settings,
        gait=dataclasses.replace(settings.gait, session_end_pause_s=pause_s),
        plan=dataclasses.replace(settings.plan, **plan),
    )
    return Coach(settings, rate_hz=RATE_HZ, cap_s=cap_s)


def _kinds(events, kind):
    return [e for e in events if e.kind is kind]


# -- the session ends after the configured pause, by the coach itself --------------------------
def test_the_coach_ends_the_session_once_the_pause_without_walking_is_over():
    coach = _coach(pause_s=120.0)
    walked = _feed(coach, 0.0, 60.0, walking=True)
    assert _kinds(walked, EventKind.WALK_STARTED)
    rest = _feed(coach, 60.0, 300.0, walking=False)
    [walk_ended] = _kinds(rest, EventKind.WALK_ENDED)
    last_step_s = walk_ended.bout.step_times_s[-1]
    [ended] = _kinds(rest, EventKind.SESSION_ENDED)
    # the pause counts from the end of the bout (its last step, the contact before the closing one)
    assert last_step_s + 120.0 <= ended.t_s <= last_step_s + 120.0 + 1.0, (last_step_s, ended.t_s)
    assert "walked 0.9 min" in ended.why or "walked 1.0 min" in ended.why, ended.why
    snap = coach.snapshot(300.0)
    assert snap.walk_s == 0.0 and snap.steps == 0 and not snap.session_started


def test_a_pause_shorter_than_the_session_end_pause_keeps_one_session():
    coach = _coach(pause_s=120.0)
    events = _feed(coach, 0.0, 60.0, walking=True)
    events += _feed(coach, 60.0, 160.0, walking=False)  # 100 s: under the 120 s pause
    events += _feed(coach, 160.0, 220.0, walking=True)
    assert not _kinds(events, EventKind.SESSION_ENDED)
    assert len(_kinds(events, EventKind.WALK_ENDED)) == 1
    # both walks count against one cap: about 2 x 60 s of walking
    assert 110.0 <= coach.snapshot(220.0).walk_s <= 121.0


def test_a_new_session_after_the_end_starts_with_the_full_cap_and_no_pain_reports():
    coach = _coach(pause_s=60.0, cap_s=1200.0, pain_shorten_min=5.0)
    _feed(coach, 0.0, 30.0, walking=True)
    coach.report_pain(30.0)
    assert coach.snapshot(30.0).cap_s == 900.0
    events = _feed(coach, 30.0, 150.0, walking=False)
    assert _kinds(events, EventKind.SESSION_ENDED)
    snap = coach.snapshot(150.0)
    assert snap.cap_s == 1200.0 and snap.pain_reports == 0


# -- a config reload, or a new cap from the plan, keeps a pain report's shortening ---------------
@pytest.mark.parametrize("how", ["configure", "set_planned_cap"])
def test_a_new_cap_keeps_this_sessions_pain_shortening(how):
    coach = _coach(cap_s=1200.0, pain_shorten_min=5.0)
    _feed(coach, 0.0, 30.0, walking=True)
    coach.report_pain(30.0)
    assert coach.snapshot(30.0).cap_s == 900.0  # 20 min less 5
    if how == "configure":
        coach.configure(coach.settings, cap_s=1800.0)  # a reload; the plan now says 30 min
    else:
        coach.set_planned_cap(1800.0)
    assert coach.snapshot(30.0).cap_s == 1500.0  # 30 min less the same 5
    assert coach.snapshot(30.0).pain_reports == 1


def test_a_second_pain_report_after_a_reload_still_brings_the_stop_at_once():
    coach = _coach(cap_s=1200.0)
    _feed(coach, 0.0, 30.0, walking=True)
    coach.report_pain(30.0)
    coach.configure(coach.settings, cap_s=1200.0)
    events = coach.report_pain(31.0)
    assert [e.cue for e in events] == [Cue.PAIN_ACK, Cue.STOP]


# -- the cap warning comes before the cap, never at or after it ----------------------------------
def test_the_cap_warning_is_given_before_the_cap_and_the_stop_at_it():
    tracker = SessionTracker(PlanSettings(warning_before_cap_s=60.0), cap_s=600.0)
    events = [e for t in range(0, 700) if (e := tracker.update(float(t), float(t))) is not None]
    warning, stop = events[0], events[1]
    assert warning.cue is Cue.CAP_WARNING and 540.0 <= warning.t_s < 600.0
    assert stop.cue is Cue.STOP and stop.t_s == 600.0


@pytest.mark.parametrize("first_walk_s", [600.0, 650.0])
def test_walk_time_first_seen_at_or_past_the_cap_gives_the_stop_not_a_warning(first_walk_s):
    """A restored session, or a hole in the data, can bring walk time past the warning window at once."""
    tracker = SessionTracker(PlanSettings(warning_before_cap_s=60.0), cap_s=600.0)
    events = [e for k in range(5) if (e := tracker.update(1000.0 + k, first_walk_s + k)) is not None]
    assert [e.cue for e in events] == [Cue.STOP]


def test_a_pain_report_inside_the_warning_window_gives_no_late_warning():
    tracker = SessionTracker(PlanSettings(warning_before_cap_s=60.0, pain_shorten_min=5.0), cap_s=900.0)
    tracker.report_pain(580.0, walk_s=580.0)  # the cap is now 600 s: 20 s left, inside the window
    events = [e for t in range(580, 700) if (e := tracker.update(float(t), float(t))) is not None]
    assert [e.cue for e in events] == [Cue.STOP, Cue.STOP]
    assert events[0].t_s == 600.0


# -- a bout's step-time variability -------------------------------------------------------------
def test_step_time_cv_is_the_spread_of_the_step_times_over_their_mean():
    intervals = [0.5, 0.6] * 15  # a limp: long and short steps in turn
    times = [1.0]
    for interval in intervals:
        times.append(times[-1] + interval)
    bout = finished_bout(times)  # the last contact is the closing one: the bout's steps are those before it
    assert bout.steps == len(times) - 1
    stepped = intervals[:-1]
    expected = statistics.pstdev(stepped) / statistics.mean(stepped)  # ~0.05 / 0.55
    assert bout.step_time_cv == pytest.approx(expected, rel=0.02)
    assert finished_bout([1.0 + 0.55 * k for k in range(31)]).step_time_cv == pytest.approx(0.0, abs=1e-9)


def _walk_whole_seconds(tracker, from_s, to_s):
    """Walking the whole time, one update a second: walk time == clock."""
    return [e for t in range(int(from_s), int(to_s)) if (e := tracker.update(float(t), float(t))) is not None]


def test_the_warning_the_stop_and_its_repeats_come_on_the_second_they_are_due():
    tracker = SessionTracker(PlanSettings(warning_before_cap_s=60.0, stop_repeat_s=60.0), cap_s=600.0)
    events = _walk_whole_seconds(tracker, 0, 781)
    assert [(e.t_s, e.cue) for e in events] == [
        (540.0, Cue.CAP_WARNING), (600.0, Cue.STOP), (660.0, Cue.STOP), (720.0, Cue.STOP), (780.0, Cue.STOP)]
    assert "still walking" not in events[1].why
    assert all("still walking" in e.why for e in events[2:])


def test_after_a_second_pain_report_the_stop_repeats_while_walking_goes_on():
    tracker = SessionTracker(PlanSettings(pain_shorten_min=5.0, stop_repeat_s=60.0), cap_s=1200.0)
    tracker.report_pain(100.0, walk_s=100.0)
    first = tracker.report_pain(200.0, walk_s=200.0)
    assert [e.cue for e in first] == [Cue.PAIN_ACK, Cue.STOP] and tracker.cap_s == 200.0
    events = _walk_whole_seconds(tracker, 201, 321)
    assert [(e.t_s, e.cue) for e in events] == [(260.0, Cue.STOP), (320.0, Cue.STOP)]
    assert all("still walking" in e.why for e in events)


def test_a_new_session_starts_with_its_first_stop_not_a_repeat():
    tracker = SessionTracker(PlanSettings(), cap_s=120.0)
    _walk_whole_seconds(tracker, 0, 200)
    tracker.start_new()
    events = _walk_whole_seconds(tracker, 0, 130)
    assert [(e.t_s, e.cue) for e in events] == [(60.0, Cue.CAP_WARNING), (120.0, Cue.STOP)]
    assert "still walking" not in events[1].why


# -- the plan's boundaries (device/plan.py): each day and count at the edge of its rule --------------
# the plan, its sessions and days as tests/test_plan.py builds them


def test_pain_on_the_plans_first_day_holds_the_second_weeks_increase():
    state = effective_plan(PLAN, [_record(_day(0), pain=1)], _day(8))
    assert state.held_weeks == (1,) and state.cap_s == 10 * 60.0


@pytest.mark.parametrize("earlier_days, stepped", [(6, True), (7, False)])
def test_the_seven_day_window_is_today_and_the_six_days_before(earlier_days, stepped):
    today = _day(70)  # week 10: at the 30 min maximum even with a week held
    sessions = [_record(today - dt.timedelta(days=earlier_days), pain=1), _record(today, pain=1)]
    state = effective_plan(PLAN, sessions, today)
    assert state.stepped_back is stepped
    assert state.pain_sessions_last_7_days == (2 if stepped else 1)
    assert state.cap_s == (25 if stepped else 30) * 60.0


def test_only_sessions_with_pain_count_as_repeated_pain():
    sessions = [_record(_day(29), pain=1), _record(_day(30), pain=0)]
    state = effective_plan(PLAN, sessions, _day(30))
    assert not state.stepped_back and state.pain_sessions_last_7_days == 1 and state.cap_s == 30 * 60.0


def test_repeated_pain_in_the_first_week_is_already_at_the_start():
    state = effective_plan(PLAN, [_record(_day(1), pain=1), _record(_day(2), pain=1)], _day(3))
    assert not state.stepped_back and state.cap_s == 10 * 60.0
    assert "already at the start, 10 min" in state.why and "stepped back" not in state.why


def test_a_one_minute_increase_is_stepped_back_too():
    plan = PlanSettings(start_date=PLAN_START, start_min=10.0, weekly_increase_min=1.0, max_min=30.0)
    state = effective_plan(plan, [_record(_day(15), pain=1), _record(_day(16), pain=1)], _day(16))
    assert state.stepped_back and state.cap_s == 11 * 60.0  # week 2: 12 min, one back


def test_a_plan_without_increases_never_steps_back():
    plan = PlanSettings(start_date=PLAN_START, start_min=10.0, weekly_increase_min=0.0, max_min=30.0)
    state = effective_plan(plan, [_record(_day(15), pain=1), _record(_day(16), pain=1)], _day(16))
    assert not state.stepped_back and state.cap_s == 10 * 60.0


def test_the_why_names_the_first_week_only_in_the_first_week():
    assert "first week: 10 min" in effective_plan(PLAN, [], _day(6)).why
    assert "first week" not in effective_plan(PLAN, [], _day(7)).why


def test_the_maximum_is_named_only_when_the_cap_is_at_it():
    assert "maximum" in effective_plan(PLAN, [], _day(70)).why
    assert "maximum" not in effective_plan(PLAN, [], _day(0)).why
    stepped = effective_plan(PLAN, [_record(_day(68), pain=1), _record(_day(69), pain=1)], _day(70))
    assert stepped.cap_s == 25 * 60.0 and "maximum" not in stepped.why


def test_the_start_date_is_the_earliest_session_not_the_latest():
    plan = PlanSettings(start_min=10.0, weekly_increase_min=5.0, max_min=30.0)
    state = effective_plan(plan, [_record(_day(5)), _record(_day(0)), _record(_day(9))], _day(14))
    assert state.start_date == _day(0) and state.week_index == 2 and state.cap_s == 20 * 60.0


def test_the_first_plausible_day_counts_and_the_day_before_it_is_an_unset_clock():
    plan = PlanSettings(start_min=10.0, weekly_increase_min=5.0, max_min=30.0)
    first = dt.date(2024, 1, 1)
    assert effective_plan(plan, [_record(first)], first + dt.timedelta(days=7)).cap_s == 15 * 60.0
    before = effective_plan(plan, [_record(first - dt.timedelta(days=1))], first + dt.timedelta(days=7))
    assert before.start_date == first + dt.timedelta(days=7) and before.cap_s == 10 * 60.0


@pytest.mark.parametrize("walks, nudge", [(1, "1 more walk(s)"), (2, "within the suggestion"),
                                          (3, "within the suggestion"), (4, "more than suggested")])
def test_walks_per_day_against_the_suggested_two_to_three(walks, nudge):
    sessions = [_record(_day(3), sid=k) for k in range(walks)]
    assert nudge in format_plan(effective_plan(PLAN, sessions, _day(3)))


def test_the_plan_as_json_rounds_to_a_tenth():
    plan = PlanSettings(start_date=PLAN_START, start_min=10.123, weekly_increase_min=5.0, max_min=30.0)
    data = effective_plan(plan, [], _day(0)).to_json()
    assert data["cap_s"] == 607.4 and data["cap_min"] == 10.1


def test_walk_time_is_the_time_walked_however_late_the_walk_starts():
    coach = _coach(pause_s=600.0)
    _feed(coach, 0.0, 300.0, walking=False)
    _feed(coach, 300.0, 360.0, walking=True)  # 60 s of walking, from 300 s
    events = _feed(coach, 360.0, 380.0, walking=False)
    [ended] = _kinds(events, EventKind.WALK_ENDED)
    assert 58.0 <= ended.bout.duration_s <= 61.0
    assert 58.0 <= coach.snapshot(380.0).walk_s <= 61.0


def test_the_coach_warns_and_stops_on_the_walk_time_of_the_whole_session():
    """Two walks with a rest between (shorter than the session-end pause): the cap counts both."""
    coach = _coach(pause_s=600.0, cap_s=150.0, warning_before_cap_s=60.0)
    first = _feed(coach, 0.0, 60.0, walking=True)
    first += _feed(coach, 60.0, 90.0, walking=False)
    [bout] = [e.bout for e in _kinds(first, EventKind.WALK_ENDED)]
    assert coach.snapshot(90.0).steps == bout.steps > 0
    second = _feed(coach, 90.0, 200.0, walking=True)
    [warning] = [e for e in second if e.cue is Cue.CAP_WARNING]
    stops = [e for e in second if e.cue is Cue.STOP]
    walked_before_s = bout.duration_s
    # the warning when the session has 90 s of walking, the stop at 150 s: ~30 s and ~90 s into the second walk
    assert 90.0 + (90.0 - walked_before_s) - 1.0 <= warning.t_s <= 90.0 + (90.0 - walked_before_s) + 3.0, warning.t_s
    assert 90.0 + (150.0 - walked_before_s) - 1.0 <= stops[0].t_s <= 90.0 + (150.0 - walked_before_s) + 3.0, stops[0].t_s
    assert not [e for e in first if e.cue in (Cue.CAP_WARNING, Cue.STOP)]


def test_events_of_one_sample_all_come_out_in_order():
    """A cap shorter than the steps it takes to recognise a walk: the walk starts and the stop is due
    in the same sample; the coach returns both, walk first."""
    coach = _coach(cap_s=2.0, warning_before_cap_s=0.0)
    for k in range(int(30 * RATE_HZ)):
        t_s = k / RATE_HZ
        events = coach.update(_sample(t_s, 2.5 * math.cos(2 * math.pi * CADENCE_SPM / 60.0 * t_s)))
        if any(e.kind is EventKind.WALK_STARTED for e in events):
            assert [e.kind for e in events][-2:] == [EventKind.WALK_STARTED, EventKind.CAP_REACHED]
            break
    else:
        raise AssertionError("no walk started")


# -- a restart carries the cap cues given and the next stop due ------------------------------------
def test_the_saved_stop_due_is_the_time_left_and_never_negative():
    tracker = SessionTracker(PlanSettings(stop_repeat_s=60.0), cap_s=600.0)
    _walk_whole_seconds(tracker, 0, 601)  # the stop at 600 s: the next is due at 660 s
    assert tracker.cap_cue_state(630.0) == {"cap_warned": True, "cap_stopped": True, "stop_due_in_s": 30.0}
    assert tracker.cap_cue_state(700.0)["stop_due_in_s"] == 0.0


def test_a_restarted_coach_repeats_the_stop_when_it_is_due_and_gives_no_second_warning():
    coach = _coach(cap_s=120.0, warning_before_cap_s=60.0, stop_repeat_s=60.0)
    first = _feed(coach, 0.0, 140.0, walking=True)
    [stop] = [e for e in first if e.cue is Cue.STOP]
    state = coach.saved_state(140.0)
    assert state["cap_warned"] and state["cap_stopped"]
    assert state["stop_due_in_s"] == pytest.approx(stop.t_s + 60.0 - 140.0)
    restarted = _coach(cap_s=120.0, warning_before_cap_s=60.0, stop_repeat_s=60.0)
    restarted.restore_state(state, 1000.0, 10.0)  # a new process whose clock reads 1000 s, 10 s after the save
    assert restarted.snapshot(1000.0).walk_s == state["walk_s"] and 135.0 <= state["walk_s"] <= 141.0
    later = _feed(restarted, 1000.0, 1100.0, walking=True)
    cues = [e for e in later if e.cue in (Cue.CAP_WARNING, Cue.STOP)]
    due_s = 1000.0 + state["stop_due_in_s"] - 10.0
    assert cues[0].cue is Cue.STOP and due_s - 0.1 <= cues[0].t_s <= max(due_s, 1000.0 + 5.0) + 0.5, (due_s, cues[0].t_s)
    assert "still walking" in cues[0].why
    assert Cue.CAP_WARNING not in [e.cue for e in cues]


def _saved_after_a_walk(rest_s: float) -> tuple[float, dict]:
    """(when the walk ended, the session saved ``rest_s`` after the walking stopped)"""
    coach = _coach(pause_s=300.0)
    _feed(coach, 0.0, 60.0, walking=True)
    [ended] = _kinds(_feed(coach, 60.0, 60.0 + rest_s, walking=False), EventKind.WALK_ENDED)
    return ended.bout.end_s, coach.saved_state(60.0 + rest_s)


def test_a_session_saved_while_walking_is_zero_seconds_since_the_walk():
    coach = _coach()
    _feed(coach, 0.0, 30.0, walking=True)
    state = coach.saved_state(30.0)
    assert state["since_walk_s"] == 0.0 and state["upright"] is not None


def test_the_session_end_pause_runs_on_across_a_restart():
    """Saved 100 s after the walk, restarted 50 s later: the 300 s pause ends 150 s after the restart."""
    walk_end_s, state = _saved_after_a_walk(100.0)
    restarted = _coach(pause_s=300.0)
    restarted.restore_state(state, 1000.0, 50.0)
    events = _feed(restarted, 1000.0, 1200.0, walking=False)
    [ended] = _kinds(events, EventKind.SESSION_ENDED)
    expected_s = 1000.0 + (walk_end_s + 300.0) - (160.0 + 50.0)
    assert expected_s <= ended.t_s <= expected_s + 0.5, (expected_s, ended.t_s)
    assert restarted.upright.captured


@pytest.mark.parametrize("key, value", [("walk_s", -1.0), ("cap_s", float("nan")), ("planned_cap_s", -5.0),
                                        ("steps", -1), ("pain_reports", -1), ("upright", [0.0, 0.0, 0.1])])
def test_a_saved_session_with_an_impossible_value_is_refused(key, value):
    _, state = _saved_after_a_walk(10.0)
    with pytest.raises(ValueError):
        _coach().restore_state(dict(state, **{key: value}), 0.0, 0.0)
    with pytest.raises(ValueError):
        _coach().restore_state(state, 0.0, -1.0)  # time away cannot be negative


def test_a_saved_session_of_zeros_and_no_upright_is_taken():
    _, state = _saved_after_a_walk(10.0)
    zeros = dict(state, walk_s=0.0, steps=0, pain_reports=0, upright=None)
    coach = _coach()
    coach.restore_state(zeros, 0.0, 0.0)
    snap = coach.snapshot(0.0)
    assert snap.walk_s == 0.0 and snap.steps == 0 and not snap.upright_captured


def test_a_saved_upright_keeps_its_source_and_is_taken_as_a_direction():
    _, state = _saved_after_a_walk(10.0)
    coach = _coach()
    coach.restore_state(dict(state, upright=[0.0, 0.0, 0.8], upright_source="stance"), 0.0, 0.0)
    assert coach.upright.captured and coach.upright.source == "stance"
    assert coach.upright.up == pytest.approx((0.0, 0.0, 1.0))
    unknown = _coach()
    unknown.restore_state(dict(state, upright_source="from a newer version"), 0.0, 0.0)
    assert unknown.upright.source == "calibrated"


def test_a_stop_overdue_by_the_time_away_is_due_at_once_after_the_restart():
    coach = _coach(cap_s=60.0, stop_repeat_s=60.0)
    _feed(coach, 0.0, 80.0, walking=True)  # the stop near 60 s; the next due near 120 s
    state = coach.saved_state(80.0)
    restarted = _coach(cap_s=60.0, stop_repeat_s=60.0)
    restarted.restore_state(state, 500.0, state["stop_due_in_s"] + 30.0)  # away longer than it was due
    assert restarted.saved_state(500.0)["stop_due_in_s"] == 0.0
