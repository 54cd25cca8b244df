"""What the coach says, as data: events out of Coach.update, and the cues they carry."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Cue(StrEnum):
    """What the wearer feels or hears. The values are the names used in JSON and logs."""

    READY = "ready"
    STRAIGHTEN_UP = "straighten_up"
    UPRIGHT_AGAIN = "upright_again"
    CAP_WARNING = "cap_warning"
    STOP = "stop"
    FAULT = "fault"
    PAIN_ACK = "pain_ack"
    CONFIG_ERROR = "config_error"
    BELT_MOVED = "belt_moved"  # the upright was re-zeroed: the belt moved, or its forward axis was corrected


class EventKind(StrEnum):
    UPRIGHT_CAPTURED = "upright_captured"
    LEAN_STARTED = "lean_started"
    LEAN_HELD = "lean_held"
    LEAN_CLEARED = "lean_cleared"
    WALK_STARTED = "walk_started"
    WALK_ENDED = "walk_ended"
    CAP_WARNING = "cap_warning"
    CAP_REACHED = "cap_reached"
    PAIN_REPORTED = "pain_reported"
    SESSION_ENDED = "session_ended"
    FAULT = "fault"
    CONFIG_ERROR = "config_error"  # the config file at start was invalid: coaching on the last good one
    BELT_MOVED = "belt_moved"


class Bout(NamedTuple):
    """A run of steps that counts as walking. Times are the loop's monotonic seconds."""

    start_s: float
    end_s: float
    steps: int
    cadence_spm: float
    step_time_cv: float  # step-time variability (coefficient of variation of step intervals)
    step_length_m: float | None = None  # mean, inverted-pendulum model (device.gait_metrics)
    speed_m_s: float | None = None  # sum of step lengths / their step times
    mean_lean_deg: float | None = None  # filtered lean, mean over the bout's walking samples
    peak_lean_deg: float | None = None
    step_times_s: tuple[float, ...] = ()  # every step (heel strike) counted in the bout, in order

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class LeanEpisode(NamedTuple):
    start_s: float
    end_s: float
    max_deg: float
    cued: bool


class Event(NamedTuple):
    t_s: float
    kind: EventKind
    cue: Cue | None = None
    why: str = ""
    bout: Bout | None = None
    lean: LeanEpisode | None = None
