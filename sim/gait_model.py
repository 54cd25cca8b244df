"""Body motion at the lower back: activities rendered into kinematics.

Each activity (``Stand``, ``Walk``, ``Sit``, ``Bend``, ``Shuffle``, ``HandleBelt``)
renders itself into a ``Motion``: per-sample posture lean (the ground truth),
sway angles and heading changes that are *not* posture, and the linear
acceleration of the sensor in the *heading frame* (forward and left horizontal
along the walking direction, up vertical). ``sim.walker`` turns that into the
orientation, gravity, gyro and sensor signals. Every activity starts and ends
at rest, upright (lean, sway and velocity zero), so pieces join smoothly.

Walking follows the inverted-pendulum model of the centre of mass (Zijlstra &
Hof 2003, Gait & Posture 18:1-10): each step of length ``s`` lifts the pelvis
by ``h`` with ``s = 2 K sqrt(2 L h - h^2)``, ``L`` the leg length and ``K`` their
individual correction factor (~1.25); vertical displacement is lowest in double
support, so upward acceleration peaks at each heel strike. Forward acceleration
repeats once per step, mediolateral acceleration and pelvic roll/yaw once per
stride (Moe-Nilssen & Helbostad 2004; pelvic rotations: Perry & Burnfield, Gait Analysis).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from walkcoach.device.offline.lowpass import butterworth_power_gain, zero_phase_lowpass


def median(values: np.ndarray) -> float:
    """np.median's value (the middle one, or the mean of the middle two) without its NaN check, whose
    ``np.ma`` lookup imports numpy.ma (~13 ms, the walk's one use of it); the walker's values are never NaN."""
    return statistics.median(values.tolist()) if len(values) else float("nan")  # empty: np.median's nan


def smoothstep(u: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1 over u in [0, 1], flat outside."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def min_jerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile 0 -> 1 (Flash & Hogan 1985), flat outside [0, 1]."""
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10.0 - 15.0 * u + 6.0 * u**2)


def plateau(t_s, start_s, up_s, hold_s, down_s) -> np.ndarray:
    """0 -> 1 raised-cosine ramp over ``up_s``, held ``hold_s``, back to 0 over ``down_s``."""
    return smoothstep((t_s - start_s) / up_s) - smoothstep((t_s - start_s - up_s - hold_s) / down_s)


def lowpass(x: np.ndarray, rate_hz: float, corner_hz: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth-magnitude low-pass along axis 0 (via FFT), periodic at the array's length.

    The project's one low-pass (``device.lowpass``), with the gain of a single
    Butterworth pass, ``1/sqrt(1+(f/fc)^4)``.
    """
    return zero_phase_lowpass(x, rate_hz, corner_hz, passes=1, edges="periodic")


def colored_noise(rng, n: int, rate_hz: float, corner_hz: float, width: int = 1) -> np.ndarray:
    """(n, width) low-pass Gaussian noise, rms 1 per column in expectation.

    Scaled by the filter's expected rms (white noise through ``lowpass``'s power gain,
    averaged over the n periodic frequencies), never by the sample's own spread: over a span
    shorter than the corner's period the noise is nearly its own mean, and dividing by its
    small deviation blew it up (a 6 s walk's 0.03 Hz posture wander reached 55 deg).
    """
    if n < 2:
        return np.zeros((n, width))
    x = lowpass(rng.standard_normal((n, width)), rate_hz, corner_hz)
    x /= np.sqrt(np.mean(butterworth_power_gain(np.fft.fftfreq(n, 1.0 / rate_hz), corner_hz)))
    return x


def second_derivative(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """d2x/dt2 along axis 0 by central differences."""
    if x.shape[0] < 3:
        return np.zeros_like(x)
    dt_s = 1.0 / rate_hz
    return np.gradient(np.gradient(x, dt_s, axis=0), dt_s, axis=0)


def moves(t_s, starts_s, durations_s, targets) -> np.ndarray:
    """Chain of minimum-jerk moves from 0 through each target in turn; (n,) or (n, k)."""
    targets = np.asarray(targets, dtype=float).reshape(len(starts_s), -1)
    out = np.zeros((len(t_s), targets.shape[1]))
    previous = np.zeros(targets.shape[1])
    for start_s, duration_s, target in zip(starts_s, durations_s, targets, strict=True):
        out += np.outer(min_jerk((t_s - start_s) / duration_s), target - previous)
        previous = target
    return out if out.shape[1] > 1 else out[:, 0]


def add_pulses(signal, t_s, centers_s, amplitudes, width_s) -> None:
    """Add Ricker (Mexican-hat) pulses in place: zero-mean, peak ``amplitude`` at each centre."""
    rate_hz = 1.0 / (t_s[1] - t_s[0])
    offsets = np.arange(-round(0.15 * rate_hz), round(0.15 * rate_hz) + 1)
    index = np.rint((np.asarray(centers_s) - t_s[0]) * rate_hz).astype(int)[:, None] + offsets
    inside = (index >= 0) & (index < len(t_s))
    tau = t_s[np.clip(index, 0, len(t_s) - 1)] - np.asarray(centers_s)[:, None]
    tau /= np.asarray(width_s).reshape(-1, 1)
    pulse = np.asarray(amplitudes).reshape(-1, 1) * (1.0 - tau**2) * np.exp(-0.5 * tau**2)
    np.add.at(signal, index[inside], pulse[inside])


def add_weight_transfers(signal, t_s, centers_s, amplitudes, width_s) -> None:
    """Add smooth zero-area bumps in place: a Gaussian of ``width_s`` less one three times as wide
    and a third as high (no net velocity or displacement), peak ``amplitude`` at each centre."""
    rate_hz = 1.0 / (t_s[1] - t_s[0])
    centers_s, amplitudes, width_s = (np.asarray(v, dtype=float).reshape(-1) for v in (centers_s, amplitudes, width_s))
    if not len(centers_s) == len(amplitudes) == len(width_s):
        raise ValueError("add_weight_transfers: centers_s, amplitudes and width_s differ in length")
    # All bumps at once (one per step, ~1600 in a long walk), each over its own window: the same values as
    # bump by bump, and np.add.at sums overlapping windows in the same order (bump by bump).
    half = np.ceil(12.0 * width_s * rate_hz).astype(int)
    middle = np.rint((centers_s - t_s[0]) * rate_hz).astype(int)
    a, b = np.maximum(0, middle - half), np.minimum(len(t_s), middle + half + 1)
    lengths = np.maximum(b - a, 0)
    bump = np.repeat(np.arange(len(lengths)), lengths)
    index = a[bump] + (np.arange(len(bump)) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    tau = (t_s[index] - centers_s[bump]) / width_s[bump]
    np.add.at(signal, index, (1.5 * amplitudes)[bump] * (np.exp(-0.5 * tau**2) - np.exp(-0.5 * (tau / 3.0) ** 2) / 3.0))


def impact_speed_factor(speed_ms):
    """How heel-strike transients and the belt's wobble grow with walking speed (m/s): 0.77 (1 + v).

    Measured on the real lab bouts (mobgap-lab, tools/real_gait_stats.py): vertical acceleration above
    6 Hz has rms 0.34 m/s^2 at 0.41 m/s and 0.31 at 0.51 against 0.43-0.54 at 0.9-1.06 m/s, 0.72x from
    1.0 to 0.41 m/s, flatter than the 0.61x of the earlier 0.5 + v; equal to it at 1.2 m/s.
    """
    return 0.77 * (1.0 + speed_ms)


@dataclass(frozen=True)
class Person:
    """What a seed varies about the wearer's body and habits."""

    leg_length_m: float
    pendulum_k: float  # Zijlstra & Hof correction factor
    pelvic_tilt_deg: float  # sensor tilt on the sacrum when standing naturally
    impact_gain: float  # heel-strike transient, per impact_speed_factor(speed in m/s), m/s^2
    ap_acc_per_speed: float  # forward acceleration amplitude per m/s of walking speed
    ml_sway_m: float  # mediolateral pelvis excursion, half peak-to-peak
    vertical_harmonic: float  # 2nd-harmonic share of vertical displacement (waveform shape)
    phases_rad: tuple[float, ...]  # offsets: vertical harmonic, AP, ML harmonic, pitch, roll, yaw
    pitch_sway_deg: float  # per step
    roll_sway_deg: float  # per stride (pelvic obliquity)
    yaw_sway_deg: float  # per stride (pelvic rotation)
    stance_sway_deg: float  # rms postural sway when standing
    posture_wander_deg: float  # rms slow drift of the posture lean while walking
    weight_transfer_ms2: float = 0.0  # peak vertical acceleration of the weight transfer in double support

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Person:
        u = rng.uniform
        return cls(
            leg_length_m=u(0.85, 1.0), pendulum_k=u(1.15, 1.35), pelvic_tilt_deg=u(-3.0, 8.0),
            impact_gain=u(0.8, 1.25), ap_acc_per_speed=u(0.9, 1.4), ml_sway_m=u(0.02, 0.035),
            vertical_harmonic=u(0.0, 0.06),
            phases_rad=tuple(u(-0.5, 0.5, 6) * [2 * np.pi, 0.8, 2 * np.pi, 1, 1, 1]),
            pitch_sway_deg=u(1.0, 3.0), roll_sway_deg=u(2.0, 4.0), yaw_sway_deg=u(3.0, 6.0),
            stance_sway_deg=u(0.2, 0.6), posture_wander_deg=u(0.3, 0.8),
            weight_transfer_ms2=u(0.2, 0.4),  # drawn last: the other fields stay as they were per seed
        )


@dataclass(frozen=True)
class Context:
    """Where and for whom an activity renders: its first sample's time, the rate, the wearer."""

    t0_s: float
    rate_hz: float
    person: Person
    rng: np.random.Generator

    def samples(self, duration_s: float) -> int:
        return max(3, int(np.ceil(duration_s * self.rate_hz)))

    def rel_times(self, n: int) -> np.ndarray:
        return np.arange(n) / self.rate_hz


@dataclass
class Motion:
    """Body kinematics over consecutive samples; truth intervals in absolute seconds."""

    lean_deg: np.ndarray  # (n,) posture lean, forward positive: the ground truth
    sway_deg: np.ndarray  # (n, 3) roll, pitch, yaw on top of posture and heading (not truth)
    heading_deg: np.ndarray  # (n,) heading change since the activity started (turns)
    acc_ms2: np.ndarray  # (n, 3) linear acceleration in the heading frame: forward, left, up
    step_times_s: list[float] = field(default_factory=list)
    walk_segments: list[tuple[float, float]] = field(default_factory=list)
    lean_episodes: list[tuple[float, float]] = field(default_factory=list)
    bends: list[tuple[float, float]] = field(default_factory=list)
    stair_flights: list[tuple[float, float, float]] = field(default_factory=list)  # start, end, rise m (sim.stairs)
    belt_moves: list[tuple] = field(default_factory=list)  # start, duration, angle, axis (sim.belt)
    closing_contacts_s: list[float] = field(default_factory=list)  # each walk's closing contact (Walk): no step


def quiet_stance(ctx: Context, n: int, scale: float = 1.0) -> Motion:
    """Postural sway (0.1-1 Hz, centre-of-pressure studies; Winter 1995), zero at both ends."""
    t_s = ctx.rel_times(n)
    edges = smoothstep(t_s / 0.5) * smoothstep((t_s[-1] - t_s) / 0.5)
    sway = colored_noise(ctx.rng, n, ctx.rate_hz, 0.4, 3) * [1.0, 1.0, 0.5]
    sway *= scale * ctx.person.stance_sway_deg * edges[:, None]
    acc = 0.03 * scale * colored_noise(ctx.rng, n, ctx.rate_hz, 2.0, 3) * edges[:, None]
    return Motion(np.zeros(n), sway, np.zeros(n), acc)


def spaced_starts(rng, count: int, span_s: float, duration_s: float) -> np.ndarray:
    """``count`` event starts in [0, span_s), one per equal slot, never overlapping."""
    slot_s = span_s / count
    return np.arange(count) * slot_s + rng.uniform(0.0, max(slot_s - duration_s, 0.0), count)


@dataclass(frozen=True)
class Stand:
    """Standing still with postural sway; ``weight_shifts`` sideways shifts of 2-5 cm."""

    duration_s: float
    weight_shifts: int = 0

    def render(self, ctx: Context) -> Motion:
        n = ctx.samples(self.duration_s)
        motion = quiet_stance(ctx, n)
        if self.weight_shifts:
            rng, t_s = ctx.rng, ctx.rel_times(n)
            k = self.weight_shifts + 1  # the last move returns to the centre
            starts_s = 0.6 + spaced_starts(rng, k, max(t_s[-1] - 2.0, 0.5), 1.2)
            shift_m = rng.uniform(0.02, 0.05, k) * rng.choice([-1.0, 1.0], k)
            shift_m[-1] = 0.0
            ml_m = moves(t_s, starts_s, rng.uniform(0.5, 1.2, k), shift_m)
            motion.acc_ms2[:, 1] += second_derivative(ml_m, ctx.rate_hz)
            motion.sway_deg[:, 0] -= 60.0 * ml_m  # pelvis drops on the unloaded side
        return motion


@dataclass(frozen=True)
class Lean:
    """A sustained forward lean overlaid on a walk, times relative to the walk's start."""

    start_s: float
    angle_deg: float
    hold_s: float
    ramp_s: float = 1.5


@dataclass(frozen=True)
class Turn:
    """A turn of ``angle_deg`` (left positive) over 3-4 slowed, shortened steps."""

    at_s: float
    angle_deg: float


@dataclass(frozen=True)
class Termination:
    """How one walk stops, drawn per walk (``Walk._termination``). The ranges follow planned gait termination
    in healthy and older adults (the stopping step's heel strike
    brakes the body, the trailing limb's closing step takes about a step time without push-off and
    takes on part of the body weight, the centre of mass comes to rest over both feet within about
    half a second):
    - ``stopping_length``: the stopping step's length, a share of the walk's (shorter, as the
      last stride slows); ``stopping_impact``: its heel-strike transient, a share of a walking one;
    - ``closing_time``: the closing step's time, a share of the walk's step time before the stop;
    - ``closing_progression``: how far the pelvis moves on over it, a share of a step length;
    - ``closing_rise``: its pelvis dip, a share of a walking step's rise;
    - ``closing_impact``: the transient of the foot set down flat, a share of a heel strike's at
      the walk's last speed; ``closing_load`` the share of body weight it takes on;
    - ``settle_s``: from the closing contact to quiet standing;
    - ``closing_draws``: its heel-strike draws (spread, timing, width) as the walking steps' have them.
    """

    stopping_length: float
    stopping_impact: float
    closing_time: float
    closing_progression: float
    closing_rise: float
    closing_impact: float
    closing_load: float
    settle_s: float
    closing_draws: tuple[float, float, float]
    rng: Any  # the stop's own random stream: its noise after the last walking strike


@dataclass(frozen=True)
class Walk:
    """One continuous walk (a walk segment): steps, pendulum motion, sway, leans, turns.

    Step times alternate long/short by ``asymmetry`` (fraction) and vary by
    ``step_cv`` (half white, half a slow drift over ~20 steps, since step
    times are long-range correlated; Hausdorff 1995). The first and last two
    steps are slower and shorter (gait initiation and termination), and about
    one step in a hundred is stretched and the next shortened (a kerb, an obstacle).
    ``posture_deg`` is a constant lean while walking (ramps in and out over 2 s).

    Each walk ends as people stop (planned gait termination: Jaeger & Vanitchatchavan 1992,
    J Biomech 25:1233; Bishop et al. 2004, Gait Posture 20:134; Sparrow & Tirosh 2005,
    Gait Posture 22:362): the last stride slows and shortens, the last walking heel strike
    (the leading foot's stopping step) brakes, then the trailing foot is brought forward and
    set down beside it (the closing contact: no push-off after it; the pelvis, over both feet,
    dips less than in a walking step) and the walker stands still. The stop's ranges are drawn
    per walk (``_termination``). The closing contact is a foot contact but no step of the walk: by the
    Mobilise-D definition the last contact before a break starts no stride (mobgap's
    ``MaxBreakCriteria(remove_last_ic=True)``), so a walking bout ends at the contact before it
    and its steps are its contacts up to there (mobgap's ``n_raw_initial_contacts``; the INDIP
    reference lists no contact for it either). ``Motion.step_times_s`` holds the walking heel
    strikes, ``Motion.closing_contacts_s`` the closing ones.

    The rest describe messier walkers (issue 9; their defaults leave a walk as it was):
    ``steps`` (> 0) fixes the number of walking heel strikes, the closing contact not counted (``duration_s`` then only
    sets the tempo profile's span); ``tempo_swing`` slows and speeds the walk
    along a smooth random profile, step times spanning about ``1 +- tempo_swing / 2``
    (people speed up, slow down and turn within one short walk); ``impact_sigma``
    is the log-spread of heel-strike transients from step to step and
    ``impact_scale`` their size (soft, aided steps are < 1); ``weak_side_impact``
    scales every other step's transient and ``weak_side_rise`` its pelvis rise (an
    antalgic or hemiparetic gait: alternate steps unalike); ``second_peak`` adds a second upward transient, that share of
    the heel strike's, ``second_peak_at`` of a step after it: the end of a long
    double support (push-off of the trailing leg) in slow, shuffling gait.
    """

    duration_s: float
    cadence_spm: float
    step_length_m: float
    step_cv: float = 0.03
    asymmetry: float = 0.02
    posture_deg: float = 0.0
    leans: tuple[Lean, ...] = ()
    turns: tuple[Turn, ...] = ()
    steps: int = 0
    tempo_swing: float = 0.0
    impact_sigma: float = 0.25
    impact_scale: float = 1.0
    weak_side_impact: float = 1.0
    weak_side_rise: float = 1.0
    second_peak: float = 0.0
    second_peak_at: float = 0.35

    def _step_plan(self, rng):
        """Per-step durations, lengths, gains and turn spans; heel strike k ends step k."""
        mean_step_s = 60.0 / self.cadence_spm
        n_max = int(self.duration_s / mean_step_s * 1.6) + 12
        side = np.where(np.arange(n_max) % 2 == 0, 1.0, -1.0)
        drift = colored_noise(rng, n_max, 1.0, 0.05)[:, 0]  # over steps: ~20-step correlation
        variation = np.sqrt(0.5) * (rng.standard_normal(n_max) + drift)
        step_s = mean_step_s * (1.0 + 0.5 * self.asymmetry * side) * (1.0 + self.step_cv * variation)
        if self.tempo_swing:
            step_s *= self._tempo_profile(rng, n_max, self.duration_s / mean_step_s)
        irregular = 3 + np.flatnonzero(rng.random(n_max - 4) < 0.01)  # a kerb: long step, short step
        step_s[irregular] *= 1.25
        step_s[irregular + 1] *= 0.85
        length_m = self.step_length_m * (1.0 + 0.04 * rng.standard_normal(n_max))
        gain = np.clip(1.0 + 0.15 * rng.standard_normal((n_max, 4)), 0.6, 1.4)
        step_s[:2] *= (1.15, 1.06)
        length_m[:2] *= (0.6, 0.85)
        gain[:2] *= [[0.6], [0.85]]
        def strikes_s():  # heel strike k ends step k; the first comes half a step in
            return np.cumsum(step_s) - 0.5 * step_s[0]

        spans = []
        for turn in sorted(self.turns, key=lambda turn: turn.at_s):
            first = int(np.searchsorted(strikes_s(), turn.at_s))
            count = 2 + int(np.ceil(abs(turn.angle_deg) / 90.0))
            step_s[first + 1 : first + count + 1] *= 1.2
            length_m[first + 1 : first + count + 1] *= 0.7
            spans.append((first, count, turn))
        if self.steps:
            n = self.steps
        else:
            n = max(4, int(np.searchsorted(strikes_s(), self.duration_s - 0.5 * mean_step_s)))
        n = min(n, n_max - 1)  # and the closing step after the n heel strikes
        if spans and spans[-1][0] + spans[-1][1] >= n - 2:
            raise ValueError(f"turn at {spans[-1][2].at_s} s is too close to the end of the walk")
        step_s, length_m, side, gain = step_s[:n + 1], length_m[:n + 1], side[:n + 1], gain[:n + 1]
        term = self._termination(rng)
        step_s[n - 2 : n] *= (1.06, 1.15)  # the last stride slows and shortens
        length_m[n - 2 : n] *= (0.85, term.stopping_length)  # (the pendulum's rise follows its chord)
        gain[n - 2] *= 0.85
        # The closing step (index n): the trailing foot swings up beside the leading one; the pelvis goes
        # on over the base of support, part of a step, and dips only a little (``closing_rise``, in render).
        step_s[n] = term.closing_time * median(step_s[max(0, n - 5) : n - 2])
        length_m[n] = term.closing_progression * self.step_length_m
        gain[n] = 1.0
        return step_s, length_m, side, gain, spans, term

    def _termination(self, rng) -> Termination:
        """This walk's stop, drawn from its own stream (spawned, so every other draw of the walk, and its
        walking before the stop, stay as they were)."""
        (term_rng,) = rng.spawn(1)
        u = term_rng.uniform
        return Termination(
            stopping_length=u(0.7, 0.9),
            stopping_impact=u(1.0, 1.5),
            closing_time=u(0.9, 1.3),
            closing_progression=u(0.25, 0.5),
            closing_rise=u(0.3, 0.7),
            closing_impact=u(0.6, 1.0),
            closing_load=u(0.5, 0.8),
            settle_s=u(0.4, 0.8),
            closing_draws=(term_rng.lognormal(0.0, self.impact_sigma), u(0.005, 0.03), u(0.02, 0.03)),
            rng=term_rng,
        )

    def _tempo_profile(self, rng, n_max: int, expected_steps: float) -> np.ndarray:
        """Step-time factors over steps: a smooth path through 3-4 random tempo levels, spanning ``tempo_swing``."""
        knots = int(rng.integers(3, 5))
        levels = rng.uniform(-0.5, 0.5, knots)
        levels[int(rng.integers(0, knots))] = -0.5  # the quickest and the slowest part are both there
        levels[int(np.argmax(levels))] = 0.5
        at = np.linspace(0.0, max(expected_steps - 1.0, 1.0), knots)
        path = np.interp(np.arange(n_max), at, levels)
        return 1.0 + self.tempo_swing * path

    def render(self, ctx: Context) -> Motion:
        p, rng = ctx.person, ctx.rng
        step_s, length_m, side, gain, spans, term = self._step_plan(rng)
        strikes_s = np.cumsum(step_s) - 0.5 * step_s[0]  # first heel strike half a step in; the last is the closing contact
        end_s = strikes_s[-1] + term.settle_s
        n = ctx.samples(end_s)
        t_s = ctx.rel_times(n)
        walking = len(step_s) - 1  # heel strikes before the closing contact
        # The walk's own random draws are as many as before it had a closing step (its noise as long as it
        # was then, to half a step after the last walking strike); the stop's come from the stop's stream.
        term_rng, n_walking = term.rng, min(n, ctx.samples(strikes_s[-2] + 0.5 * step_s[-2]))

        def noise(corner_hz: float, width: int = 1) -> np.ndarray:  # colored_noise over the walk and its stop
            return np.concatenate([colored_noise(rng, n_walking, ctx.rate_hz, corner_hz, width),
                                   colored_noise(term_rng, n - n_walking, ctx.rate_hz, corner_hz, width)])

        def slow_noise(corner_hz: float) -> np.ndarray:  # slower than the stop: held through it
            return np.pad(colored_noise(rng, n_walking, ctx.rate_hz, corner_hz)[:, 0], (0, n - n_walking), mode="edge")
        knots_s = np.concatenate([[0.0], strikes_s, [end_s]])

        def per_step(values):  # interpolate per-step values, zero at the walk's ends
            return np.interp(t_s, knots_s, np.concatenate([[0.0], values, [0.0]]))

        knot_phases = np.pi * np.concatenate([[-1.0], 2.0 * np.arange(len(step_s)), [2.0 * len(step_s) - 1.0]])
        phase = np.interp(t_s, knots_s, knot_phases)  # 0 mod 2 pi at each heel strike
        omega2 = (2.0 * np.pi / step_s) ** 2
        speed_ms = length_m / step_s
        sway_scale = np.clip(speed_ms / 1.2, 0.4, 1.2) * gain[:, 3]
        first_side = rng.choice([-1.0, 1.0])  # which foot leads
        v2_phase, ap_phase, ml2_phase, pitch_phase, roll_phase, yaw_phase = p.phases_rad

        # Inverted pendulum: peak-to-peak rise h from s = 2K sqrt(2Lh - h^2); lowest at heel strike.
        half_chord_m = length_m / (2.0 * p.pendulum_k)
        rise_m = p.leg_length_m - np.sqrt(p.leg_length_m**2 - half_chord_m**2)
        if self.weak_side_rise != 1.0:
            rise_m = rise_m * np.where(side > 0, 1.0, self.weak_side_rise)
        rise_m[-1] = term.closing_rise * median(rise_m[:-1])
        up_m = -per_step(0.5 * rise_m * gain[:, 0] * (1.0 + self.asymmetry * side)) * (
            np.cos(phase) + p.vertical_harmonic * np.cos(2.0 * phase + v2_phase))
        forward_m = np.cumsum(per_step(speed_ms)) / ctx.rate_hz - per_step(
            p.ap_acc_per_speed * speed_ms * gain[:, 1] / omega2) * np.cos(phase + np.pi / 2 + ap_phase)
        left_m = first_side * per_step(p.ml_sway_m * gain[:, 2]) * (
            np.sin(phase / 2.0) + 0.05 * np.sin(phase + ml2_phase))
        acc = np.empty((n, 3))  # column by column, as second_derivative would do them
        for i, position_m in enumerate((forward_m, left_m, up_m)):
            acc[:, i] = second_derivative(position_m, ctx.rate_hz)
        del forward_m, left_m, up_m, position_m

        # Heel-strike impact: a short zero-mean transient, larger and braking harder when faster.
        foot_speed_ms = np.append(speed_ms[:-1], speed_ms[-2])  # the closing foot swings as fast as it walked
        spread, offset_s, closing_width_s = term.closing_draws
        impact = p.impact_gain * impact_speed_factor(foot_speed_ms) * np.append(
            rng.lognormal(0.0, self.impact_sigma, walking), spread)
        if self.impact_scale != 1.0 or self.weak_side_impact != 1.0:
            impact *= self.impact_scale * np.where(side > 0, 1.0, self.weak_side_impact)
        impact[-2:] *= (term.stopping_impact, term.closing_impact)
        centers_s = strikes_s + np.append(rng.uniform(0.005, 0.03, walking), offset_s)
        width_s = np.append(rng.uniform(0.02, 0.03, walking), closing_width_s)
        add_pulses(acc[:, 2], t_s, centers_s, impact, width_s)
        # Weight transfer in double support: the leading leg takes the body's weight while the trailing
        # one still pushes, a broad vertical force the pendulum (momentarily still at heel strike) leaves
        # out; most of what a slow walker's trunk feels. Double support grows from ~20 % of a step at
        # 1.2 m/s to ~45 % in very slow gait (Perry & Burnfield, Gait Analysis); the loading response's
        # rise to the first vertical force peak takes ~0.1 s, whatever the speed (width at most 0.045 s).
        double_support_s = np.clip(0.45 - 0.2 * speed_ms, 0.2, 0.45) * step_s
        transfer_ms2 = p.weight_transfer_ms2 * gain[:, 0]
        transfer_ms2[-1] = p.weight_transfer_ms2 * term.closing_load  # not its small pendulum dip
        transfer_width_s = np.minimum(0.15 * double_support_s, 0.045)
        add_weight_transfers(acc[:, 2], t_s, strikes_s + transfer_width_s, transfer_ms2, transfer_width_s)
        if self.second_peak:  # the trailing leg's push-off at the end of a long double support
            late_s = strikes_s[:-1] + self.second_peak_at * step_s[:-1] * rng.uniform(0.85, 1.15, walking)
            late_share = self.second_peak * rng.uniform(0.7, 1.3, walking)
            keep = np.append(late_s < strikes_s[-1], False)  # none after the closing contact: the walker stands
            late_s, late_share = np.append(late_s, 0.0), np.append(late_share, 0.0)
            add_pulses(acc[:, 2], t_s, late_s[keep], (late_share * impact)[keep], 2.0 * width_s[keep])
            add_weight_transfers(acc[:, 2], t_s, late_s[keep], (late_share * transfer_ms2)[keep],
                                 transfer_width_s[keep])  # its force as broad as the leading leg's
        add_pulses(acc[:, 0], t_s, centers_s + 0.01, -0.4 * impact, 1.5 * width_s)
        add_pulses(acc[:, 1], t_s, centers_s, 0.25 * impact * side * first_side, width_s)
        wobble = noise(8.0, 3)  # the belt and soft tissue
        wobble *= (0.1 * per_step(impact_speed_factor(speed_ms)))[:, None]
        acc += wobble
        del wobble

        heading_deg = np.zeros(n)
        for first, count, turn in spans:
            turn_s = strikes_s[first + count] - strikes_s[first]
            heading_deg += turn.angle_deg * smoothstep((t_s - strikes_s[first]) / turn_s)
        yaw_rate_rads = np.gradient(np.radians(heading_deg), 1.0 / ctx.rate_hz)
        yaw_rate_rads *= per_step(speed_ms)
        acc[:, 1] += yaw_rate_rads  # centripetal
        del yaw_rate_rads

        sway = np.empty((n, 3))
        sway[:, 0] = first_side * per_step(p.roll_sway_deg * sway_scale) * np.sin(phase / 2.0 + roll_phase)
        sway[:, 1] = per_step(p.pitch_sway_deg * sway_scale) * np.cos(phase + pitch_phase)
        sway[:, 2] = first_side * per_step(p.yaw_sway_deg * sway_scale) * np.sin(phase / 2.0 + yaw_phase)
        del phase
        edges = smoothstep(t_s / 2.0) * smoothstep((end_s - t_s) / 2.0)
        wander_deg = p.posture_wander_deg * slow_noise(0.03)
        lean_deg = (self.posture_deg + wander_deg) * edges
        del edges, wander_deg
        episodes = []
        for lean in self.leans:
            lean_end_s = lean.start_s + 2.0 * lean.ramp_s + lean.hold_s
            if lean_end_s > end_s - 2.0:
                raise ValueError(f"lean at {lean.start_s} s outlasts a {end_s:.0f} s walk")
            shape = plateau(t_s, lean.start_s, lean.ramp_s, lean.hold_s, lean.ramp_s)
            wander = slow_noise(0.1)
            wander += lean.angle_deg
            wander *= shape
            lean_deg += wander
            del shape, wander
            episodes.append((ctx.t0_s + lean.start_s, ctx.t0_s + lean_end_s))
        return Motion(lean_deg, sway, heading_deg, acc, list(ctx.t0_s + strikes_s[:-1]),
                      [(ctx.t0_s, ctx.t0_s + end_s)], episodes, closing_contacts_s=[ctx.t0_s + strikes_s[-1]])


def flexion_profile(u, from_deg: float, peak_deg: float, to_deg: float, peak_at: float) -> np.ndarray:
    """Trunk flexion of a sit<->stand transition: baseline, up to a peak, down to the new baseline."""
    return (from_deg + (peak_deg - from_deg) * smoothstep(u / peak_at)
            + (to_deg - peak_deg) * smoothstep((u - peak_at) / (1.0 - peak_at)))


@dataclass(frozen=True)
class Sit:
    """Stand-to-sit, ``duration_s`` seated, sit-to-stand.

    Seated, the pelvis tilts back (posterior tilt, ``tilt_deg`` < 0). Each
    transition flexes the trunk forward to ``flexion_deg`` (Schenkman 1990:
    flexion momentum phase) while the pelvis drops or rises ~0.45 m; both
    transitions are reported as bends. The seated wearer shifts a little now and then.
    ``start_seated``: the wearer is already seated when the activity begins (no
    stand-to-sit; only for a scenario's first activity, which need not start at rest).
    """

    duration_s: float
    tilt_deg: float = -12.0
    flexion_deg: float = 38.0
    transition_s: float = 1.6
    start_seated: bool = False

    def render(self, ctx: Context) -> Motion:
        rng, tr_s = ctx.rng, self.transition_s
        n = ctx.samples(2 * tr_s + self.duration_s)
        t_s = ctx.rel_times(n)
        motion = quiet_stance(ctx, n, 0.5)
        rise_s = tr_s + self.duration_s
        shifts = max(1, int(self.duration_s // 60))
        starts_s = tr_s + 1.0 + spaced_starts(rng, shifts + 1, self.duration_s - 3.0, 2.0)
        durations_s = rng.uniform(0.8, 2.0, shifts + 1)
        targets = np.column_stack([rng.uniform(-3.0, 3.0, shifts + 1),  # lean, deg
                                   rng.uniform(-0.03, 0.03, (shifts + 1, 2))])  # forward, left, m
        targets[-1] = 0.0
        shift = moves(t_s, starts_s, durations_s, targets)
        seated = (t_s >= tr_s) & (t_s < rise_s)
        sitting_down = flexion_profile(t_s / tr_s, 0.0, self.flexion_deg, self.tilt_deg, 0.4)
        standing_up = flexion_profile((t_s - rise_s) / tr_s, self.tilt_deg, self.flexion_deg, 0.0, 0.45)
        seated_deg = self.tilt_deg + shift[:, 0]
        motion.lean_deg = np.select([t_s < tr_s, seated], [sitting_down, seated_deg], standing_up)
        lowered = min_jerk(t_s / tr_s) - min_jerk((t_s - rise_s) / tr_s)
        position_m = np.column_stack([-0.12 * lowered + shift[:, 1], shift[:, 2], -0.45 * lowered])
        motion.acc_ms2 += second_derivative(position_m, ctx.rate_hz)
        motion.bends = [(ctx.t0_s, ctx.t0_s + tr_s), (ctx.t0_s + rise_s, ctx.t0_s + rise_s + tr_s)]
        if self.start_seated:  # the same sitting, seen from the end of the stand-to-sit on
            cut = int(round(tr_s * ctx.rate_hz))
            motion = Motion(motion.lean_deg[cut:], motion.sway_deg[cut:], motion.heading_deg[cut:],
                            motion.acc_ms2[cut:], bends=[(ctx.t0_s + rise_s - cut / ctx.rate_hz,
                                                          ctx.t0_s + rise_s - cut / ctx.rate_hz + tr_s)])
        return motion


@dataclass(frozen=True)
class Bend:
    """A quick bend (picking something up, or reaching when shallow), from and back to standing.

    Trunk and pelvis flex to ``depth_deg``; the hips move back and, for deep
    bends, the knees flex so the pelvis drops. 0.5 s of standing on each side.
    """

    depth_deg: float
    down_s: float = 0.8
    hold_s: float = 0.6
    up_s: float = 1.0

    def render(self, ctx: Context) -> Motion:
        rng, margin_s = ctx.rng, 0.5
        n = ctx.samples(2 * margin_s + self.down_s + self.hold_s + self.up_s)
        t_s = ctx.rel_times(n)
        motion = quiet_stance(ctx, n)
        shape = plateau(t_s, margin_s, self.down_s, self.hold_s, self.up_s)
        motion.lean_deg = self.depth_deg * shape
        motion.sway_deg += np.outer(shape, [rng.uniform(-8, 8), 0.0, rng.uniform(-10, 10)])
        drop_m = 0.03 + 0.3 * np.clip((self.depth_deg - 30.0) / 50.0, 0.0, 1.0)
        position_m = np.outer(shape, [-0.2 * self.depth_deg / 90.0, 0.0, -drop_m])
        motion.acc_ms2 += second_derivative(position_m, ctx.rate_hz)
        start_s = ctx.t0_s + margin_s
        motion.bends = [(start_s, start_s + self.down_s + self.hold_s + self.up_s)]
        return motion


@dataclass(frozen=True)
class Shuffle:
    """Turning on the spot: ``steps`` (at most 4) foot contacts at irregular times, not walking."""

    steps: int
    turn_deg: float

    def render(self, ctx: Context) -> Motion:
        if not 1 <= self.steps <= 4:
            raise ValueError(f"a shuffle has 1-4 steps (more could be a rhythmic walk), not {self.steps}")
        rng = ctx.rng
        contacts_s = 0.6 + np.cumsum(np.concatenate([[0.0], rng.uniform(0.3, 1.2, self.steps - 1)]))
        n = ctx.samples(contacts_s[-1] + 1.0)
        t_s = ctx.rel_times(n)
        motion = quiet_stance(ctx, n)
        lifts_s = contacts_s - 0.3
        turn = np.cumsum(rng.dirichlet(np.ones(self.steps))) * self.turn_deg
        motion.heading_deg = moves(t_s, lifts_s, np.full(self.steps, 0.3), turn)
        sides = rng.choice([-1.0, 1.0]) * np.where(np.arange(self.steps) % 2 == 0, 1.0, -1.0)
        ml_m = moves(t_s, np.append(lifts_s, contacts_s[-1] + 0.1), np.full(self.steps + 1, 0.3),
                     np.append(0.03 * sides, 0.0))
        up_m = -0.012 * sum(plateau(t_s, s, 0.15, 0.0, 0.15) for s in lifts_s)
        motion.acc_ms2 += second_derivative(np.column_stack([np.zeros(n), ml_m, up_m]), ctx.rate_hz)
        add_pulses(motion.acc_ms2[:, 2], t_s, contacts_s, rng.uniform(0.8, 2.5, self.steps),
                   np.full(self.steps, 0.02))
        return motion


@dataclass(frozen=True)
class HandleBelt:
    """The belt in the hands before it is worn: large irregular rotations and jolts, then worn upright.

    The sensor's orientation says nothing about posture meanwhile; the truth
    lean is the standing wearer's (0).
    """

    duration_s: float

    def render(self, ctx: Context) -> Motion:
        rng = ctx.rng
        n = ctx.samples(self.duration_s)
        t_s = ctx.rel_times(n)
        starts, durations, jolts_s, t = [], [], [], 0.3
        while t < self.duration_s - 4.0:
            for _ in range(rng.integers(1, 4)):  # a burst of 1-3 moves ...
                durations.append(rng.uniform(0.5, 1.2))
                starts.append(t)
                t += durations[-1] + rng.uniform(0.0, 0.6)
            if rng.random() < 0.3:  # ... perhaps ending in a jolt (buckle, drop) ...
                jolts_s.append(t)
            t += rng.uniform(2.2, 4.0)  # ... then held still (looking, finding the buckle)
        k = len(starts) + 1  # the last move puts the belt on: upright, back in place
        starts.append(self.duration_s - 1.7)
        durations.append(1.2)
        turns_deg = np.cumsum(rng.uniform(-90, 90, (k, 2)), axis=0)
        turns_deg[-1] = 360.0 * np.round(turns_deg[-1] / 360.0)  # worn: the nearest upright turn
        targets = np.column_stack([turns_deg[:, 0], rng.uniform(-70, 70, k), turns_deg[:, 1],
                                   rng.uniform(-0.25, 0.25, (k, 3))])
        targets[-1, [1, 3, 4, 5]] = 0.0
        pose = moves(t_s, starts, durations, targets)
        motion = quiet_stance(ctx, n)  # hand tremor while held still
        motion.sway_deg += pose[:, :3]
        motion.acc_ms2 += second_derivative(pose[:, 3:], ctx.rate_hz)
        jolts = len(jolts_s)
        add_pulses(motion.acc_ms2[:, rng.integers(0, 3)], t_s, np.array(jolts_s) + 0.2,
                   rng.uniform(3.0, 8.0, jolts) * rng.choice([-1.0, 1.0], jolts), np.full(jolts, 0.02))
        return motion


Activity = Stand | Walk | Sit | Bend | Shuffle | HandleBelt


def render_activities(activities, rate_hz: float, person: Person, seed: np.random.SeedSequence) -> Motion:
    """Render activities back to back; heading accumulates; each activity has its own random stream."""
    pieces, n_total, heading_deg = [], 0, 0.0
    for activity, child in zip(activities, seed.spawn(len(activities)), strict=True):
        ctx = Context(n_total / rate_hz, rate_hz, person, np.random.default_rng(child))
        piece = activity.render(ctx)
        piece.heading_deg = piece.heading_deg + heading_deg
        heading_deg = piece.heading_deg[-1]
        n_total += len(piece.lean_deg)
        pieces.append(piece)
    arrays = ("lean_deg", "sway_deg", "heading_deg", "acc_ms2")
    lists = ("step_times_s", "walk_segments", "lean_episodes", "bends", "stair_flights", "belt_moves", "closing_contacts_s")
    joined: list[Any] = []
    for name in arrays:  # one signal at a time, each piece's copy dropped once joined
        joined.append(np.concatenate([getattr(m, name) for m in pieces]))
        for m in pieces:
            setattr(m, name, None)
    return Motion(*joined, *([x for m in pieces for x in getattr(m, name)] for name in lists))
