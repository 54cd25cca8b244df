"""The fixed-rate loop: the imperative shell around the pure coach.

It owns timing (an injected clock), sensor faults, cues on the outputs, the
button, and hands every event to its sinks (summary, store, status). It never
crashes on a sensor fault: after ``fault_grace_s`` without a valid sample it
plays the fault cue and re-initialises the sensor with backoff; the coach keeps
its upright reference and session, and bridges the hole in the data.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from hal.errors import EndOfStream, ImuError
from hal.types import Button, Clock, Imu

from .button import ButtonGestures, Gesture
from .coach import Coach
from .events import Cue, Event, EventKind
from .feedback import CuePlayer

log = logging.getLogger("walkcoach.loop")

EventSink = Callable[[Event], None]
RESET_BACKOFF_START_S = 0.5
RESET_BACKOFF_MAX_S = 5.0  # a wearer walks on while the sensor is away: keep trying often
BUTTON_POLL_S = 0.03  # a press lasts 100 ms or more: polling at ~33 Hz sees it and spares the tick a GPIO read
MAX_LAG_PERIODS = 5  # further behind than this, the loop skips ahead instead of catching up


class LoopStats:
    __slots__ = ("ticks", "samples", "read_errors", "resets", "overruns", "faults")

    def __init__(self) -> None:
        self.ticks = self.samples = self.read_errors = self.resets = self.overruns = self.faults = 0


class CoachLoop:
    def __init__(
        self,
        *,
        imu: Imu,
        coach: Coach,
        player: CuePlayer,
        clock: Clock,
        rate_hz: float,
        fault_grace_s: float = 2.0,
        sinks: Iterable[EventSink] = (),
        button: Button | None = None,
        button_hold_s: float = 3.0,
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        self.imu = imu
        self.coach = coach
        self.player = player
        self.clock = clock
        self.period_s = 1.0 / rate_hz
        self.fault_grace_s = fault_grace_s
        self.sinks = list(sinks)
        self.button = button
        self._gestures = ButtonGestures(hold_s=button_hold_s)
        self.on_tick = on_tick
        self.stats = LoopStats()
        self.stop_requested = False
        self.sensor_ok = True
        self.last_fault: str = ""
        self._fault_since_s: float | None = None
        self._fault_cued = False
        self._next_reset_s = 0.0
        self._reset_backoff_s = RESET_BACKOFF_START_S
        self.now_s = clock.monotonic()

    def request_stop(self) -> None:
        """Safe from a signal handler: the loop ends after the current tick."""
        self.stop_requested = True

    def emit(self, events: Iterable[Event], now_s: float) -> None:
        for event in events:
            if event.cue is not None:
                self.player.start(event.cue, now_s)
            for sink in self.sinks:
                sink(event)

    def run(self, *, until_s: float | None = None) -> None:
        clock, imu, coach, player = self.clock, self.imu, self.coach, self.player
        period_s = self.period_s
        next_s = clock.monotonic()
        button = self.button
        next_button_s = next_s
        stats = self.stats
        try:
            while not self.stop_requested:
                clock.sleep_until(next_s)
                now_s = clock.monotonic()
                self.now_s = now_s
                if until_s is not None and now_s >= until_s:
                    break
                stats.ticks += 1
                try:
                    sample = imu.read()
                except EndOfStream:
                    break
                except ImuError as exc:
                    self._on_read_error(now_s, exc)
                else:
                    if self._fault_since_s is not None:
                        self._on_recovered(now_s)
                    stats.samples += 1
                    events = coach.update(sample)
                    if events:
                        self.emit(events, now_s)
                if button is not None and now_s >= next_button_s:
                    next_button_s = now_s + BUTTON_POLL_S
                    self._poll_button(now_s, button.is_pressed)
                player.advance(now_s)
                if self.on_tick is not None:
                    self.on_tick(now_s)
                next_s += period_s
                if clock.monotonic() - next_s > MAX_LAG_PERIODS * period_s:
                    stats.overruns += 1
                    next_s = clock.monotonic() + period_s
        finally:
            self.finish()

    def finish(self) -> None:
        """Close the bout and lean episode in progress and turn every output off."""
        self.emit(self.coach.finish(self.now_s), self.now_s)
        self.player.all_off()

    # -- faults ---------------------------------------------------------------
    def _on_read_error(self, now_s: float, exc: ImuError) -> None:
        self.stats.read_errors += 1
        if self._fault_since_s is None:
            self._fault_since_s = now_s
            self._next_reset_s = now_s + self.fault_grace_s
            log.debug("sensor read failed: %s", exc)
        self.last_fault = str(exc)
        if now_s - self._fault_since_s < self.fault_grace_s or now_s < self._next_reset_s:
            return
        self.sensor_ok = False
        if not self._fault_cued:
            log.warning("no valid samples for %.1f s: %s", now_s - self._fault_since_s, exc)
            self._fault_cued = True
            self.stats.faults += 1
            self.emit([Event(now_s, EventKind.FAULT, Cue.FAULT, f"no valid samples for {now_s - self._fault_since_s:.1f} s: {exc}")], now_s)
        self.stats.resets += 1
        try:
            self.imu.reset()
        except ImuError as reset_exc:
            self._reset_backoff_s = min(RESET_BACKOFF_MAX_S, self._reset_backoff_s * 2)
            log.warning("sensor re-initialisation failed (%s); next try in %.1f s", reset_exc, self._reset_backoff_s)
            self.last_fault = str(reset_exc)
        else:
            log.info("sensor re-initialised")
        self._next_reset_s = self.clock.monotonic() + self._reset_backoff_s

    def _on_recovered(self, now_s: float) -> None:
        if self._fault_cued:
            log.warning("sensor back after %.1f s", now_s - self._fault_since_s)
        self._fault_since_s = None
        self._fault_cued = False
        self.sensor_ok = True
        self._reset_backoff_s = RESET_BACKOFF_START_S

    # -- the button -----------------------------------------------------------
    def _poll_button(self, now_s: float, pressed: bool) -> None:
        gesture = self._gestures.update(now_s, pressed)
        if gesture is Gesture.PRESS:
            self.emit(self.coach.report_pain(now_s), now_s)
        elif gesture is Gesture.HOLD:
            self.coach.request_upright_capture()
            log.info("button held: capturing the upright reference at the next still moment")
