"""Button gestures from the pressed state sampled each tick: short press and hold.

Short press (released before ``hold_s``): "pain got worse". Held for ``hold_s``:
capture the upright reference (calibrate). Pure: the loop samples the pin.
"""

from __future__ import annotations

from enum import StrEnum

DEBOUNCE_S = 0.05


class Gesture(StrEnum):
    PRESS = "press"
    HOLD = "hold"


class ButtonGestures:
    def __init__(self, *, hold_s: float) -> None:
        self._hold_s = hold_s
        self._down_since_s: float | None = None
        self._held_reported = False

    def update(self, now_s: float, pressed: bool) -> Gesture | None:
        if pressed:
            if self._down_since_s is None:
                self._down_since_s = now_s
                self._held_reported = False
            elif not self._held_reported and now_s - self._down_since_s >= self._hold_s:
                self._held_reported = True
                return Gesture.HOLD
            return None
        if self._down_since_s is None:
            return None
        down_s = now_s - self._down_since_s
        was_held = self._held_reported
        self._down_since_s = None
        if not was_held and down_s >= DEBOUNCE_S:
            return Gesture.PRESS
        return None
