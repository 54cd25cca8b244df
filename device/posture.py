"""Posture: the wearer's upright reference and forward lean against it.

Lean is a change in gravity direction: the angle, in the sagittal plane, between
the gravity vector now and the gravity vector captured while the wearer stood
upright and still. The sagittal plane is spanned by that upright direction and
the body's forward axis (from the mount), so a belt that sits a few degrees off
or a wearer's own pelvic tilt are absorbed by the calibration. Sideways tilt is
not lean.
"""

from __future__ import annotations

import math
from collections import deque

from .events import Cue, Event, EventKind, LeanEpisode
from .settings import LeanSettings, UprightSettings

RAD_TO_DEG = 180.0 / math.pi
NOMINAL_UP = (0.0, 0.0, 1.0)
BODY_FORWARD = (1.0, 0.0, 0.0)
STILL_MAX_LINEAR_MS2 = 0.6  # standing still: no more body acceleration than postural sway
STILL_MAX_DRIFT_DEG = 3.0  # gravity direction that wanders less than this counts as held


def _unit(v) -> tuple[float, float, float]:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n == 0.0:
        raise ValueError("zero vector has no direction")
    return (v[0] / n, v[1] / n, v[2] / n)


def angle_deg(a, b) -> float:
    a, b = _unit(a), _unit(b)
    dot = max(-1.0, min(1.0, a[0] * b[0] + a[1] * b[1] + a[2] * b[2]))
    return math.acos(dot) * RAD_TO_DEG


class UprightReference:
    """The wearer's upright gravity direction, captured while standing still.

    Until captured, the mount's nominal up axis stands in. A capture needs
    ``still_s`` of stillness with gravity within ``max_from_nominal_deg`` of the
    nominal up (so a belt lying on a table, or sitting, is not taken as upright).
    ``request_capture`` (the calibrate command, a held button) takes the next
    still period with a wider tolerance.
    """

    def __init__(self, settings: UprightSettings, rate_hz: float) -> None:
        self.configure(settings, rate_hz)
        self._cos_drift = math.cos(math.radians(STILL_MAX_DRIFT_DEG))
        self.captured = False
        self._requested = False
        self._still = 0
        self._sum = [0.0, 0.0, 0.0]
        self._anchor = NOMINAL_UP
        self.up = NOMINAL_UP
        self.forward = BODY_FORWARD

    def configure(self, settings: UprightSettings, rate_hz: float) -> None:
        """New settings (a config reload); the captured upright is kept."""
        self._need = max(1, round(settings.still_s * rate_hz))
        self._max_from_nominal_deg = settings.max_from_nominal_deg

    def set(self, up) -> None:
        """Use ``up`` (a gravity direction in the body frame) as the upright."""
        self.up = _unit(up)
        fx, fy, fz = BODY_FORWARD
        d = fx * self.up[0] + fy * self.up[1] + fz * self.up[2]
        self.forward = _unit((fx - d * self.up[0], fy - d * self.up[1], fz - d * self.up[2]))
        self.captured = True
        self._requested = False

    def request_capture(self) -> None:
        self._requested = True
        self._still = 0

    @property
    def waiting(self) -> bool:
        return not self.captured or self._requested

    def update(self, gravity, linear_acc) -> bool:
        """Feed one sample while waiting; True when the upright was captured by it."""
        lx, ly, lz = linear_acc
        gx, gy, gz = gravity
        gn = math.sqrt(gx * gx + gy * gy + gz * gz)
        if gn == 0.0 or lx * lx + ly * ly + lz * lz > STILL_MAX_LINEAR_MS2 * STILL_MAX_LINEAR_MS2:
            self._still = 0
            return False
        ux, uy, uz = gx / gn, gy / gn, gz / gn
        ax, ay, az = self._anchor
        if self._still == 0 or ux * ax + uy * ay + uz * az < self._cos_drift:
            self._anchor = (ux, uy, uz)
            self._sum = [0.0, 0.0, 0.0]
            self._still = 0
        self._still += 1
        s = self._sum
        s[0] += ux
        s[1] += uy
        s[2] += uz
        if self._still < self._need:
            return False
        mean = _unit(s)
        limit = 90.0 if self._requested else self._max_from_nominal_deg
        self._still = 0
        if angle_deg(mean, NOMINAL_UP) > limit:
            return False
        self.set(mean)
        return True


class LeanDetector:
    """Filtered forward lean, lean episodes, and the straighten-up rules.

    Lean is low-passed (time constant ``filter_s``) so gait sway at step and
    stride frequency does not count. An episode starts when the filtered lean
    passes the threshold and clears with hysteresis; after ``hold_s`` a
    straighten-up cue is due, repeated every ``repeat_s``; at most
    ``max_cues_per_10min`` are given (alert fatigue), none in tracking mode,
    and only while walking unless ``coach_while_standing``.
    """

    def __init__(self, settings: LeanSettings, rate_hz: float) -> None:
        self.configure(settings, rate_hz)
        self.lean_deg = 0.0
        self._primed = False
        self.leaning = False
        self._start_s = 0.0
        self._max_deg = 0.0
        self._cued = False
        self._next_cue_s = 0.0
        self._recent_cues_s: deque[float] = deque()

    def configure(self, settings: LeanSettings, rate_hz: float) -> None:
        """New settings (a config reload); the lean and the episode in progress are kept."""
        self.settings = settings
        self._alpha = 1.0 - math.exp(-1.0 / (settings.filter_s * rate_hz))
        self._threshold = settings.threshold_deg
        self._clear_below = settings.threshold_deg - settings.hysteresis_deg
        self._hold_s = settings.hold_s

    def restart_filter(self) -> None:
        """After a gap in the data: take the next lean as it is instead of smoothing into it."""
        self._primed = False

    def update(self, t_s: float, raw_lean_deg: float, walking: bool) -> Event | None:
        if self._primed:
            lean = self.lean_deg + self._alpha * (raw_lean_deg - self.lean_deg)
        else:
            lean = raw_lean_deg
            self._primed = True
        self.lean_deg = lean
        if not self.leaning:
            if lean > self._threshold:
                self.leaning = True
                self._start_s = t_s
                self._max_deg = lean
                self._cued = False
                self._next_cue_s = t_s + self._hold_s
                return Event(t_s, EventKind.LEAN_STARTED, why=f"lean {lean:.0f}°")
            return None
        if lean > self._max_deg:
            self._max_deg = lean
        if lean < self._clear_below:
            return self._clear(t_s)
        if t_s >= self._next_cue_s:
            return self._maybe_cue(t_s, walking)
        return None

    def _maybe_cue(self, t_s: float, walking: bool) -> Event | None:
        s = self.settings
        if s.tracking_only or not (walking or s.coach_while_standing):
            return None
        recent = self._recent_cues_s
        while recent and t_s - recent[0] >= 600.0:
            recent.popleft()
        if len(recent) >= s.max_cues_per_10min:
            self._next_cue_s = recent[0] + 600.0
            return None
        recent.append(t_s)
        self._cued = True
        self._next_cue_s = t_s + s.repeat_s
        held_s = t_s - self._start_s
        return Event(
            t_s,
            EventKind.LEAN_HELD,
            cue=Cue.STRAIGHTEN_UP,
            why=f"leaning {self.lean_deg:.0f}° for {held_s:.0f} s",
        )

    def _clear(self, t_s: float) -> Event:
        self.leaning = False
        episode = LeanEpisode(self._start_s, t_s, self._max_deg, self._cued)
        cue = Cue.UPRIGHT_AGAIN if self._cued and self.settings.upright_again_cue else None
        return Event(
            t_s, EventKind.LEAN_CLEARED, cue=cue, why=f"upright again after {t_s - self._start_s:.0f} s", lean=episode
        )

    def open_episode(self, t_s: float) -> LeanEpisode | None:
        """The episode in progress, if any (for summaries at the end of a run)."""
        if not self.leaning:
            return None
        return LeanEpisode(self._start_s, t_s, self._max_deg, self._cued)
