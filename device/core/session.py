"""Session: walk time against today's cap, cap cues, pain reports, the end of an outing."""

from __future__ import annotations

from walkcoach.device.core.events import Cue, Event, EventKind
from walkcoach.device.core.settings import PlanSettings


class SessionTracker:
    """Walk time of one outing against its cap.

    The cap comes from the plan for today (the loop passes it in: the coach has
    no calendar). ``warning_before_cap_s`` before the cap a cap-warning cue, at
    the cap a stop cue, repeated every ``stop_repeat_s`` while walking goes on.
    A pain report shortens this session's cap; a second one in the same session
    brings the stop cue at once.
    """

    cap_s: float  # this session's cap: the planned one, less a pain report's shortening

    def __init__(self, plan: PlanSettings, cap_s: float) -> None:
        self._plan = plan
        self.planned_cap_s = cap_s
        self.start_new(cap_s)

    def configure(self, plan: PlanSettings, cap_s: float) -> None:
        """New plan settings or a new day's cap; a pain report's shortening of this session is kept."""
        shortened_s = self.planned_cap_s - self.cap_s
        self._plan = plan
        self.planned_cap_s = cap_s
        self.cap_s = cap_s - shortened_s

    def start_new(self, cap_s: float | None = None) -> None:
        if cap_s is not None:
            self.planned_cap_s = cap_s
        self.cap_s = self.planned_cap_s
        self.completed_walk_s = 0.0
        self.completed_steps = 0
        self.started = False
        self.pain_reports = 0
        self._warned = False
        self._stopped = False
        self._next_stop_s = 0.0

    def cap_cue_state(self, t_s: float) -> dict:
        """Which cap cues this session has had, for a restart (``Coach.saved_state``)."""
        return {"cap_warned": self._warned, "cap_stopped": self._stopped, "stop_due_in_s": max(0.0, self._next_stop_s - t_s)}

    def restore(self, *, started: bool, walk_s: float, steps: int, cap_s: float, planned_cap_s: float, pain_reports: int,
                cap_warned: bool, cap_stopped: bool, next_stop_s: float) -> None:
        """Continue a session carried over a restart (``Coach.restore_state`` checked the values)."""
        self.started = started
        self.completed_walk_s, self.completed_steps = walk_s, steps
        self.cap_s, self.planned_cap_s, self.pain_reports = cap_s, planned_cap_s, pain_reports
        self._warned, self._stopped, self._next_stop_s = cap_warned, cap_stopped, next_stop_s

    def update(self, t_s: float, walk_s: float) -> Event | None:
        """Call while walking, with the session's walk time so far."""
        cap_s = self.cap_s
        if not self._warned and walk_s >= cap_s - self._plan.warning_before_cap_s and walk_s < cap_s:
            self._warned = True
            return Event(
                t_s, EventKind.CAP_WARNING, Cue.CAP_WARNING,
                f"{(cap_s - walk_s) / 60:.0f} min of walking left of {cap_s / 60:.0f}",
            )
        if walk_s >= cap_s and t_s >= self._next_stop_s:
            first = not self._stopped
            self._stopped = True
            self._warned = True
            self._next_stop_s = t_s + self._plan.stop_repeat_s
            why = f"walked {walk_s / 60:.1f} min, cap {cap_s / 60:.0f} min" + ("" if first else " (still walking)")
            return Event(t_s, EventKind.CAP_REACHED, Cue.STOP, why)
        return None

    def report_pain(self, t_s: float, walk_s: float) -> list[Event]:
        self.pain_reports += 1
        events = [Event(t_s, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, f"pain report {self.pain_reports} this session")]
        if self.pain_reports == 1:
            self.cap_s = max(walk_s, self.cap_s - self._plan.pain_shorten_min * 60.0)
            self._warned = walk_s >= self.cap_s - self._plan.warning_before_cap_s
        else:
            self.cap_s = min(self.cap_s, walk_s)
            self._stopped = True
            self._next_stop_s = t_s + self._plan.stop_repeat_s
            events.append(Event(t_s, EventKind.CAP_REACHED, Cue.STOP, "pain got worse again: stop for today"))
        return events
