"""Clocks the loop runs against: the real one, and virtual time for the simulator and replays."""

from __future__ import annotations

import time


class MonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep_until(self, t_s: float) -> None:
        delay_s = t_s - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)


class VirtualClock:
    """Time that jumps instead of passing: the simulator and replays run as fast as the CPU allows."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s

    def monotonic(self) -> float:
        return self.now_s

    def sleep_until(self, t_s: float) -> None:
        if t_s > self.now_s:
            self.now_s = t_s

    def sleep(self, duration_s: float) -> None:
        self.now_s += max(0.0, duration_s)
