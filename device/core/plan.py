"""The walking plan in effect today, from the plan settings and the history of sessions.

Pure: the caller loads the sessions (``device.store``) and passes today's date.

The rules (docs/design.md, "The coaching rules"): walks start short and grow by the
weekly increase, only as far as the pain does not worsen.

- The plan's weeks count from ``start_date`` (or the first recorded session,
  or today). Week 0 walks ``start_min`` per session.
- Each later week adds ``weekly_increase_min`` only if the week before it had
  no session with a pain report; otherwise that week's increase is held (and
  is not made up later: the plan grows from where it is).
- Repeated pain, two or more sessions with a pain report in the last 7 days,
  steps the cap back one increment for as long as that holds; never below
  ``start_min``. The cap never exceeds ``max_min``.
- Sessions per day are counted against the suggested range (2-3 by default):
  a guide shown to the wearer, never a reason to stop them walking.

A week without any session counts as pain-free (there is no evidence of
pain); the plan's clock runs on regardless of use.

A session dated before :data:`EARLIEST_PLAUSIBLE_DATE` was dated by a clock that was
not set yet (a Pi boots at 1970): it is left out of the plan, so weeks never count
from an impossible date (``device.clock_trust`` re-dates such sessions when it can).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from walkcoach.device.core.settings import PlanSettings

EARLIEST_PLAUSIBLE_DATE = dt.date(2024, 1, 1)  # no walkcoach ran before this: an earlier date is an unset clock

PLAN_RULE = (
    "The cap grows by the weekly increase each week, but only after a week without pain reports; "
    "two or more sessions with pain in the last 7 days step it back one increment (never below the start). "
    "Walks per day are a suggestion, never a limit."
)


class SessionRecord(NamedTuple):
    """One stored session, as the plan and the reports see it. Times are wall-clock, local."""

    id: int
    started: dt.datetime
    date: dt.date  # local date the session started
    ended: dt.datetime | None
    walk_s: float
    steps: int
    cap_s: float
    planned_cap_s: float
    pain_reports: int
    closed_by: str | None  # 'session_end' | 'shutdown' | 'recovered_after_crash' | None (open)


class PlanState(NamedTuple):
    cap_s: float  # today's walking cap per session
    week_index: int  # 0 = the plan's first week
    increases_applied: int
    held_weeks: tuple[int, ...]  # week indices whose increase was held (pain the week before)
    sessions_today: int
    sessions_per_day: tuple[int, int]  # suggested range
    why: str
    start_date: dt.date
    stepped_back: bool  # repeated pain in the last 7 days took one increment off
    pain_sessions_last_7_days: int

    def to_json(self) -> dict:
        return {
            "cap_s": round(self.cap_s, 1),
            "cap_min": round(self.cap_s / 60.0, 1),
            "week_index": self.week_index,
            "increases_applied": self.increases_applied,
            "held_weeks": list(self.held_weeks),
            "sessions_today": self.sessions_today,
            "sessions_per_day": list(self.sessions_per_day),
            "why": self.why,
            "start_date": self.start_date.isoformat(),
            "stepped_back": self.stepped_back,
            "pain_sessions_last_7_days": self.pain_sessions_last_7_days,
            "rule": PLAN_RULE,
        }


def plan_start_date(settings: PlanSettings, sessions: Sequence[SessionRecord], today: dt.date) -> dt.date:
    if settings.start_date is not None:
        return settings.start_date
    if sessions:
        return min(s.date for s in sessions)
    return today


def effective_plan(settings: PlanSettings, sessions: Sequence[SessionRecord], today: dt.date) -> PlanState:
    """Today's cap and the reasons for it. Sessions after ``today``, or before any walkcoach ran, are ignored."""
    sessions = [s for s in sessions if EARLIEST_PLAUSIBLE_DATE <= s.date <= today]
    start = plan_start_date(settings, sessions, today)
    week_index = max(0, (today - start).days // 7)
    pain_weeks = {(s.date - start).days // 7 for s in sessions if s.pain_reports > 0 and s.date >= start}
    held = tuple(k for k in range(1, week_index + 1) if (k - 1) in pain_weeks)
    increases = week_index - len(held)
    step_min = settings.weekly_increase_min
    grown_min = min(settings.max_min, settings.start_min + increases * step_min)
    grown_min = max(settings.start_min, grown_min)

    window_start = today - dt.timedelta(days=6)
    pain_recent = sum(1 for s in sessions if s.pain_reports > 0 and window_start <= s.date <= today)
    stepped_back = pain_recent >= 2 and grown_min > settings.start_min and step_min > 0
    cap_min = max(settings.start_min, grown_min - step_min) if pain_recent >= 2 else grown_min

    sessions_today = sum(1 for s in sessions if s.date == today and s.walk_s > 0)
    lo, hi = settings.sessions_per_day_min, max(settings.sessions_per_day_min, settings.sessions_per_day_max)

    reasons = [f"week {week_index + 1} of the plan (from {start.isoformat()})"]
    if week_index == 0:
        reasons.append(f"first week: {settings.start_min:g} min")
    else:
        text = f"{increases} of {week_index} weekly increase(s) of {step_min:g} min"
        if held:
            text += f"; held in week(s) {', '.join(str(k + 1) for k in held)} after pain the week before"
        reasons.append(text)
    if grown_min >= settings.max_min and not stepped_back:
        reasons.append(f"at the plan's maximum of {settings.max_min:g} min")
    if pain_recent >= 2:
        if stepped_back:
            reasons.append(f"{pain_recent} sessions with pain in the last 7 days: stepped back to {cap_min:g} min")
        else:
            reasons.append(f"{pain_recent} sessions with pain in the last 7 days: already at the start, {cap_min:g} min")
    return PlanState(
        cap_s=cap_min * 60.0,
        week_index=week_index,
        increases_applied=increases,
        held_weeks=held,
        sessions_today=sessions_today,
        sessions_per_day=(lo, hi),
        why="; ".join(reasons),
        start_date=start,
        stepped_back=stepped_back,
        pain_sessions_last_7_days=pain_recent,
    )


def format_plan(state: PlanState) -> str:
    lo, hi = state.sessions_per_day
    suggested = f"{lo}" if lo == hi else f"{lo}-{hi}"
    if state.sessions_today < lo:
        nudge = f"{lo - state.sessions_today} more walk(s) would reach the suggestion"
    elif state.sessions_today <= hi:
        nudge = "within the suggestion"
    else:
        nudge = "more than suggested: that is fine if the pain allows"
    return "\n".join(
        [
            f"today's cap: {state.cap_s / 60:.0f} min per walk",
            f"why: {state.why}",
            f"walks today: {state.sessions_today} (suggested {suggested} a day; {nudge})",
            f"rule: {PLAN_RULE}",
        ]
    )
