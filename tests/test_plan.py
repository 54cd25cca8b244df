"""The plan: weekly growth held by pain, stepped back by repeated pain, never below the start."""

import datetime as dt

import numpy as np
import pytest

from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.plan import PLAN_RULE, SessionRecord, effective_plan, format_plan
from walkcoach.device.core.settings import PlanSettings

START = dt.date(2025, 3, 3)  # a Monday
PLAN = PlanSettings(start_date=START, start_min=10.0, weekly_increase_min=5.0, max_min=30.0)


def session(day: dt.date, *, pain: int = 0, walk_min: float = 10.0, sid: int = 0) -> SessionRecord:
    started = dt.datetime.combine(day, dt.time(10, 0)).astimezone()
    return SessionRecord(sid, started, day, started + dt.timedelta(minutes=walk_min), walk_min * 60.0, 1000, 600.0,
                         600.0, pain, "session_end")


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def test_without_history_the_plan_grows_every_week_up_to_the_maximum():
    for week, minutes in [(0, 10), (1, 15), (2, 20), (4, 30), (9, 30)]:
        state = effective_plan(PLAN, [], day(7 * week + 2))
        assert state.cap_s == minutes * 60.0
        assert state.cap_s == PLAN.cap_s(day(7 * week + 2))  # agrees with the bare settings
        assert state.week_index == week and state.held_weeks == ()


def test_a_pain_report_holds_the_next_weeks_increase():
    sessions = [session(day(1)), session(day(8), pain=1), session(day(9))]  # pain in week 1
    state = effective_plan(PLAN, sessions, day(15))  # week 2
    assert state.held_weeks == (2,)
    assert state.increases_applied == 1
    assert state.cap_s == 15 * 60.0
    assert "held in week(s) 3" in state.why  # weeks are shown counting from 1
    later = effective_plan(PLAN, sessions, day(22))  # week 3: week 2 was pain-free, so it grows again
    assert later.cap_s == 20 * 60.0 and later.held_weeks == (2,)


def test_pain_in_the_current_week_does_not_change_todays_cap():
    state = effective_plan(PLAN, [session(day(15), pain=1)], day(16))
    assert state.cap_s == 20 * 60.0 and not state.stepped_back


def test_two_sessions_with_pain_in_seven_days_step_back_one_increment():
    sessions = [session(day(21), pain=1), session(day(23), pain=2)]
    state = effective_plan(PLAN, sessions, day(24))  # week 3: 3 increases -> 25 min, then one back
    assert state.stepped_back and state.pain_sessions_last_7_days == 2
    assert state.cap_s == 20 * 60.0
    assert "stepped back to 20 min" in state.why
    after = effective_plan(PLAN, sessions, day(31))  # both left the 7-day window; week 3 had pain, so week 4 is held
    assert not after.stepped_back and after.cap_s == 25 * 60.0 and after.held_weeks == (4,)


def test_the_cap_never_drops_below_the_start():
    sessions = [session(day(d), pain=1) for d in range(0, 28)]  # pain every day for four weeks
    for n in range(0, 35):
        state = effective_plan(PLAN, sessions, day(n))
        assert state.cap_s >= PLAN.start_min * 60.0
    assert effective_plan(PLAN, sessions, day(27)).cap_s == PLAN.start_min * 60.0


def test_the_cap_never_exceeds_the_maximum_and_steps_back_from_it():
    state = effective_plan(PLAN, [], day(70))
    assert state.cap_s == 30 * 60.0 and "maximum" in state.why
    stepped = effective_plan(PLAN, [session(day(68), pain=1), session(day(69), pain=1)], day(70))
    assert stepped.cap_s == 25 * 60.0


def test_start_date_defaults_to_the_first_session():
    plan = PlanSettings(start_min=12.0, weekly_increase_min=4.0, max_min=40.0)
    state = effective_plan(plan, [session(day(0))], day(14))
    assert state.start_date == day(0) and state.cap_s == 20 * 60.0
    assert effective_plan(plan, [], day(14)).cap_s == 12 * 60.0  # no history: the plan starts today


def test_sessions_today_are_counted_against_the_suggestion_not_enforced():
    sessions = [session(day(3), sid=i) for i in range(4)] + [session(day(3), walk_min=0.0, sid=9)]
    state = effective_plan(PLAN, sessions, day(3))
    assert state.sessions_today == 4  # the one without walking (a pain report only) is not a walk
    assert state.sessions_per_day == (2, 3)
    assert state.cap_s == 10 * 60.0  # many walks do not shorten the cap
    text = format_plan(state)
    assert "walks today: 4 (suggested 2-3 a day; more than suggested" in text
    assert PLAN_RULE in text
    assert "1 more walk(s)" in format_plan(effective_plan(PLAN, sessions[:1], day(3)))


def test_future_sessions_are_ignored():
    state = effective_plan(PLAN, [session(day(40), pain=2), session(day(41), pain=1)], day(10))
    assert state.cap_s == 15 * 60.0


def test_to_json_is_plain_data():
    data = effective_plan(PLAN, [session(day(1), pain=1)], day(8)).to_json()
    assert data["cap_min"] == 10.0 and data["held_weeks"] == [1] and data["rule"] == PLAN_RULE
    assert data["sessions_per_day"] == [2, 3] and data["start_date"] == "2025-03-03"


# -- pain during a session, through the Coach (device/core/session.py) ---------------------------
def _walking_coach():
    """A coach 60 s into a simulated walk (walking, upright captured)."""
    from walkcoach.device.core.coach import Coach
    from walkcoach.device.core.settings import CoachSettings
    from walkcoach.sim import walker

    w = walker.simulate("upright-walk", 0, rate_hz=100.0)
    coach = Coach(CoachSettings(), rate_hz=100.0, cap_s=600.0)
    g = list(map(tuple, w.mount.remap_array(np.asarray(w.gravity_ms2)).tolist()))
    lin = list(map(tuple, w.mount.remap_array(np.asarray(w.linear_acc_ms2)).tolist()))
    from walkcoach.hal.types import ImuSample

    samples = [ImuSample(float(t), g[i], lin[i], (0.0, 0.0, 0.0), 3) for i, t in enumerate(w.t_s)]
    events = []
    for sample in samples[:6000]:
        events.extend(coach.update(sample))
    assert coach.snapshot(60.0).walking
    return coach, samples, events


def test_one_pain_report_shortens_the_session_and_two_bring_the_stop_cue():
    coach, samples, _ = _walking_coach()
    first = coach.report_pain(60.0)
    assert [e.kind for e in first] == [EventKind.PAIN_REPORTED] and first[0].cue is Cue.PAIN_ACK
    assert coach.session.cap_s == pytest.approx(600.0 - 5 * 60.0)
    second = coach.report_pain(70.0)
    assert [e.kind for e in second] == [EventKind.PAIN_REPORTED, EventKind.CAP_REACHED]
    assert second[1].cue is Cue.STOP
    later = []
    for sample in samples[6000:14000]:  # walking on: the stop cue repeats
        later.extend(e for e in coach.update(sample) if e.cue is Cue.STOP)
    assert len(later) >= 1
