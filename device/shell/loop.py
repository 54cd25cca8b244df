"""The fixed-rate loop: the imperative shell around the pure coach.

It owns timing (an injected clock), sensor faults, cues on the outputs, the
button, and hands every event to its sinks (summary, store, status). It never
crashes on a sensor fault; the coach keeps its upright reference and session,
and bridges the holes in the data.

Sensor faults are judged by *lost time*: time without a timely valid sample
(read errors, implausible data, frozen data, reads that stall). Once
``fault_grace_s`` of it falls within the last ``FAULT_WINDOW_GRACES`` x
``fault_grace_s``, or one read blocks for ``SLOW_READ_S`` or more, the sensor
is in fault: the fault cue plays, the sensor is re-initialised (again, with
backoff, while it delivers nothing), and the cue repeats every
``fault_cue_repeat_s`` while the outage lasts. A lone NACK loses one tick
(10 ms) and never adds up to that; an unplugged cable does at
``fault_grace_s``; a read stretched for 1 s is a fault when it returns. The
fault ends when the window holds less than a quarter of the grace.

Frozen data (``frozen_after_s``): a worn BNO055's linear acceleration is never
bit-identical from one sample to the next for long: even on a still table
its noise (~150 ug/sqrt(Hz), ~1.5 LSB of 0.01 m/s² rms per axis at the
fusion output) makes two consecutive samples agree on all three axes in about
1 % of pairs, so 1 s of identical samples (100 pairs) does not happen by
chance. Identical gravity *and* linear acceleration for that long is a hung
sensor; its samples from the start of the run count as lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from walkcoach.device.core.button import ButtonGestures, Gesture
from walkcoach.device.core.coach import Coach
from walkcoach.device.core.events import Cue, Event, EventKind
from walkcoach.device.core.feedback import CuePlayer
from walkcoach.hal.errors import EndOfStream, ImuError, SensorPaused
from walkcoach.hal.types import Button, Clock, Imu, ImuSample

log = logging.getLogger("walkcoach.loop")

EventSink = Callable[[Event], None]
RESET_BACKOFF_START_S = 0.5
RESET_BACKOFF_MAX_S = 5.0  # a wearer walks on while the sensor is away: keep trying often
FAULT_WINDOW_GRACES = 3.0  # lost time is judged over the last 3 x fault_grace_s
RECOVERED_FRACTION = 0.25  # the fault ends when the window holds less than this x fault_grace_s
FROZEN_AFTER_S = 1.0  # identical samples this long: a hung sensor (see the module docstring)
# A healthy burst read takes 0.4-16 ms (400-10 kHz bus) and the BNO055 stretches the clock
# for microseconds; a read that blocks this long means a hung chip or bus, and the next
# read will likely hang too: a fault at once, not after fault_grace_s of lost time.
SLOW_READ_S = 0.5
BUTTON_POLL_S = 0.03  # a press lasts 100 ms or more: polling at ~33 Hz sees it and spares the tick a GPIO read
MAX_LAG_PERIODS = 5  # further behind than this, the loop skips ahead instead of catching up


class LoopStats:
    __slots__ = (
        "ticks", "samples", "read_errors", "resets", "reset_failures", "overruns", "faults", "outages",
        "frozen_detections", "slow_reads", "lost_s", "paused_ticks",
    )

    def __init__(self) -> None:
        self.ticks = self.samples = self.read_errors = self.resets = self.reset_failures = self.overruns = 0
        self.faults = 0  # fault cues played (one per outage, plus repeats)
        self.outages = 0
        self.frozen_detections = 0  # runs of identical samples taken as a hung sensor
        self.slow_reads = 0  # reads (failed or not) that blocked for SLOW_READ_S or more
        self.lost_s = 0.0  # time without a timely valid sample (closed gaps)
        self.paused_ticks = 0  # ticks the sensor had no sample on purpose (SensorPaused): no read error

    def fault_figures(self, rate_hz: float) -> dict:
        """What ``walkcoach run --faults --json`` reports about the loop's fault handling."""
        return {
            "outages": self.outages,
            "fault_cues": self.faults,
            "reinits": self.resets,
            "reinit_failures": self.reset_failures,
            "read_errors": self.read_errors,
            "paused_ticks": self.paused_ticks,
            "frozen_detections": self.frozen_detections,
            "slow_reads": self.slow_reads,
            "overruns": self.overruns,
            "lost_s": round(self.lost_s, 2),
            "samples_lost": round(self.lost_s * rate_hz),
        }


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
        fault_cue_repeat_s: float = 60.0,
        frozen_after_s: float | None = None,
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
        self.fault_cue_repeat_s = fault_cue_repeat_s
        self.frozen_after_s = frozen_after_s  # None: no frozen check (recordings may repeat samples)
        self.stop_requested = False
        self.sensor_ok = True
        self.last_fault: str = ""
        self.now_s = clock.monotonic()
        self._last_good_s = self.now_s  # time of the last timely valid sample
        self._gaps: list[tuple[float, float]] = []  # closed gaps (start_s, end_s) within the fault window
        self._outage_since_s = 0.0
        self._next_fault_cue_s = 0.0
        self._next_reset_s = 0.0
        self._reset_backoff_s = RESET_BACKOFF_START_S
        self._last_reset_error = ""
        self._previous: ImuSample | None = None  # the last sample read, for the frozen check
        self._same_since_s: float | None = None

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
        self._last_good_s = next_s  # a sensor absent from the start is lost time from here
        button = self.button
        next_button_s = next_s
        stats = self.stats
        frozen_after_s = self.frozen_after_s
        try:
            while not self.stop_requested:
                clock.sleep_until(next_s)
                now_s = clock.monotonic()
                self.now_s = now_s
                if until_s is not None and now_s >= until_s:
                    break
                stats.ticks += 1
                error: ImuError | None
                try:
                    sample = imu.read()
                except EndOfStream:
                    break
                except SensorPaused as exc:  # no sample on purpose (a few ticks): no read error, unless it lasts
                    stats.paused_ticks += 1
                    sample, error = None, (exc if now_s - self._last_good_s > self.fault_grace_s else None)
                except ImuError as exc:
                    sample, error = None, exc
                read_s = clock.monotonic() - now_s
                if sample is None:
                    if error is not None:
                        self._on_lost(now_s, error)
                else:
                    frozen = False
                    if frozen_after_s is not None:  # the frozen check's every-tick part, without a call
                        previous = self._previous
                        self._previous = sample
                        if previous is None or sample[2] != previous[2] or sample[1] != previous[1]:
                            self._same_since_s = None
                        else:
                            frozen = self._frozen_for_long(previous, now_s, frozen_after_s)
                    if frozen:
                        self._on_lost(now_s, ImuError(f"frozen: the same sample for {now_s - (self._same_since_s or now_s):.1f} s"))
                    else:
                        gap_s = now_s - self._last_good_s
                        self._last_good_s = now_s
                        if gap_s > 1.5 * period_s or not self.sensor_ok:
                            self._on_gap_closed(now_s, gap_s)
                        stats.samples += 1
                        events = coach.update(sample)
                        if events:
                            self.emit(events, now_s)
                if read_s >= SLOW_READ_S:
                    self._on_slow_read(now_s, read_s)
                if button is not None and now_s >= next_button_s:
                    next_button_s = now_s + BUTTON_POLL_S
                    self._poll_button(now_s, button.is_pressed)
                if player.playing is not None:  # advance() does nothing else: spare the idle tick its call
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
    def _frozen_for_long(self, previous: ImuSample, now_s: float, frozen_after_s: float) -> bool:
        """The sample read at ``now_s`` repeats ``previous``: True once the run of repeats is ``frozen_after_s`` long."""
        if self._same_since_s is None:
            self._same_since_s = previous[0]
        if now_s - self._same_since_s < frozen_after_s:
            return False
        if self._last_good_s > self._same_since_s:  # newly detected: the frozen run was never good data
            self.stats.frozen_detections += 1
            log.warning("sensor frozen: the same sample for %.1f s", now_s - self._same_since_s)
            self._last_good_s = self._same_since_s
        return True

    def lost_in_window_s(self, now_s: float) -> float:
        """Time without a timely valid sample within the fault window ending at ``now_s``."""
        window_start_s = now_s - FAULT_WINDOW_GRACES * self.fault_grace_s
        gaps = self._gaps
        while gaps and gaps[0][1] <= window_start_s:
            gaps.pop(0)
        lost_s = sum(end_s - max(start_s, window_start_s) for start_s, end_s in gaps)
        open_start_s = self._last_good_s + self.period_s
        if now_s > open_start_s:
            lost_s += now_s - max(open_start_s, window_start_s)
        return lost_s

    def _on_gap_closed(self, now_s: float, gap_s: float) -> None:
        """A timely valid sample after ``gap_s``: account the hole, maybe end the fault."""
        if gap_s > 1.5 * self.period_s:
            lost_s = gap_s - self.period_s
            self.stats.lost_s += lost_s
            self._gaps.append((now_s - lost_s, now_s))
        lost_s = self.lost_in_window_s(now_s)
        if self.sensor_ok:
            if lost_s >= self.fault_grace_s:  # e.g. reads stalling 1 s at a time, valid in between
                self._enter_fault(now_s, self.last_fault or "reads keep stalling")
        elif lost_s < RECOVERED_FRACTION * self.fault_grace_s:
            self._on_recovered(now_s)

    def _on_lost(self, now_s: float, exc: ImuError) -> None:
        """No valid sample this tick."""
        stats = self.stats
        stats.read_errors += 1
        if self.sensor_ok and now_s - self._last_good_s <= 1.5 * self.period_s:
            log.debug("sensor read failed: %s", exc)
        self.last_fault = self._last_reset_error or str(exc)  # "not set up" says less than why the set-up failed
        if self.sensor_ok:
            if self.lost_in_window_s(now_s) < self.fault_grace_s:
                return
            self._enter_fault(now_s, str(exc))
            return
        if self.fault_cue_repeat_s > 0 and now_s >= self._next_fault_cue_s:
            self._cue_fault(now_s, f"sensor still failing after {now_s - self._outage_since_s:.0f} s: {self.last_fault}")
        if now_s >= self._next_reset_s and now_s - self._last_good_s >= self.fault_grace_s:
            self._reinit(now_s)

    def _on_slow_read(self, now_s: float, read_s: float) -> None:
        self.stats.slow_reads += 1
        why = f"a read took {read_s:.1f} s (clock stretching? a hung bus?)"
        log.warning("sensor %s", why)
        if self.sensor_ok:
            self._enter_fault(now_s, why)

    def _enter_fault(self, now_s: float, why: str) -> None:
        lost_s = self.lost_in_window_s(now_s)
        log.warning("sensor fault: %.1f s without valid samples in the last %.0f s: %s",
                    lost_s, FAULT_WINDOW_GRACES * self.fault_grace_s, why)
        self.sensor_ok = False
        self.stats.outages += 1
        self._outage_since_s = now_s
        self._reset_backoff_s = RESET_BACKOFF_START_S
        self.player.pause(now_s)  # the cue plays after the re-initialisation's wait, whole
        self._cue_fault(now_s, f"{lost_s:.1f} s without valid samples: {why}")
        self._reinit(now_s)

    def _cue_fault(self, now_s: float, why: str) -> None:
        self.stats.faults += 1
        self._next_fault_cue_s = now_s + self.fault_cue_repeat_s
        self.emit([Event(now_s, EventKind.FAULT, Cue.FAULT, why)], now_s)

    def _reinit(self, now_s: float) -> None:
        """Re-initialise the sensor. It blocks (the chip's reset wait): the cue pauses, not stretches."""
        self.stats.resets += 1
        self.player.pause(now_s)
        try:
            self.imu.reset()
        except ImuError as reset_exc:
            self.stats.reset_failures += 1
            same = str(reset_exc) == self._last_reset_error  # a long outage: the journal gets it once, not every 5 s
            self._last_reset_error = self.last_fault = str(reset_exc)
            (log.debug if same else log.warning)(
                "sensor re-initialisation failed (%s); next try in %.1f s", reset_exc, self._reset_backoff_s)
        else:
            self._last_reset_error = ""
            log.info("sensor re-initialised")
        finally:
            after_s = self.clock.monotonic()
            self.player.resume(after_s)
        self._next_reset_s = after_s + self._reset_backoff_s
        self._reset_backoff_s = min(RESET_BACKOFF_MAX_S, self._reset_backoff_s * 2)

    def _on_recovered(self, now_s: float) -> None:
        log.warning("sensor back after %.1f s", now_s - self._outage_since_s)
        self.sensor_ok = True
        self.last_fault = self._last_reset_error = ""
        self._reset_backoff_s = RESET_BACKOFF_START_S

    # -- the button -----------------------------------------------------------
    def _poll_button(self, now_s: float, pressed: bool) -> None:
        gesture = self._gestures.update(now_s, pressed)
        if gesture is Gesture.PRESS:
            self.emit(self.coach.report_pain(now_s), now_s)
        elif gesture is Gesture.HOLD:
            self.coach.request_upright_capture()
            log.info("button held: capturing the upright reference at the next still moment")
