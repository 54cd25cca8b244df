"""The small protocols the coach and the loop see; backends satisfy them.

Body frame (what every ``ImuSample`` is in, after the mount remap):
x points forward (anterior), y to the wearer's left, z up along the trunk.
``gravity_ms2`` follows the BNO055 convention: the accelerometer's reading at
rest, so it points *up* (+9.8 on z when the wearer stands upright with an
ideal mount). ``linear_acc_ms2`` is the accelerometer reading minus gravity.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

Vector3 = tuple[float, float, float]

G_MS2 = 9.80665  # standard gravity, m/s²: the BNO055's 1 g (1000 mg), the one value of g everywhere


class ImuSample(NamedTuple):
    """One IMU reading at one tick, in the body frame after mount remap.

    A NamedTuple rather than a frozen dataclass: it is built 100 times a second
    on a Pi Zero, and a frozen dataclass's ``__init__`` costs several times more.
    """

    t_s: float  # monotonic, stamped by the backend
    gravity_ms2: Vector3
    linear_acc_ms2: Vector3
    gyro_rads: Vector3
    calibration: int  # 0..3: readiness of the sensors the fusion mode uses


class Imu(Protocol):
    def read(self) -> ImuSample:
        """The current sample; raises ImuError (or EndOfStream for finite sources)."""
        ...

    def reset(self) -> None:
        """Re-initialise the sensor after a fault (restoring calibration); raises ImuError."""
        ...

    def close(self) -> None: ...


class Output(Protocol):
    """An on/off output (buzzer, LED, vibration motor): gpiozero's vocabulary."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    @property
    def is_active(self) -> bool: ...

    def close(self) -> None: ...


class Button(Protocol):
    @property
    def is_pressed(self) -> bool: ...

    def close(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep_until(self, t_s: float) -> None: ...


class VirtualTimeClock(Clock, Protocol):
    """A clock whose time is an attribute it keeps (the simulator's and replay's virtual clocks): a
    sample source on the loop's thread reads ``now_s`` instead of calling ``monotonic()``."""

    now_s: float
