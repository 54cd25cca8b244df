"""A scenario that starts seated: the belt is on, the wearer sits, then stands up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gait_model import Context, Motion, Sit


@dataclass(frozen=True)
class SeatedStart(Sit):
    """``Sit`` without its stand-to-sit: seated from the first sample (pelvis tilted back), then the sit-to-stand."""

    def render(self, ctx: Context) -> Motion:
        skip = int(round(self.transition_s * ctx.rate_hz))
        shifted = Context(ctx.t0_s - skip / ctx.rate_hz, ctx.rate_hz, ctx.person, ctx.rng)
        motion = Sit.render(self, shifted)
        for name in ("lean_deg", "sway_deg", "heading_deg", "acc_ms2"):
            setattr(motion, name, np.ascontiguousarray(getattr(motion, name)[skip:]))
        motion.bends = motion.bends[1:]  # only the sit-to-stand is in the recording
        return motion
