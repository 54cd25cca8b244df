"""The belt moving on the wearer: a slow turn over minutes, or a sudden slip.

A ``BeltMove`` rotates the belt (and the sensor on it) against the body about
an axis given in the body frame (x forward, y left, z up), with a raised-cosine
profile over ``duration_s``: over a day a belt rolls, turns and slips down one
side. It is not posture: the truth ``lean_deg`` does not change, and the
truth lists the moves. The gyro is left as the body's (the coach does not use
it; a slip's rotation rate is brief).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from walkcoach.sim.gait_model import Context, Motion, Walk, smoothstep


@dataclass(frozen=True)
class BeltMove:
    """A belt rotation, ``start_s`` relative to the start of the activity it belongs to."""

    start_s: float
    duration_s: float
    angle_deg: float
    axis: tuple[float, float, float] = (0.0, 1.0, 0.0)  # about the left axis: the belt rolls forward


@dataclass(frozen=True)
class BeltMovingWalk(Walk):
    """A ``Walk`` during which the belt moves (``belt_moves``)."""

    belt_moves: tuple[BeltMove, ...] = ()

    def render(self, ctx: Context) -> Motion:
        motion = super().render(ctx)
        motion.belt_moves = [(ctx.t0_s + m.start_s, m.duration_s, m.angle_deg, tuple(m.axis)) for m in self.belt_moves]
        return motion


def apply_belt_moves(belt: list, t_s: np.ndarray, moves, belt_to_body: np.ndarray) -> None:
    """Rotate the belt-frame gravity and linear acceleration (``belt[0]``, ``belt[1]``) in place."""
    for start_s, duration_s, angle_deg, axis in moves:
        axis_belt = np.asarray(axis, dtype=float) @ belt_to_body
        axis_belt /= np.linalg.norm(axis_belt)
        # the sensor turns by +angle with the belt, so what it measures turns by -angle
        angle = -np.radians(angle_deg) * smoothstep((t_s - start_s) / duration_s)
        cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
        for i in (0, 1):
            v = belt[i]
            along = (v @ axis_belt)[:, None] * axis_belt
            belt[i] = v * cos + np.cross(axis_belt, v) * sin + along * (1.0 - cos)
