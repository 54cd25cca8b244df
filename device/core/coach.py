"""The coach: one pure function of the sample stream, one sample at a time.

No I/O, no wall clock, no threads: the loop feeds it samples (with their own
timestamps) and turns the events it returns into cues, storage and status.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from math import atan2, sqrt
from typing import NamedTuple

from walkcoach.device.core.activity import StairDetector
from walkcoach.device.core.events import Event, EventKind
from walkcoach.device.core.gait import BoutTracker, StepDetector
from walkcoach.device.core.gait_metrics import BoutGaitMetrics, StepLengthEstimator, StepLengthSettings
from walkcoach.device.core.posture import RAD_TO_DEG, LeanDetector
from walkcoach.device.core.session import SessionTracker
from walkcoach.device.core.settings import CoachSettings
from walkcoach.device.core.upright import (
    SOURCE_CALIBRATED,
    SOURCE_NONE,
    SOURCE_PROVISIONAL,
    SOURCE_STANCE,
    SOURCE_WALKING,
    TRANSITION_DEG,
    UprightTracker,
)
from walkcoach.hal.types import ImuSample

NO_EVENTS: tuple[Event, ...] = ()
UPRIGHT_SOURCES = (SOURCE_PROVISIONAL, SOURCE_WALKING, SOURCE_STANCE, SOURCE_CALIBRATED)  # a restart may carry these over
GAP_SAMPLES = 2.5  # a step in time longer than this many sample periods is a hole in the data
FILTER_RESTART_GAP_S = 0.25  # shorter holes (a few lost samples) are smoothed over by the filters
MAX_BRIDGED_GAP_S = 30.0  # a hole up to this long inside a bout is walked through if steps resume
# Lean is coached only while steps are current: the last step at most this many step times ago (plus the
# step detector's confirmation delay), not while a bout waits for its end to be confirmed.
CURRENT_STEP_TIMES = 1.5
STEP_DIRECTIONS_KEPT = 24  # gravity directions of the steps before a bout (more than a bout's pending steps)


def _step_length_settings(settings: CoachSettings) -> StepLengthSettings:
    return StepLengthSettings(leg_length_m=settings.gait.leg_length_m, correction_factor=settings.gait.step_length_factor)


def _with(events: list[Event] | None, event: Event) -> list[Event]:
    """A sample's events so far and one more (most samples have none: no list is made for them)."""
    return [event] if events is None else events + [event]


class CoachSnapshot(NamedTuple):
    t_s: float
    lean_deg: float
    leaning: bool
    walking: bool
    walk_s: float
    cap_s: float
    steps: int
    cadence_spm: float
    upright_captured: bool
    session_started: bool
    pain_reports: int


class Coach:
    def __init__(self, settings: CoachSettings, *, rate_hz: float, cap_s: float) -> None:
        self.settings = settings
        self.rate_hz = rate_hz
        self._gap_s = GAP_SAMPLES / rate_hz
        self.upright = UprightTracker(settings.upright, rate_hz)
        self.lean = LeanDetector(settings.lean, rate_hz)
        self.stairs = StairDetector(rate_hz)
        self.steps = StepDetector(settings.gait, rate_hz)
        self.bouts = BoutTracker(settings.gait, self.steps.step_latency_s)
        self.step_length = StepLengthEstimator(_step_length_settings(settings), rate_hz)
        self._keep_step_length_t, self._keep_step_length_acc = self.step_length.sample_appenders()
        self.bout_gait = BoutGaitMetrics()
        self.session = SessionTracker(settings.plan, cap_s)
        self._session_end_pause_s = settings.gait.session_end_pause_s
        self._last_t_s = -math.inf
        self._last_walk_s = -math.inf
        self._coach_while_standing = settings.lean.coach_while_standing
        self._step_directions: deque = deque(maxlen=STEP_DIRECTIONS_KEPT)  # (step_s, gravity unit vector)
        self._cos_transition = math.cos(math.radians(TRANSITION_DEG))
        self._bout_changed()

    # -- the hot path -------------------------------------------------------
    def update(self, sample: ImuSample) -> Sequence[Event]:
        t_s, (gx, gy, gz), (lx, ly, lz) = sample[0], sample[1], sample[2]  # t_s, gravity_ms2, linear_acc_ms2
        last_t_s = self._last_t_s
        if t_s - last_t_s > self._gap_s and last_t_s != -math.inf:
            self._on_gap(t_s - last_t_s)
        self._last_t_s = t_s
        gn = sqrt(gx * gx + gy * gy + gz * gz)
        ux, uy, uz = gx / gn, gy / gn, gz / gn
        upright = self.upright
        upright_event = upright.observe(t_s, ux, uy, uz, lx * lx + ly * ly + lz * lz)
        events = None if upright_event is None else [upright_event]

        bouts = self.bouts
        acc_vertical_ms2 = lx * ux + ly * uy + lz * uz
        self.stairs.add(acc_vertical_ms2)
        self._keep_step_length_t(t_s)  # self.step_length.update(t_s, acc_vertical_ms2), without its call
        self._keep_step_length_acc(acc_vertical_ms2)
        step_s = self.steps.update(t_s, acc_vertical_ms2)
        if step_s is not None and not bouts.in_bout and upright.source != SOURCE_NONE and upright.lying(ux, uy, uz):
            pass  # no walk starts lying down (rolling over, a mattress bouncing)
        elif step_s is not None:
            # the rise is integrated from one lowest point of the pelvis (the detector's peak, where the
            # vertical velocity is zero) to the next, not from the contact a filter delay earlier
            length_m = self.step_length.on_step(step_s + self.steps.filter_delay_s)
            self.bout_gait.add_step(step_s, length_m, self.step_length.last_step_time_s)
            if not bouts.in_bout:
                self._step_directions.append((step_s, ux, uy, uz))
            if bouts.add_step(step_s, self.steps.last_peak_ms2, self.steps.regularity, self.steps.contact_s(step_s)):
                bouts.drop_steps_until(self._last_transition_step_s())
                self.bout_gait.start_bout(bouts.first_step_s)
                events = self._walk_started(t_s, events)
                events = self._posture_on_walk_started(t_s, events)
            events = self._posture_on_step(t_s, step_s, events)
            self._bout_changed()
        elif t_s >= bouts.rhythm_due_s:  # the rhythm's next step did not come as a detected one: a faint one?
            bouts.add_rhythm_step(self.steps.rhythm_peak(*bouts.rhythm_window_s), self.steps.regularity)
            self._bout_changed()
        elif bouts.in_bout and bouts.check_end(t_s):
            bouts.append_steps(
                self.steps.faint_steps_after(bouts.last_detected_step_s, bouts.median_step_s, self.settings.gait.rhythm_tolerance)
            )
            events = self._walk_ended(t_s, bouts.end(), events)
            self.stairs.end_walk()
            self._bout_changed()
        walking = bouts.in_bout
        steps_current = walking and t_s - self._bout_last_step_s <= self._current_steps_within_s
        if steps_current:
            upright.walking_sample(ux, uy, uz, lx, ly, lz, acc_vertical_ms2)

        if upright.source != SOURCE_NONE:  # upright.captured; before it (belt in the hand), lean means nothing
            rx, ry, rz = upright.up
            fx, fy, fz = upright.forward
            raw_lean_deg = atan2(-(ux * fx + uy * fy + uz * fz), ux * rx + uy * ry + uz * rz) * RAD_TO_DEG
            lean = self.lean
            if steps_current:
                on_stairs = self.stairs.on_stairs
                coachable = upright.coachable and not on_stairs
                if on_stairs:
                    lean.hold_off(t_s)
            else:
                coachable = self._coach_while_standing and not walking
            lean_event = lean.update(t_s, raw_lean_deg - upright.walk_offset_deg, coachable)
            if walking:
                self.bout_gait.add_lean(lean.lean_deg)
            if lean_event is not None:
                events = _with(events, lean_event)

        session = self.session
        if walking:
            self._last_walk_s = t_s
            session_event = session.update(t_s, session.completed_walk_s + bouts.live_duration_s(t_s))
            if session_event is not None:
                events = _with(events, session_event)
        elif session.started and t_s - self._last_walk_s > self._session_end_pause_s:
            events = self._session_ended(t_s, events)
        return NO_EVENTS if events is None else events

    # -- the rarer branches ---------------------------------------------------
    def _bout_changed(self) -> None:
        """After every call that may change the bout (a step, a faint one, its end): what ``update``
        reads on each sample of it, so that it asks the bout tracker only when the bout changed."""
        bouts = self.bouts
        self._bout_last_step_s = bouts.last_step_s
        self._current_steps_within_s = CURRENT_STEP_TIMES * bouts.median_step_s + bouts.step_latency_s

    def _last_transition_step_s(self) -> float:
        """The last step before this bout's rhythm made with the trunk ``TRANSITION_DEG`` or more away
        from the posture of the rhythm's steps (its walking posture): standing up, not walking; or -inf."""
        directions = list(self._step_directions)
        self._step_directions.clear()
        n = self.settings.gait.min_bout_steps
        earlier, rhythm = directions[:-n], directions[-n:]
        mx, my, mz = (sum(d[k] for d in rhythm) for k in (1, 2, 3))
        norm = math.sqrt(mx * mx + my * my + mz * mz) or 1.0
        last_s = -math.inf
        for step_s, x, y, z in earlier:
            if (x * mx + y * my + z * mz) / norm < self._cos_transition:
                last_s = step_s
        return last_s

    def _on_gap(self, gap_s: float) -> None:
        if gap_s > FILTER_RESTART_GAP_S:
            self.step_length.restart()
            self.bout_gait.restart_pending()
            self.steps.restart()
            self.stairs.restart()
            self.lean.restart_filter()
        if gap_s <= MAX_BRIDGED_GAP_S:
            self.bouts.bridge_gap(gap_s)
        self._bout_changed()

    def _walk_started(self, t_s: float, events):
        self.session.started = True
        ev = Event(t_s, EventKind.WALK_STARTED, why=f"walking from {self.bouts.bout_start_s():.1f} s")
        return _with(events, ev)

    def _walk_ended(self, t_s: float, bout, events):
        bout = bout._replace(**self.bout_gait.end_bout(self.bouts.ended_last_step_s)._asdict())
        self.session.completed_walk_s += bout.duration_s
        self.session.completed_steps += bout.steps
        self._last_walk_s = bout.end_s
        ev = Event(t_s, EventKind.WALK_ENDED, why=f"{bout.steps} steps at {bout.cadence_spm:.0f}/min", bout=bout)
        return _with(events, ev)

    def _session_ended(self, t_s: float, events):
        session = self.session
        ev = Event(t_s, EventKind.SESSION_ENDED, why=f"walked {session.completed_walk_s / 60:.1f} min")
        session.start_new()
        return _with(events, ev)

    # -- posture hooks on gait events (upright, walking posture, belt, stairs) -----------
    def _posture_on_walk_started(self, t_s: float, events):
        ev = self.upright.on_walk_started(t_s, self.bouts.first_step_s)
        if ev is None:
            return events
        return _with(events, ev)

    def _posture_on_step(self, t_s: float, step_s: float, events):
        stairs = self.stairs
        in_bout = self.bouts.in_bout
        stairs.on_step(t_s, step_s + self.steps.filter_delay_s, in_bout)  # it looks for the impact around the filtered peak
        if not in_bout:
            return events
        ev = self.upright.on_step(t_s, self.lean.lean_deg, not stairs.on_stairs)
        if ev is None:
            return events
        if ev.kind is EventKind.BELT_MOVED:
            self.lean.restart_filter()
        return _with(events, ev)

    # -- requests from outside (button, calibrate command, plan) ---------------
    def request_upright_capture(self) -> None:
        self.upright.request_capture()

    def report_pain(self, t_s: float) -> list[Event]:
        return self.session.report_pain(t_s, self.walk_s(t_s))

    @property
    def planned_cap_s(self) -> float:
        """The plan's cap for a session (before any pain shortening): what the store records as planned."""
        return self.session.planned_cap_s

    def set_planned_cap(self, cap_s: float) -> None:
        """Today's cap from the plan changed (a new day, pain in the history); a pain report's
        shortening of the session in progress is kept."""
        self.session.configure(self.settings.plan, cap_s)

    def configure(self, settings: CoachSettings, cap_s: float) -> None:
        """Apply new settings (a config reload) keeping the session, walk time, bout and lean state."""
        rate_hz = self.rate_hz
        self.settings = settings
        self.upright.configure(settings.upright, rate_hz)
        self.lean.configure(settings.lean, rate_hz)
        self._coach_while_standing = settings.lean.coach_while_standing
        self.steps.configure(settings.gait)
        self.bouts.configure(settings.gait)
        self._bout_changed()
        self.step_length.settings = _step_length_settings(settings)
        self.session.configure(settings.plan, cap_s)
        self._session_end_pause_s = settings.gait.session_end_pause_s

    # -- carrying a session over a service restart (the shell saves and restores the data) --
    def saved_state(self, t_s: float) -> dict:
        """The session at ``t_s`` as plain data (times relative to ``t_s``): what a restart carries over.

        A bout in progress counts as walked so far; the new coach detects walking afresh."""
        session = self.session
        since_walk_s = 0.0 if self.bouts.in_bout else t_s - self._last_walk_s
        return {
            "session_started": session.started,
            "walk_s": self.walk_s(t_s),
            "steps": session.completed_steps + self.bouts.live_steps(),
            "cap_s": session.cap_s,
            "planned_cap_s": session.planned_cap_s,
            "pain_reports": session.pain_reports,
            **session.cap_cue_state(t_s),  # cap_warned, cap_stopped, stop_due_in_s
            "since_walk_s": since_walk_s if math.isfinite(since_walk_s) else None,
            "upright": list(self.upright.up) if self.upright.captured else None,
            "upright_source": self.upright.source,
        }

    def restore_state(self, state: dict, t_s: float, away_s: float) -> None:
        """Continue the session of :meth:`saved_state` at ``t_s``, ``away_s`` after it was saved
        (time away counts as not walking). Raises ValueError/TypeError/KeyError on bad data."""
        session = self.session
        walk_s, cap_s, planned_s = float(state["walk_s"]), float(state["cap_s"]), float(state["planned_cap_s"])
        steps, pain = int(state["steps"]), int(state["pain_reports"])
        if not all(math.isfinite(v) and v >= 0 for v in (walk_s, cap_s, planned_s, away_s)) or steps < 0 or pain < 0:
            raise ValueError("negative or non-finite values")
        up = state.get("upright")
        if up is not None:
            up = [float(v) for v in up]
            if len(up) != 3 or not all(math.isfinite(v) for v in up) or math.sqrt(sum(v * v for v in up)) < 0.5:
                raise ValueError("upright is not a direction")
            source = state.get("upright_source")
            self.upright.set(up, source if source in UPRIGHT_SOURCES else SOURCE_CALIBRATED)
        since = state.get("since_walk_s")
        session.restore(
            started=bool(state["session_started"]), walk_s=walk_s, steps=steps, cap_s=cap_s, planned_cap_s=planned_s,
            pain_reports=pain, cap_warned=bool(state["cap_warned"]), cap_stopped=bool(state["cap_stopped"]),
            next_stop_s=t_s + max(0.0, float(state["stop_due_in_s"]) - away_s),
        )
        self._last_walk_s = t_s - (float(since) + away_s) if since is not None else -math.inf

    def walk_s(self, t_s: float) -> float:
        return self.session.completed_walk_s + self.bouts.live_duration_s(t_s)

    def finish(self, t_s: float) -> list[Event]:
        """Close what is in progress (end of a recording, shutdown): the bout and the lean episode."""
        events: list[Event] = []
        bout = self.bouts.end()
        self._bout_changed()
        if bout is not None:
            events.extend(self._walk_ended(t_s, bout, None))
        episode = self.lean.end_episode(t_s)
        if episode is not None:
            events.append(Event(t_s, EventKind.LEAN_CLEARED, why="shutdown", lean=episode))
        return events

    def snapshot(self, t_s: float) -> CoachSnapshot:
        bouts = self.bouts
        median = bouts.median_step_s
        return CoachSnapshot(
            t_s=t_s,
            lean_deg=self.lean.lean_deg,
            leaning=self.lean.leaning,
            walking=bouts.in_bout,
            walk_s=self.walk_s(t_s),
            cap_s=self.session.cap_s,
            steps=self.session.completed_steps + bouts.live_steps(),
            cadence_spm=60.0 / median if bouts.in_bout and median > 0 else 0.0,
            upright_captured=self.upright.captured,
            session_started=self.session.started,
            pain_reports=self.session.pain_reports,
        )
