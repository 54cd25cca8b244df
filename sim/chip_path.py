"""The simulated belt through the real driver: walker -> emulated BNO055 -> emulated I2C bus
-> Adafruit driver + our Bno055Imu, with optional fault injection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hal.bno055 import Bno055Imu
from hal.mount import Mount

from .bno055_chip import EmulatedBno055, WalkSignal, patch_driver_sleep
from .i2c_bus import EmulatedI2CBus
from .walker import SimulatedWalk


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject on the emulated bus, by virtual time."""

    nack_probability: float = 0.0
    chip_resets_at_s: tuple[float, ...] = ()
    unplugs: tuple[tuple[float, float], ...] = ()  # (at_s, duration_s)
    seed: int = 0


@dataclass
class ChipImu:
    """Bno055Imu over the emulated chip; closing it also restores the driver's real sleep."""

    imu: Bno055Imu
    bus: EmulatedI2CBus
    chip: EmulatedBno055
    _sleep_patch: object = field(repr=False, default=None)

    def read(self):
        return self.imu.read()

    def reset(self) -> None:
        self.imu.reset()

    def close(self) -> None:
        self.imu.close()
        if self._sleep_patch is not None:
            self._sleep_patch.restore()
            self._sleep_patch = None


def open_chip_imu(
    walk: SimulatedWalk,
    clock,
    *,
    mount: Mount,
    state_dir: Path | None = None,
    fusion_mode: str = "IMUPLUS",
    faults: FaultPlan | None = None,
):
    """Returns (imu, bus). The driver's own sleeps advance ``clock`` while the sim runs."""
    faults = faults or FaultPlan()
    bus = EmulatedI2CBus(clock=clock, seed=faults.seed)
    chip = EmulatedBno055(clock=clock, source=WalkSignal(walk))
    bus.attach(chip)
    sleep_patch = patch_driver_sleep(clock)
    try:
        imu = Bno055Imu(i2c=bus, clock=clock, mount=mount, fusion_mode=fusion_mode, state_dir=state_dir)
    except BaseException:
        sleep_patch.restore()
        raise
    if faults.nack_probability:
        bus.set_nack_probability(faults.nack_probability)
    for at_s in faults.chip_resets_at_s:
        bus.schedule_reset(at_s=at_s)
    for at_s, duration_s in faults.unplugs:
        bus.schedule_unplug(at_s=at_s, duration_s=duration_s)
    return ChipImu(imu=imu, bus=bus, chip=chip, _sleep_patch=sleep_patch), bus
