"""Virtual time for the simulator: VirtualClock jumps (from hal), PacedClock keeps wall-clock pace."""

from __future__ import annotations

import time

from walkcoach.hal.clock import VirtualClock  # noqa: F401  (the simulator's clock, shared with replays)


class PacedClock:
    """Virtual time that is held to wall-clock pace (``--speed realtime``)."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s
        self._wall_origin_s = time.monotonic() - start_s

    def monotonic(self) -> float:
        return self.now_s

    def sleep_until(self, t_s: float) -> None:
        if t_s <= self.now_s:
            return
        delay_s = (t_s + self._wall_origin_s) - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        self.now_s = t_s

    def sleep(self, duration_s: float) -> None:
        self.sleep_until(self.now_s + max(0.0, duration_s))
