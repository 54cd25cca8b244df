import datetime as dt

from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.session import SessionTracker
from walkcoach.device.core.settings import PlanSettings


def _walk(tracker, until_s, rate_hz=10.0, start_s=0.0):
    events = []
    n = int((until_s - start_s) * rate_hz)
    for i in range(n):
        t = start_s + i / rate_hz
        ev = tracker.update(t, t)  # walking the whole time: walk time == clock
        if ev is not None:
            events.append(ev)
    return events


def test_cap_warning_then_stop_then_repeats_while_walking():
    plan = PlanSettings()
    events = _walk(SessionTracker(plan, cap_s=600.0), until_s=720.0)
    kinds = [(round(e.t_s), e.cue) for e in events]
    assert kinds[0] == (540, Cue.CAP_WARNING)
    assert kinds[1] == (600, Cue.STOP)
    assert kinds[2] == (660, Cue.STOP)


def test_first_pain_report_shortens_cap_second_brings_stop():
    plan = PlanSettings(pain_shorten_min=5.0)
    tracker = SessionTracker(plan, cap_s=900.0)
    first = tracker.report_pain(100.0, walk_s=100.0)
    assert [e.cue for e in first] == [Cue.PAIN_ACK]
    assert tracker.cap_s == 600.0
    second = tracker.report_pain(200.0, walk_s=200.0)
    assert [e.cue for e in second] == [Cue.PAIN_ACK, Cue.STOP]
    assert second[1].kind is EventKind.CAP_REACHED


def test_pain_report_never_cuts_cap_below_what_was_walked():
    tracker = SessionTracker(PlanSettings(pain_shorten_min=5.0), cap_s=600.0)
    tracker.report_pain(500.0, walk_s=500.0)
    assert tracker.cap_s == 500.0


def test_plan_cap_grows_weekly_up_to_the_max():
    plan = PlanSettings(start_date=dt.date(2026, 1, 1), start_min=10, weekly_increase_min=5, max_min=30)
    assert plan.cap_s(dt.date(2026, 1, 1)) == 600
    assert plan.cap_s(dt.date(2026, 1, 7)) == 600
    assert plan.cap_s(dt.date(2026, 1, 8)) == 900
    assert plan.cap_s(dt.date(2026, 6, 1)) == 1800
    assert plan.cap_s(dt.date(2025, 12, 1)) == 600  # before the start: the start cap
