"""Posture: forward lean against the wearer's own upright walking posture, and the straighten-up rules.

Lean is a change in gravity direction: the angle, in the sagittal plane, between
the gravity vector now and the wearer's standing upright (``device.upright``),
less their own walking posture (the few degrees the lower back sits forward of
quiet standing while walking). The sagittal plane is spanned by the upright and
the body's forward axis (from the mount, checked against the gait), so a belt
that sits a few degrees off or a wearer's own pelvic tilt are absorbed. Sideways
tilt is not lean.
"""

from __future__ import annotations

import math
from collections import deque

from walkcoach.device.core.events import Cue, Event, EventKind, LeanEpisode
from walkcoach.device.core.settings import LeanSettings
from walkcoach.device.core.upright import RAD_TO_DEG, angle_deg  # noqa: F401  (re-exported)


class LeanDetector:
    """Filtered forward lean, lean episodes, and the straighten-up rules.

    Lean is low-passed (time constant ``filter_s``) so gait sway at step and
    stride frequency does not count. An episode starts when the filtered lean
    passes the threshold and clears with hysteresis; after ``hold_s`` a
    straighten-up cue is due, repeated every ``repeat_s``; at most
    ``max_cues_per_10min`` are given (alert fatigue), none in tracking mode.
    The hold counts only while the lean is coachable (the coach's call: steps
    current, not on stairs, or standing if ``coach_while_standing``), so a cue
    never comes after walking stopped; ``hold_off`` restarts it (stairs).
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
        self._last_t_s = 0.0

    def configure(self, settings: LeanSettings, rate_hz: float) -> None:
        """New settings (a config reload); the lean and the episode in progress are kept."""
        self.settings = settings
        self._alpha = 1.0 - math.exp(-1.0 / (settings.filter_s * rate_hz))
        self._threshold = settings.threshold_deg
        self._clear_below = settings.threshold_deg - settings.hysteresis_deg
        self._hold_s = settings.hold_s

    def hold_off(self, t_s: float) -> None:
        """A lean now (on stairs) does not count: a lean going on after it needs a whole hold."""
        if self.leaning and self._next_cue_s < t_s + self._hold_s:
            self._next_cue_s = t_s + self._hold_s

    def restart_filter(self) -> None:
        """After a gap in the data: take the next lean as it is instead of smoothing into it."""
        self._primed = False

    def update(self, t_s: float, raw_lean_deg: float, coachable: bool) -> Event | None:
        if not self.leaning:
            self._last_t_s = t_s
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
        if not coachable:  # the hold pauses: it counts coachable time only
            self._next_cue_s += t_s - self._last_t_s
            self._last_t_s = t_s
            return None
        self._last_t_s = t_s
        if t_s >= self._next_cue_s:
            return self._maybe_cue(t_s)
        return None

    def _maybe_cue(self, t_s: float) -> Event | None:
        s = self.settings
        if s.tracking_only:
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

    def end_episode(self, t_s: float) -> LeanEpisode | None:
        """Close the episode in progress at ``t_s`` (end of a run, shutdown) and return it, if any."""
        episode = self.open_episode(t_s)
        self.leaning = False
        return episode

    def open_episode(self, t_s: float) -> LeanEpisode | None:
        """The episode in progress, if any (for summaries at the end of a run)."""
        if not self.leaning:
            return None
        return LeanEpisode(self._start_s, t_s, self._max_deg, self._cued)
