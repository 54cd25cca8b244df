"""The wearer's upright: taken standing, refined from their own walking, re-zeroed when the belt moves.

Lean is judged against the wearer's own upright *walking* posture, which is
built from two things the coach can trust:

- **The standing upright** (``up``): the quiet stance right before gait
  starts. Nobody walks off from sitting without standing up, and a
  sit-to-stand flexes the trunk 30-45° (Schenkman 1990), so a still period
  that ends at most ``PRE_GAIT_BEFORE_S`` before the first step, with no
  trunk excursion over ``TRANSITION_DEG`` in between (nor in the first
  ``TRANSITION_AFTER_FIRST_STEP_S`` of walking: a sit-to-stand's push can
  pass for a first step) and a walking posture not well behind it, is standing. Any other still period (seated, lying, the belt
  in a hand or on a table) is at most *provisional*: it gives the ``ready``
  chirp, but lean is not coached during walking against it. A calibration
  (button hold, ``walkcoach calibrate``) takes the next still period as
  given.
- **The walking posture** (``walk_offset_deg``): the lower back sits a few
  degrees forward of quiet standing while walking, in healthy people too. A
  slow average (``WALK_POSTURE_S`` of walking) of the gravity direction while
  walking upright (not leaning, not on stairs) gives the wearer's own
  walking posture; lean is "how much more forward than that". With no
  trusted standing upright yet, the first ``WALK_POSTURE_MIN_S`` of walking
  become the upright.

The belt moves over a day. A walking posture far outside what posture
explains (sideways by more than ``belt_moved_deg`` for ``LATERAL_HOLD_S``,
or forward outside ``WALK_POSTURE_RANGE_DEG`` of standing), or a stance
before walking ``belt_moved_deg`` away from the upright while the walking
posture moved with it, re-zeroes the upright with the ``belt_moved`` cue.

The forward axis comes from the mount, and is checked against the gait:
at each step the pelvis brakes after heel strike and speeds up later in the
step, so forward acceleration leads vertical acceleration by about a quarter
step (inverted pendulum; Zijlstra & Hof 2003). The mean product of
horizontal acceleration and the rate of change of vertical acceleration
(both low-passed) points forward. Over the first ``FORWARD_WALK_S`` of
walking after each (re)zero, if it points more than ``FORWARD_CORRECT_DEG``
away from the mount's forward (a belt worn turned or upside down), the
forward axis is corrected with the ``belt_moved`` cue.
"""

from __future__ import annotations

import math

from walkcoach.device.core.events import Cue, Event, EventKind
from walkcoach.device.core.settings import UprightSettings

RAD_TO_DEG = 180.0 / math.pi
NOMINAL_UP = (0.0, 0.0, 1.0)
BODY_FORWARD = (1.0, 0.0, 0.0)
STILL_MAX_LINEAR_MS2 = 0.6  # standing still: no more body acceleration than postural sway
STILL_MAX_LINEAR_SQ = STILL_MAX_LINEAR_MS2 * STILL_MAX_LINEAR_MS2
STILL_MAX_DRIFT_DEG = 3.0  # gravity direction that wanders less than this counts as held
COS_STILL_MAX_DRIFT = math.cos(math.radians(STILL_MAX_DRIFT_DEG))  # (constants, not attributes: see UprightTracker)
PRE_GAIT_BEFORE_S = 3.0  # quiet stance -> anticipatory postural adjustment -> first step: ~0.5-1.5 s
PRE_GAIT_AFTER_S = 2.0  # the faint first steps of gait initiation may fall inside the stillness
TRANSITION_DEG = 20.0  # a trunk excursion this large between stillness and gait: a sit-to-stand came between
# ... looked for until this long after the first step counted: a sit-to-stand's first push can pass for a step
TRANSITION_AFTER_FIRST_STEP_S = 1.5
COS_TRANSITION = math.cos(math.radians(TRANSITION_DEG))
# Walking keeps the trunk within ~30 deg of upright (a stooped walker, a climb, turns); lying (on the back or a
# side) puts it near 90. A contact made this far from both the mount's up and the captured upright is no step
# (both: either one may be wrong, a belt worn turned or an upright captured lying).
LYING_FROM_UPRIGHT_DEG = 60.0
COS_LYING_FROM_UPRIGHT = math.cos(math.radians(LYING_FROM_UPRIGHT_DEG))
EXCURSION_BIN_S = 0.25
EXCURSION_S = PRE_GAIT_BEFORE_S + TRANSITION_AFTER_FIRST_STEP_S  # excursions are tracked this long after a stillness
EXCURSION_BINS = int((PRE_GAIT_BEFORE_S + TRANSITION_AFTER_FIRST_STEP_S) / EXCURSION_BIN_S) + 1
POSTURE_FILTER_S = 1.0  # the walking gravity direction, smoothed over gait sway
WALK_POSTURE_S = 20.0  # time constant of the wearer's walking posture, in walking seconds
WALK_POSTURE_MIN_S = 5.0  # walking this long gives a walking posture (and an upright, if none is trusted)
WALK_POSTURE_RANGE_DEG = (-6.0, 15.0)  # walking posture vs standing: lordosis .. a stooped walker
LATERAL_HOLD_S = 3.0  # sideways tilt while walking lasting this long is the belt, not a reach
LEARN_GATE_DEG = 8.0  # the walking posture learns only from walking within this of it (not from leans)
FORWARD_WALK_S = 8.0  # walking needed to check the forward axis against the gait (~15 steps)
FORWARD_MIN_CONFIDENCE = 0.25  # normalised correlation of forward acceleration and vertical jerk
FORWARD_CORRECT_DEG = 30.0  # gait's forward this far from the mount's: the belt is worn turned
GAIT_LOWPASS_HZ = 3.0

SOURCE_NONE = "none"
SOURCE_PROVISIONAL = "provisional"  # a still period not known to be standing
SOURCE_WALKING = "walking"
SOURCE_STANCE = "stance"
SOURCE_CALIBRATED = "calibrated"
TRUSTED = (SOURCE_WALKING, SOURCE_STANCE, SOURCE_CALIBRATED)


def _unit(v) -> tuple[float, float, float]:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if n == 0.0:
        raise ValueError("zero vector has no direction")
    return (v[0] / n, v[1] / n, v[2] / n)


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a, b) -> tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def angle_deg(a, b) -> float:
    a, b = _unit(a), _unit(b)
    return math.acos(max(-1.0, min(1.0, _dot(a, b)))) * RAD_TO_DEG


def _perpendicular(v, up) -> tuple[float, float, float] | None:
    d = _dot(v, up)
    p = (v[0] - d * up[0], v[1] - d * up[1], v[2] - d * up[2])
    return _unit(p) if _dot(p, p) > 1e-12 else None


class UprightTracker:
    """The upright (``up``, ``forward``, ``left``), the walking posture, and the belt checks.

    Per sample: ``observe`` (stillness, every sample) and ``walking_sample``
    (while steps are current). Per event: ``on_walk_started`` (a bout was
    recognised) and ``on_step``. Each may return an Event.
    """

    def __init__(self, settings: UprightSettings, rate_hz: float) -> None:
        # at most 29 attributes: CPython 3.11 (the Pi's) reads them fast on every sample only then
        self.rate_hz = rate_hz
        self.configure(settings, rate_hz)
        self.mount_known = True  # the samples are in the body frame (the mount's up is up)
        self._posture_alpha = 1.0 - math.exp(-1.0 / (POSTURE_FILTER_S * rate_hz))
        self._gait_alpha = 1.0 - math.exp(-2.0 * math.pi * GAIT_LOWPASS_HZ / rate_hz)
        self.source = SOURCE_NONE
        self._requested = False
        self.up = NOMINAL_UP
        self._forward_axis = BODY_FORWARD  # the body's forward as best known (mount, or corrected by the gait)
        self.forward = BODY_FORWARD
        self.left = (0.0, 1.0, 0.0)
        self.walk_offset_deg = 0.0
        self._forward_tried = False
        # stillness
        self._still = 0
        self._sum = [0.0, 0.0, 0.0]
        self._anchor = NOMINAL_UP
        self._last_still: tuple[float, float, float] | None = None
        self._last_still_end_s = -math.inf
        self._excursion = [1.0] * EXCURSION_BINS
        # the walking gravity direction: fast (sway smoothed) every sample, slow (posture) per step
        self.posture = [0.0, 0.0, 1.0]
        self._walk = [0.0, 0.0, 0.0]
        self._walk_s = 0.0
        self._lateral_since_s: float | None = None
        self._last_step_t_s: float | None = None
        self._reset_forward_check()

    def configure(self, settings: UprightSettings, rate_hz: float) -> None:
        """New settings (a config reload); the upright is kept."""
        self._need = max(1, round(settings.still_s * rate_hz))
        self._max_from_nominal_deg = settings.max_from_nominal_deg
        self._belt_moved_deg = settings.belt_moved_deg
        self._sin_belt_moved = math.sin(math.radians(settings.belt_moved_deg))

    # -- state ------------------------------------------------------------------------------
    @property
    def captured(self) -> bool:
        return self.source != SOURCE_NONE

    @property
    def trusted(self) -> bool:
        """An upright known to be standing (or walking): lean is coached against it."""
        return self.source in TRUSTED

    @property
    def waiting(self) -> bool:
        return not self.captured or self._requested

    def request_capture(self) -> None:
        self._requested = True
        self._still = 0

    def set(self, up, source: str = SOURCE_CALIBRATED) -> None:
        """Use ``up`` (a gravity direction in the body frame) as the standing upright."""
        self.up = _unit(up)
        self.source = source
        self._requested = False
        self._set_axes()

    def _set_axes(self) -> None:
        forward = _perpendicular(self._forward_axis, self.up) or _perpendicular(BODY_FORWARD, self.up)
        if forward is None:  # up along the body's forward axis: any horizontal direction
            forward = _perpendicular((0.0, 1.0, 0.0), self.up)
        assert forward is not None  # up cannot lie along both the body's forward axis and y
        self.forward = forward
        self.left = _cross(self.up, forward)

    def _pitch_lateral_deg(self, v) -> tuple[float, float]:
        """Forward lean and sideways tilt (deg) of a gravity direction ``v`` against the upright."""
        u = _dot(v, self.up)
        return (math.atan2(-_dot(v, self.forward), u) * RAD_TO_DEG, math.atan2(_dot(v, self.left), u) * RAD_TO_DEG)

    def lying(self, ux: float, uy: float, uz: float) -> bool:
        """The trunk (unit gravity ``u``) ``LYING_FROM_UPRIGHT_DEG`` or more from both the mount's up and the upright.
        Never with unknown sensor axes (``mount_known`` False): the upright may then be a lying stillness."""
        if not self.mount_known:
            return False
        cos_lying = COS_LYING_FROM_UPRIGHT
        up = self.up
        return uz < cos_lying and ux * up[0] + uy * up[1] + uz * up[2] < cos_lying

    # -- every sample -----------------------------------------------------------------------
    def observe(self, t_s: float, ux: float, uy: float, uz: float, linear_sq: float) -> Event | None:
        """Stillness and the trunk's excursions since; the fast posture average. ``u`` is unit gravity."""
        p = self.posture
        a = self._posture_alpha
        p[0] += a * (ux - p[0])
        p[1] += a * (uy - p[1])
        p[2] += a * (uz - p[2])
        if linear_sq > STILL_MAX_LINEAR_SQ:
            if self._still:
                self._end_still()
            if self._last_still is not None and t_s - self._last_still_end_s < EXCURSION_S:
                self._track_excursion(t_s, ux, uy, uz)  # (its own test first, without the call)
            return None
        ax, ay, az = self._anchor
        if self._still == 0 or ux * ax + uy * ay + uz * az < COS_STILL_MAX_DRIFT:
            if self._still:
                self._end_still()
            self._anchor = (ux, uy, uz)
            self._sum = [0.0, 0.0, 0.0]
            self._still = 0
        self._still += 1
        s = self._sum
        s[0] += ux
        s[1] += uy
        s[2] += uz
        if self._still < self._need:
            self._track_excursion(t_s, ux, uy, uz)
            return None
        self._last_still_end_s = t_s
        if self._still == self._need and self.waiting:
            return self._capture(t_s, _unit(s))
        return None

    def _end_still(self) -> None:
        if self._still >= self._need:
            self._last_still = _unit(self._sum)
            self._excursion = [1.0] * EXCURSION_BINS
        self._still = 0

    def _track_excursion(self, t_s: float, ux: float, uy: float, uz: float) -> None:
        """The trunk's largest excursion from the last stillness, per EXCURSION_BIN_S since it ended."""
        last = self._last_still
        if last is None or t_s - self._last_still_end_s >= EXCURSION_S:
            return None
        c = ux * last[0] + uy * last[1] + uz * last[2]
        i = int((t_s - self._last_still_end_s) * (1.0 / EXCURSION_BIN_S))
        if c < self._excursion[i]:
            self._excursion[i] = c
        return None

    def _excursion_before(self, t_s: float) -> float:
        """The smallest cosine to the last stillness between its end and ``t_s``."""
        n = int(max(0.0, t_s - self._last_still_end_s) / EXCURSION_BIN_S) + 1
        return min(self._excursion[:n])  # (past the end of the list: all of it)

    def _capture(self, t_s: float, mean) -> Event | None:
        if self._requested:
            self.set(mean, SOURCE_CALIBRATED)
            self._reset_walking(keep_offset=True)
            return Event(t_s, EventKind.UPRIGHT_CAPTURED, Cue.READY, "upright reference captured (calibration)")
        if angle_deg(mean, NOMINAL_UP) > self._max_from_nominal_deg:
            return None
        self.set(mean, SOURCE_PROVISIONAL)
        return Event(t_s, EventKind.UPRIGHT_CAPTURED, Cue.READY,
                     "upright reference captured (provisional: confirmed by the stance before walking)")

    def walking_sample(self, ux: float, uy: float, uz: float, lx: float, ly: float, lz: float, vertical_ms2: float) -> None:
        """While steps are current: the forward-axis evidence, until it is decided."""
        if self._forward_done:
            return
        hx = lx - vertical_ms2 * ux
        hy = ly - vertical_ms2 * uy
        hz = lz - vertical_ms2 * uz
        a = self._gait_alpha
        f = self._fwd
        previous_v = f[0]
        v = previous_v + a * (vertical_ms2 - previous_v)
        x = f[1] + a * (hx - f[1])
        y = f[2] + a * (hy - f[2])
        z = f[3] + a * (hz - f[3])
        jerk = v - previous_v
        f[0], f[1], f[2], f[3] = v, x, y, z
        f[4] += x * jerk
        f[5] += y * jerk
        f[6] += z * jerk
        f[7] += x * x + y * y + z * z
        f[8] += jerk * jerk
        f[9] += 1

    # -- events -----------------------------------------------------------------------------
    def on_walk_started(self, t_s: float, first_step_s: float) -> Event | None:
        """A bout was recognised: the stillness right before its first step is a standing upright."""
        stance = self._last_still
        if stance is None:
            return None
        gap_s = first_step_s - self._last_still_end_s
        if (not -PRE_GAIT_AFTER_S <= gap_s <= PRE_GAIT_BEFORE_S
                or self._excursion_before(first_step_s + TRANSITION_AFTER_FIRST_STEP_S) < COS_TRANSITION):
            return None  # no stance right before walking, or a sit-to-stand (or a bend) came between
        old_up, old_offset = self.up, self.walk_offset_deg
        self.up, saved = stance, self.up
        self._set_axes()
        walk_pitch, walk_lateral = self._pitch_lateral_deg(self.posture)
        self.up = saved
        self._set_axes()
        if walk_pitch < WALK_POSTURE_RANGE_DEG[0] or abs(walk_lateral) > self._belt_moved_deg:
            return None  # walking well behind (or beside) this stillness: it was bent over something, not standing
        self._last_still = None  # used
        if self.source not in (SOURCE_STANCE, SOURCE_CALIBRATED):
            was = self.source
            self.set(stance, SOURCE_STANCE)
            self._reset_walking(keep_offset=was == SOURCE_WALKING)
            why = "upright reference taken from the stance before walking"
            if was == SOURCE_PROVISIONAL and angle_deg(old_up, stance) > self._belt_moved_deg:
                why += f" (the still upright {angle_deg(old_up, stance):.0f}° away was not standing: seated, or the belt off)"
            return Event(t_s, EventKind.UPRIGHT_CAPTURED, Cue.READY if was == SOURCE_NONE else None, why)
        moved_deg = angle_deg(old_up, stance)
        expected_walk = self._walk_direction(old_offset)
        walk_moved_deg = angle_deg(expected_walk, self.posture)
        if moved_deg > self._belt_moved_deg and walk_moved_deg > self._belt_moved_deg:
            self.set(stance, SOURCE_STANCE)
            self._reset_walking(keep_offset=True)
            self._reset_forward_check()
            return Event(t_s, EventKind.BELT_MOVED, Cue.BELT_MOVED,
                         f"belt moved: standing is {moved_deg:.0f}° from the upright, re-zeroed")
        if moved_deg <= self._belt_moved_deg:
            w = 0.3  # a new stance refines the upright: people stand alike within a few degrees
            self.up = _unit(tuple(o + w * (n - o) for o, n in zip(old_up, stance, strict=True)))
            self._set_axes()
        return None

    def _walk_direction(self, offset_deg: float) -> tuple[float, float, float]:
        """The gravity direction of walking ``offset_deg`` forward of the upright."""
        th = math.radians(offset_deg)
        c, s = math.cos(th), math.sin(th)
        u, f = self.up, self.forward
        return (c * u[0] - s * f[0], c * u[1] - s * f[1], c * u[2] - s * f[2])

    def _reset_walking(self, keep_offset: bool) -> None:
        self._walk = [0.0, 0.0, 0.0]
        self._walk_s = 0.0
        self._lateral_since_s = None
        if not keep_offset:
            self.walk_offset_deg = 0.0

    def _reset_forward_check(self) -> None:
        self._fwd = [0.0] * 9 + [0]
        self._forward_done = False

    def forward_checked(self) -> bool:
        """The forward axis was confirmed (or corrected) by the gait."""
        return self._forward_done

    @property
    def coachable(self) -> bool:
        """Lean can be coached: a trusted upright, and the forward axis checked against the gait at
        least once (a belt worn turned round would read a backward lean as forward); if the gait
        could not tell, the mount's forward stands."""
        return self.source in TRUSTED and self._forward_tried

    def on_step(self, t_s: float, lean_rel_deg: float, learn: bool) -> Event | None:
        """A step while walking: learn the walking posture (``learn``: upright walking, not stairs),
        and check the belt."""
        previous = self._last_step_t_s
        self._last_step_t_s = t_s
        dt_s = 0.0 if previous is None else min(t_s - previous, 2.0)
        event = None
        if not self._forward_done and self._fwd[9] >= FORWARD_WALK_S * self.rate_hz:
            event = self._decide_forward(t_s)
        if not self.trusted:
            return event or self._learn_first_upright(t_s, dt_s)
        if learn and dt_s > 0 and abs(lean_rel_deg) < LEARN_GATE_DEG:
            self._walk_s += dt_s
            w = self._walk
            k = dt_s / min(self._walk_s, WALK_POSTURE_S)  # a running mean until the average is established
            p = self.posture
            w[0] += k * (p[0] - w[0])
            w[1] += k * (p[1] - w[1])
            w[2] += k * (p[2] - w[2])
            if self._walk_s >= WALK_POSTURE_MIN_S:
                pitch, _ = self._pitch_lateral_deg(w)
                self.walk_offset_deg = pitch
        return event or self._check_belt(t_s)

    def _learn_first_upright(self, t_s: float, dt_s: float) -> Event | None:
        w = self._walk
        p = self.posture
        w[0] += dt_s * p[0]
        w[1] += dt_s * p[1]
        w[2] += dt_s * p[2]
        self._walk_s += dt_s
        if self._walk_s < WALK_POSTURE_MIN_S:
            return None
        was, old_up = self.source, self.up
        self.set(w, SOURCE_WALKING)
        self._reset_walking(keep_offset=False)
        if was == SOURCE_NONE:
            return Event(t_s, EventKind.UPRIGHT_CAPTURED, Cue.READY, "upright reference taken from walking")
        why = "upright reference taken from walking"
        if angle_deg(old_up, self.up) > self._belt_moved_deg:
            why += f" (the still upright {angle_deg(old_up, self.up):.0f}° away was not standing: seated, or the belt off)"
        return Event(t_s, EventKind.UPRIGHT_CAPTURED, why=why)

    def _check_belt(self, t_s: float) -> Event | None:
        if not self._forward_done:
            return None  # sideways and forward are only known once the forward axis is checked
        _, lateral = self._pitch_lateral_deg(self.posture)
        if abs(lateral) > self._belt_moved_deg:
            if self._lateral_since_s is None:
                self._lateral_since_s = t_s
            elif t_s - self._lateral_since_s >= LATERAL_HOLD_S:
                why = f"belt moved: walking {abs(lateral):.0f}° sideways for {LATERAL_HOLD_S:.0f} s, re-zeroed"
                return self._rezero_from_walking(t_s, why)
        else:
            self._lateral_since_s = None
        if self._walk_s >= WALK_POSTURE_MIN_S and self.source != SOURCE_WALKING:  # against standing only
            low, high = WALK_POSTURE_RANGE_DEG
            pitch, lateral = self._pitch_lateral_deg(self._walk)
            if not low <= pitch <= high or abs(lateral) > self._belt_moved_deg:
                return self._rezero_from_walking(
                    t_s, f"belt moved: the walking posture drifted to {pitch:.0f}° forward, {abs(lateral):.0f}° sideways, re-zeroed")
        return None

    def _rezero_from_walking(self, t_s: float, why: str) -> Event:
        self.set(tuple(self.posture), SOURCE_WALKING)
        self._reset_walking(keep_offset=False)
        self._reset_forward_check()
        return Event(t_s, EventKind.BELT_MOVED, Cue.BELT_MOVED, why)

    def _decide_forward(self, t_s: float) -> Event | None:
        f = self._fwd
        self._forward_done = True
        self._forward_tried = True
        d = _perpendicular((f[4], f[5], f[6]), self.up)
        strength = math.sqrt(f[4] * f[4] + f[5] * f[5] + f[6] * f[6])
        confidence = strength / math.sqrt(max(f[7] * f[8], 1e-30))
        if d is None or confidence < FORWARD_MIN_CONFIDENCE:
            self._reset_forward_check()  # not enough evidence yet: keep gathering
            return None
        off_deg = angle_deg(d, self.forward)
        if off_deg <= FORWARD_CORRECT_DEG:
            return None
        self._forward_axis = d
        self._set_axes()
        self._reset_walking(keep_offset=False)
        return Event(t_s, EventKind.BELT_MOVED, Cue.BELT_MOVED,
                     f"forward axis taken from walking: the belt is worn turned {off_deg:.0f}° from its mount")
