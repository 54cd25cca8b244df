"""How the sensor sits on the belt, and the remap from sensor frame to body frame.

The mount is named by which sensor axis points forward and which points up
when the wearer stands upright, each one of ``+x -x +y -y +z -z``. That covers
all 24 right-angle mountings (the BNO055's own P0..P7 remaps cover only the 8
flat ones). Small residual tilts (a belt that sits a few degrees off, the
wearer's own pelvic tilt) are absorbed by the calibrated upright reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from walkcoach.hal.errors import ConfigError
from walkcoach.hal.types import Vector3

AXES = ("+x", "-x", "+y", "-y", "+z", "-z")


def _axis_vector(name: str) -> tuple[int, int, int]:
    if name not in AXES:
        raise ConfigError(f"mount axis {name!r} is not one of {', '.join(AXES)}")
    sign = 1 if name[0] == "+" else -1
    index = "xyz".index(name[1])
    vec = [0, 0, 0]
    vec[index] = sign
    return (vec[0], vec[1], vec[2])


@dataclass(frozen=True, slots=True)
class Mount:
    forward: str = "+x"  # sensor axis pointing forward when upright
    up: str = "+z"  # sensor axis pointing up when upright

    def __post_init__(self) -> None:
        f = _axis_vector(self.forward)
        u = _axis_vector(self.up)
        if any(a != 0 and b != 0 for a, b in zip(f, u, strict=True)):
            raise ConfigError(
                f"mount forward={self.forward} and up={self.up} must be different axes"
            )

    def body_axes(self) -> tuple[tuple[int, int, int], ...]:
        """Rows forward, left, up: each body axis in sensor coordinates (body = M @ sensor)."""
        f = _axis_vector(self.forward)
        u = _axis_vector(self.up)
        left = (u[1] * f[2] - u[2] * f[1], u[2] * f[0] - u[0] * f[2], u[0] * f[1] - u[1] * f[0])
        return (f, left, u)

    def sensor_to_body(self):
        """The same as a 3x3 numpy array (for whole recordings; numpy is imported only here)."""
        import numpy as np

        return np.array(self.body_axes(), dtype=float)

    def remapper(self):
        """A fast per-sample function sensor-frame tuple -> body-frame tuple (no numpy on the tick)."""
        # Each body axis is exactly one signed sensor axis: pick and sign, no multiply-adds.
        picks = []
        for row in self.body_axes():
            index = next(i for i, v in enumerate(row) if v)
            picks.append((index, float(row[index])))
        (i0, s0), (i1, s1), (i2, s2) = picks

        def remap(v: Vector3) -> Vector3:
            return (s0 * v[i0], s1 * v[i1], s2 * v[i2])

        return remap

    def remap_array(self, sensor_xyz):
        """(N, 3) sensor-frame vectors -> (N, 3) body-frame vectors."""
        return sensor_xyz @ self.sensor_to_body().T
