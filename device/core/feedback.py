"""Cue patterns as data, played by the loop in loop time.

A pattern gives, per output, a sequence of (on_s, off_s) pulses. The player is
advanced by the loop with its own clock (virtual in the simulator), so there
are no blink threads and one place owns the pins. A cue of higher priority
interrupts one of lower priority; a lower one waits for nothing (it is dropped:
a stale cue is worse than none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from walkcoach.device.core.events import Cue
from walkcoach.hal.types import Output

Pulses = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Pattern:
    priority: int
    buzzer: Pulses = ()
    led: Pulses = ()
    motor: Pulses = ()

    def pulses(self, output: str) -> Pulses:
        return getattr(self, output)

    @property
    def duration_s(self) -> float:
        return max(sum(on + off for on, off in p) for p in (self.buzzer, self.led, self.motor))


def _repeat(pulse: tuple[float, float], times: int) -> Pulses:
    return (pulse,) * times


# Distinct rhythms so a wearer can tell cues apart without looking: one short
# chirp = all is well, two = straighten up, a long buzz = warning, three long = stop.
PATTERNS: Mapping[Cue, Pattern] = {
    Cue.READY: Pattern(priority=1, buzzer=((0.08, 0.0),), led=((1.0, 0.0),)),
    Cue.UPRIGHT_AGAIN: Pattern(priority=2, led=((0.3, 0.0),), motor=((0.08, 0.0),)),
    Cue.STRAIGHTEN_UP: Pattern(
        priority=3, buzzer=_repeat((0.12, 0.12), 2), led=((1.0, 0.0),), motor=_repeat((0.25, 0.15), 2)
    ),
    # three quick chirps: "I took a new upright" (the belt moved); unlike ready's one
    Cue.BELT_MOVED: Pattern(priority=3, buzzer=_repeat((0.06, 0.08), 3), led=_repeat((0.2, 0.1), 3), motor=((0.06, 0.08),) * 3),
    Cue.PAIN_ACK: Pattern(priority=4, buzzer=((0.05, 0.1), (0.3, 0.0)), led=((0.5, 0.0),), motor=((0.05, 0.0),)),
    Cue.CAP_WARNING: Pattern(priority=5, buzzer=((0.6, 0.0),), led=_repeat((0.3, 0.3), 3), motor=((0.6, 0.0),)),
    Cue.FAULT: Pattern(priority=6, buzzer=_repeat((0.05, 0.1), 5), led=_repeat((0.1, 0.1), 10)),
    # long-short-long-short: unlike any coaching cue; once at start, the belt then coaches on
    Cue.CONFIG_ERROR: Pattern(priority=6, buzzer=((0.4, 0.15), (0.1, 0.15), (0.4, 0.15), (0.1, 0.0)), led=_repeat((0.4, 0.2), 4)),
    Cue.STOP: Pattern(priority=7, buzzer=_repeat((0.5, 0.25), 3), led=((2.25, 0.0),), motor=_repeat((0.5, 0.25), 3)),
}


def _state_at(pulses: Pulses, elapsed_s: float) -> bool:
    for on_s, off_s in pulses:
        if elapsed_s < on_s:
            return True
        elapsed_s -= on_s + off_s
        if elapsed_s < 0:
            return False
    return False


class CuePlayer:
    """Plays one cue at a time on the outputs it is given (missing outputs are skipped)."""

    def __init__(self, outputs: Mapping[str, Output], patterns: Mapping[Cue, Pattern] = PATTERNS) -> None:
        self._outputs = {name: out for name, out in outputs.items() if out is not None}
        self._patterns = patterns
        self._states = {name: False for name in self._outputs}
        self.playing: Cue | None = None
        self._started_s = 0.0
        self._ends_s = 0.0
        self._paused_s: float | None = None
        self.all_off()

    def start(self, cue: Cue, now_s: float) -> bool:
        """Begin ``cue`` unless a cue of higher priority is still playing; True if it plays."""
        pattern = self._patterns[cue]
        if self.playing is not None and now_s < self._ends_s:
            if self._patterns[self.playing].priority > pattern.priority:
                return False
        self.playing = cue
        self._started_s = now_s
        self._ends_s = now_s + pattern.duration_s
        if self._paused_s is None:  # paused: it plays from the start at resume()
            self.advance(now_s)
        return True

    def advance(self, now_s: float) -> None:
        """Set the outputs for loop time ``now_s`` (cheap when nothing is playing)."""
        if self.playing is None:
            return
        if now_s >= self._ends_s:
            self.playing = None
            self.all_off()
            return
        pattern = self._patterns[self.playing]
        elapsed_s = now_s - self._started_s
        for name, output in self._outputs.items():
            want = _state_at(pattern.pulses(name), elapsed_s)
            if want != self._states[name]:
                self._states[name] = want
                output.on() if want else output.off()

    def pause(self, now_s: float) -> None:
        """Before the loop blocks (a sensor reset): outputs off, the cue's timeline stopped.

        Without it a pulse that is on when the loop blocks stays on for the whole
        wait (the fault cue became one 0.8 s buzz); after :meth:`resume` the rest
        of the pattern plays as designed.
        """
        if self._paused_s is None:
            self._paused_s = now_s
            if self.playing is not None:
                self.all_off()

    def resume(self, now_s: float) -> None:
        if self._paused_s is None:
            return
        played_s = max(0.0, self._paused_s - self._started_s)  # 0 for a cue started while paused
        self._paused_s = None
        if self.playing is not None:
            duration_s = self._ends_s - self._started_s
            self._started_s = now_s - played_s
            self._ends_s = self._started_s + duration_s
            self.advance(now_s)

    def all_off(self) -> None:
        for name, output in self._outputs.items():
            output.off()
            self._states[name] = False
