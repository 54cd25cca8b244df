"""Running a whole simulated session: the same loop as on the device, on the sim backend.

Shared by `walkcoach sim`, `walkcoach run --backend sim`, the tests and the benchmark.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from walkcoach import hal
from walkcoach.device.core.coach import Coach
from walkcoach.device.core.events import Event
from walkcoach.device.core.feedback import CuePlayer
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.core.summary import RunSummary
from walkcoach.device.shell.loop import FROZEN_AFTER_S, CoachLoop
from walkcoach.hal.mount import Mount


def make_coach(settings: DeviceSettings, today: dt.date) -> Coach:
    return Coach(settings.coach, rate_hz=settings.loop.rate_hz, cap_s=settings.coach.plan.cap_s(today))


def make_loop(settings: DeviceSettings, backend, coach: Coach, sinks, on_tick=None) -> CoachLoop:
    """The device loop over an opened backend (its IMU, outputs, button and clock)."""
    return CoachLoop(
        imu=backend.imu,
        coach=coach,
        player=CuePlayer(backend.outputs),
        clock=backend.clock,
        rate_hz=settings.loop.rate_hz,
        fault_grace_s=settings.imu.fault_grace_s,
        sinks=sinks,
        button=backend.button,
        button_hold_s=settings.loop.button_hold_s,
        on_tick=on_tick,
        fault_cue_repeat_s=settings.loop.fault_cue_repeat_s,
        frozen_after_s=FROZEN_AFTER_S,  # a live BNO055 (or the walker's noise) never repeats a sample for 1 s
    )


@dataclass
class SimRun:
    summary: RunSummary
    coach: Coach
    loop: CoachLoop
    backend: Any  # the sim backend (device never imports sim): .imu, .walk, .outputs, .clock
    elapsed_s: float
    i2c_stats: object = None  # steady-state bus traffic (chip path only)

    @property
    def walk(self):
        return self.backend.walk

    @property
    def speed_x(self) -> float:
        return self.walk.duration_s / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_json(self) -> dict:
        result = self.summary.to_json(self.walk.duration_s)
        result["truth"] = self.walk.truth.to_json()
        return result


def run_simulation(
    settings: DeviceSettings,
    *,
    scenario: str,
    seed: int = 0,
    mount: Mount | None = None,
    true_mount: Mount | None = None,
    speed: str = "max",
    via_chip: bool = False,
    faults=None,
    state_dir=None,
    today: dt.date | None = None,
    sinks: Iterable[Callable[[Event], None]] = (),
    on_loop: Callable[[CoachLoop], None] | None = None,
) -> SimRun:
    """Simulate ``scenario`` through the loop; ``on_loop`` sees the loop before it runs (signals, hooks)."""
    mount = mount or Mount(settings.mount.forward, settings.mount.up)
    backend = hal.open_backend(
        "sim",
        scenario=scenario,
        seed=seed,
        rate_hz=settings.loop.rate_hz,
        mount=mount,
        true_mount=true_mount,
        speed=speed,
        via_chip=via_chip,
        pins=settings.pins,
        fusion_mode=settings.imu.fusion_mode,
        faults=faults,
        state_dir=state_dir,
    )
    summary = RunSummary(hold_s=settings.coach.lean.hold_s)
    coach = make_coach(settings, today or dt.date.today())
    try:
        loop = make_loop(settings, backend, coach, [summary, *sinks])
        if on_loop is not None:
            on_loop(loop)
        bus = backend.bus
        before = bus.stats.snapshot() if bus is not None else None
        started = time.perf_counter()
        loop.run()
        elapsed_s = time.perf_counter() - started
        i2c_stats = bus.stats - before if bus is not None else None
    finally:
        backend.close()
    return SimRun(summary=summary, coach=coach, loop=loop, backend=backend, elapsed_s=elapsed_s, i2c_stats=i2c_stats)
