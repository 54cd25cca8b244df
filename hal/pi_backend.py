"""The "pi" backend: a BNO055 on the Pi's I2C bus, outputs and button through gpiozero."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from walkcoach.hal.bno055 import Bno055Imu
from walkcoach.hal.clock import MonotonicClock
from walkcoach.hal.errors import BackendError, ImuError
from walkcoach.hal.gpio import close_all, open_button, open_outputs
from walkcoach.hal.i2c import SMBusI2C
from walkcoach.hal.mount import Mount
from walkcoach.hal.types import Button

log = logging.getLogger("walkcoach.pi")


@dataclass
class PiBackend:
    imu: Bno055Imu
    outputs: dict
    button: Button | None
    clock: MonotonicClock
    bus: SMBusI2C

    def close(self) -> None:
        close_all(self.outputs)
        if self.button is not None:
            self.button.close()
        try:
            self.imu.close()
        finally:
            self.bus.close()


def open_backend(*, imu_settings, pins, mount: Mount, state_dir: Path | None = None, **_ignored) -> PiBackend:
    """Open the real belt. Outputs first, so a sensor that is not there yet can still be cued."""
    clock = MonotonicClock()
    outputs = open_outputs(buzzer=pins.buzzer, led=pins.led, motor=pins.motor)
    button = None
    try:
        button = open_button(pins.button)
        try:
            bus = SMBusI2C(imu_settings.i2c_bus)
        except (OSError, ImportError) as exc:
            raise BackendError(f"cannot open /dev/i2c-{imu_settings.i2c_bus}: {exc} (is I2C enabled?)") from exc
        imu = Bno055Imu(
            i2c=bus,
            clock=clock,
            mount=mount,
            fusion_mode=imu_settings.fusion_mode,
            address=imu_settings.address,
            state_dir=state_dir,
            logger=log,
            set_up_now=False,
        )
        try:
            imu.reset()
        except ImuError as exc:  # the loop's fault handling cues it and keeps retrying
            log.warning("BNO055 not ready on bus %d yet: %s", imu_settings.i2c_bus, exc)
    except BaseException:
        close_all(outputs)
        if button is not None:  # the bus failed to open, or the driver: the button's pin is released too
            button.close()
        raise
    return PiBackend(imu=imu, outputs=outputs, button=button, clock=clock, bus=bus)
