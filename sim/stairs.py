"""A flight of stairs: walking whose pelvis climbs (or descends) a riser every step.

Stair ascent is slower than level walking (about 80-95 steps/min in healthy
adults) with short horizontal steps (the tread, ~0.28 m), and people lean
into it: trunk flexion rises by ~10-20° going up (Reid et al. 2007,
Protopapadaki et al. 2007), less going down. On top of the pendulum motion of
a ``Walk`` the pelvis rises by ``riser_m`` (15-19 cm in building codes) each
step, during single support (a minimum-jerk move), with no vertical velocity left at the heel strike
(the centre of mass is raised by the leading leg's pull-up; McFadyen & Winter
1988). Stair steps are walking: they are heel strikes in the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from walkcoach.sim.gait_model import Context, Motion, Walk, min_jerk, second_derivative


@dataclass(frozen=True)
class StairFlight(Walk):
    """A ``Walk`` up (``riser_m`` > 0) or down (< 0) a flight; ``posture_deg`` is the lean into it."""

    riser_m: float = 0.17

    def render(self, ctx: Context) -> Motion:
        motion = super().render(ctx)
        n = len(motion.lean_deg)
        t_s = ctx.t0_s + np.arange(n) / ctx.rate_hz
        strikes_s = np.asarray(motion.step_times_s)
        # a riser after every heel strike, up to the next contact: the last strike lands on the landing and the
        # body is raised (lowered) onto it while the trailing foot closes beside it
        contacts_s = np.append(strikes_s, motion.closing_contacts_s)
        height_m = np.zeros(n)
        for a, b in zip(contacts_s, contacts_s[1:], strict=False):
            height_m += self.riser_m * min_jerk((t_s - a) / (b - a))
        motion.acc_ms2[:, 2] += second_derivative(height_m, ctx.rate_hz)
        start_s, end_s = motion.walk_segments[0]
        motion.stair_flights = [(start_s, end_s, self.riser_m * (len(contacts_s) - 1))]
        return motion
