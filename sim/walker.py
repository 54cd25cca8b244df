"""The synthetic walker: a scenario rendered into what a lumbar BNO055 reports, plus ground truth.

Pipeline: scenario script -> body motion (``sim.gait_model``) -> orientation
(heading, posture lean + sway, roll) -> body-frame gravity, linear acceleration
and angular rate -> the belt (wearer's pelvic tilt, a few degrees of
misalignment) -> a BNO055-like fusion output with noise, bias and leakage
-> the sensor's own axes through the mount.

Orientation is Z-Y-X Euler: heading (yaw about world up), then pitch about
the body's left axis (forward lean positive), then roll about the forward
axis. With ``R = Rz Ry Rx`` (body -> world), gravity in the body frame is
``g R^T e_z`` (pointing up, the BNO055 convention), linear acceleration is
``R^T a_world`` and the body rates follow from the Euler-angle rates.

Seeds: one ``SeedSequence(seed)`` is split into independent streams for the
script, the person, the motion and the sensor, so a mount change never
changes the motion or the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from walkcoach.hal.mount import Mount
from walkcoach.hal.types import G_MS2
from walkcoach.sim.belt import apply_belt_moves
from walkcoach.sim.gait_model import Person, lowpass, render_activities
from walkcoach.sim.scenarios import SCENARIOS


@dataclass(frozen=True)
class LeanEpisode:
    start_s: float  # true lean starts rising (ramp start)
    end_s: float  # true lean back to baseline (ramp-down end)
    max_deg: float  # peak forward lean of the truth ``lean_deg`` in [start_s, end_s], deg


@dataclass(frozen=True, eq=False)
class Truth:
    """Ground truth for every sample; times in seconds from the first sample.

    - A walk segment ``(start_s, end_s)`` is one continuous walk: its first heel
      strike comes half a step after ``start_s``; it ends with gait termination
      (``sim.gait_model.Walk``): the last walking heel strike, the closing contact
      (the trailing foot set down beside the other) and ``end_s`` when the walker
      stands still, under a second later. Pauses split segments.
    - ``bouts_s`` are the walks as Mobilise-D bounds a walking bout, one per walk
      segment: from its first heel strike to the contact before the closing one
      (the last stride's end once the last stride before a break is removed, mobgap's
      ``MaxBreakCriteria(remove_last_ic=True)``; the INDIP reference's ``start``/``end``
      likewise, which list no contact for the closing one). ``walk_s`` is the sum of
      their durations, as the reference's ``walk_s`` is.
    - ``step_times_s`` are the walking heel strikes inside walk segments, and only
      those: a bout's steps are its contacts from its start to its end (mobgap's
      ``n_raw_initial_contacts``, the reference's ``n_ic``), so a closing contact,
      after its bout's end, is no step; nor is shuffling or turning on the spot.
      ``steps == len(step_times_s)``. ``closing_contacts_s`` are the closing contacts,
      one per walk.
    - ``walking[i]`` is true when ``start_s <= t_s[i] < end_s`` for some segment.
    - ``lean_deg`` is the posture lean vs the wearer's natural standing upright,
      forward positive, with its slow wander (~1 deg) but without gait sway
      (seated: negative, posterior pelvic tilt). While the belt is handled
      before it is worn it is the standing wearer's 0, whatever the sensor does.
    - ``lean_episodes`` are the scripted sustained leans while walking; ``bends``
      the quick ones: picking something up, reaching, and the trunk flexion
      of each sit-to-stand and stand-to-sit (whose baseline is the seated tilt).
    """

    walk_s: float
    steps: int
    step_times_s: np.ndarray
    walk_segments: tuple[tuple[float, float], ...]
    walking: np.ndarray
    lean_deg: np.ndarray
    lean_episodes: tuple[LeanEpisode, ...]
    bends: tuple[LeanEpisode, ...]
    bouts_s: tuple[tuple[float, float], ...] = ()  # (first heel strike, the contact before the closing one) of each walk
    closing_contacts_s: tuple[float, ...] = ()  # each walk's closing contact (gait termination), after its bout
    stair_flights: tuple[tuple[float, float, float], ...] = ()  # (start_s, end_s, rise_m): sim.stairs
    belt_moves: tuple[tuple, ...] = ()  # (start_s, duration_s, angle_deg, body axis): sim.belt, not posture

    def to_json(self) -> dict:
        return {
            "walk_s": self.walk_s,
            "steps": self.steps,
            "lean_episodes": [
                {"start_s": e.start_s, "end_s": e.end_s, "max_deg": e.max_deg} for e in self.lean_episodes
            ],
        }


@dataclass(frozen=True, eq=False)
class SimulatedWalk:
    """One scenario as the sensor reports it (sensor frame, read-only float64 arrays) and its truth."""

    scenario: str
    seed: int
    rate_hz: float
    mount: Mount
    t_s: np.ndarray  # (N,) starting at 0.0, spacing 1/rate_hz
    gravity_ms2: np.ndarray  # (N, 3) sensor frame, points up
    linear_acc_ms2: np.ndarray  # (N, 3) sensor frame
    gyro_rads: np.ndarray  # (N, 3) sensor frame
    truth: Truth

    @property
    def duration_s(self) -> float:
        return len(self.t_s) / self.rate_hz


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation matrix about a unit ``axis`` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * k @ k


@dataclass(frozen=True, eq=False)
class SensorModel:
    """The belt on the wearer and the BNO055 fusion output's imperfections (per seed)."""

    belt_to_body: np.ndarray  # 3x3: pelvic tilt, then belt misalignment
    acc_noise_ms2: float  # white, rms per axis (BNO055: 150 ug/sqrt(Hz), 0.012 m/s2 over its 62.5 Hz band)
    acc_bias_ms2: np.ndarray  # (3,) belt frame
    gravity_noise_ms2: float  # white on the fused gravity, rms per axis
    gravity_leak: float  # share of low-passed linear acceleration the fusion takes for gravity
    gyro_noise_rads: float
    gyro_bias_rads: np.ndarray  # (3,)

    @classmethod
    def draw(cls, rng, pelvic_tilt_deg: float, misalignment_deg: float | None) -> SensorModel:
        def random_vector(low: float, high: float) -> np.ndarray:
            v = rng.standard_normal(3)
            return v / np.linalg.norm(v) * rng.uniform(low, high)

        axis = random_vector(1.0, 1.0)
        drawn_deg = rng.uniform(1.0, 4.0)  # drawn either way, so the noise is the same either way
        angle_deg = drawn_deg if misalignment_deg is None else misalignment_deg
        tilt = _rotation(np.array([0.0, 1.0, 0.0]), np.radians(pelvic_tilt_deg))
        return cls(
            belt_to_body=tilt @ _rotation(axis, np.radians(angle_deg)),
            # the quiet floor of real lower-back recordings (tools/real_gait_stats.py: quiet_floor_ms2)
            acc_noise_ms2=rng.uniform(0.02, 0.04), acc_bias_ms2=random_vector(0.05, 0.2),
            gravity_noise_ms2=rng.uniform(0.01, 0.03), gravity_leak=rng.uniform(0.02, 0.05),
            gyro_noise_rads=rng.uniform(0.003, 0.01), gyro_bias_rads=random_vector(0.001, 0.01),
        )

    def measure(self, rng, rate_hz, body: list) -> list:
        """Body-frame truth -> belt-frame fusion output: [gravity, linear_acc, gyro], each (N, 3).

        ``body`` is the list [gravity, linear_acc, gyro] from ``body_signals``; it is
        emptied as its arrays are used, so each can be freed as early as possible
        (the simulator's peak memory), and the result is built in place.
        """
        to_belt = self.belt_to_body  # row vectors: v_belt^T = v_body^T @ belt_to_body
        linear_acc = body[1] @ to_belt
        body[1] = None
        # The fusion's leak first, while the fewest arrays are alive (the FFT needs scratch).
        leak = lowpass(linear_acc, rate_hz, 1.5)
        leak *= self.gravity_leak
        gyro = body.pop() @ to_belt
        body.pop()
        gravity = body.pop() @ to_belt
        n = len(gravity)
        accelerometer = gravity + linear_acc
        del linear_acc
        accelerometer += self.acc_bias_ms2
        accelerometer += _scaled(rng.standard_normal((n, 3)), self.acc_noise_ms2)
        fused = leak
        fused += gravity  # gravity + leak * lowpass(linear_acc)
        del gravity, leak
        fused += _scaled(rng.standard_normal((n, 3)), self.gravity_noise_ms2)
        fused *= G_MS2 / np.linalg.norm(fused, axis=1, keepdims=True)
        gyro += self.gyro_bias_rads
        gyro += _scaled(rng.standard_normal((n, 3)), self.gyro_noise_rads)
        accelerometer -= fused  # linear acceleration as the fusion reports it
        return [fused, accelerometer, gyro]


def _scaled(a: np.ndarray, factor: float) -> np.ndarray:
    a *= factor
    return a


def body_signals(motion, rate_hz) -> list:
    """[gravity, linear acceleration, angular rate] in the body frame, each (N, 3).

    Consumes ``motion``'s sway, heading and heading-frame acceleration (they are
    set to None once used, so they are freed early); ``lean_deg`` stays.
    The rotation ``Ry(pitch) @ Rx(roll)`` is applied row by row, never built per sample:
    rows (cp, sp sr, sp cr), (0, cr, -sr), (-sp, cp sr, cp cr).
    """
    sway_deg = motion.sway_deg
    roll = np.radians(sway_deg[:, 0])
    pitch = np.radians(motion.lean_deg + sway_deg[:, 1])
    yaw = np.radians(motion.heading_deg + sway_deg[:, 2])
    motion.sway_deg = motion.heading_deg = sway_deg = None
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    n = len(roll)

    gravity = np.empty((n, 3))  # G times the rotation's last row
    np.multiply(G_MS2, -sp, out=gravity[:, 0])
    np.multiply(G_MS2, cp * sr, out=gravity[:, 1])
    np.multiply(G_MS2, cp * cr, out=gravity[:, 2])

    acc = motion.acc_ms2  # heading frame; body = rotation^T @ acc
    motion.acc_ms2 = None
    a0, a1, a2 = acc[:, 0], acc[:, 1], acc[:, 2]
    linear_acc = np.empty((n, 3))
    out = linear_acc[:, 0]  # cp a0 + 0 a1 - sp a2
    np.multiply(cp, a0, out=out)
    out += np.multiply(-sp, a2)
    out = linear_acc[:, 1]  # sp sr a0 + cr a1 + cp sr a2
    np.multiply(sp * sr, a0, out=out)
    out += np.multiply(cr, a1)
    out += np.multiply(cp * sr, a2)
    out = linear_acc[:, 2]  # sp cr a0 - sr a1 + cp cr a2
    np.multiply(sp * cr, a0, out=out)
    out += np.multiply(-sr, a1)
    out += np.multiply(cp * cr, a2)
    del acc, a0, a1, a2, out

    # Unwrapped: a handled belt may come back a whole turn round, where the next activity starts at 0.
    dt_s = 1.0 / rate_hz
    roll_rate = np.gradient(np.unwrap(roll), dt_s)
    del roll
    pitch_rate = np.gradient(np.unwrap(pitch), dt_s)
    del pitch
    yaw_rate = np.gradient(np.unwrap(yaw), dt_s)
    del yaw
    gyro = np.empty((n, 3))
    np.subtract(roll_rate, yaw_rate * sp, out=gyro[:, 0])
    del roll_rate, sp
    yaw_cp = yaw_rate * cp
    del yaw_rate, cp
    out = gyro[:, 1]  # pitch_rate cr + yaw_rate cp sr
    np.multiply(pitch_rate, cr, out=out)
    out += yaw_cp * sr
    out = gyro[:, 2]  # -pitch_rate sr + yaw_rate cp cr
    np.multiply(-pitch_rate, sr, out=out)
    out += yaw_cp * cr
    return [gravity, linear_acc, gyro]


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def simulate(scenario: str, seed: int = 0, *, rate_hz: float = 100.0, mount: Mount = Mount(),
             misalignment_deg: float | None = None) -> SimulatedWalk:
    """Render ``scenario`` as worn by the person ``seed`` describes, sampled at ``rate_hz``.

    ``misalignment_deg``: the belt's rotation away from the nominal ``mount``
    (about a seeded random axis); None draws 1-4 deg, 0.0 gives an exact mount.
    The wearer's own standing pelvic tilt (-3..8 deg by seed) always remains.
    Raises KeyError for an unknown scenario, ValueError for a non-positive rate.
    """
    if scenario not in SCENARIOS:
        raise KeyError(f"unknown scenario {scenario!r} (choose from {', '.join(SCENARIOS)})")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be positive, not {rate_hz}")
    script_seed, person_seed, motion_seed, sensor_seed = np.random.SeedSequence(seed).spawn(4)
    activities = SCENARIOS[scenario].build(np.random.default_rng(script_seed))
    person = Person.draw(np.random.default_rng(person_seed))
    motion = render_activities(activities, rate_hz, person, motion_seed)

    sensor_rng = np.random.default_rng(sensor_seed)
    sensor = SensorModel.draw(sensor_rng, person.pelvic_tilt_deg, misalignment_deg)
    # Lists handed on and emptied as they go, so no stage's arrays outlive their use.
    belt = sensor.measure(sensor_rng, rate_hz, body_signals(motion, rate_hz))
    if motion.belt_moves:
        apply_belt_moves(belt, np.arange(len(motion.lean_deg)) / rate_hz, motion.belt_moves, sensor.belt_to_body)
    sensor_to_body = mount.sensor_to_body()  # belt frame = body axes of the nominal mount
    for i in range(len(belt)):  # one (N, 3) array in flight at a time
        v, belt[i] = belt[i], None
        belt[i] = _read_only(v @ sensor_to_body)
    gravity, linear_acc, gyro = belt
    del belt, v

    t_s = np.arange(len(motion.lean_deg)) / rate_hz
    segments = tuple((float(a), float(b)) for a, b in motion.walk_segments)
    walking = np.zeros(len(t_s), dtype=bool)
    for start_s, end_s in segments:
        walking |= (t_s >= start_s) & (t_s < end_s)

    def episodes(intervals):
        peak_deg = [float(motion.lean_deg[(t_s >= a) & (t_s <= b)].max()) for a, b in intervals]
        return tuple(LeanEpisode(float(a), float(b), peak) for (a, b), peak in zip(intervals, peak_deg, strict=True))

    step_times_s = np.sort(np.asarray(motion.step_times_s, dtype=float))
    bouts_s = []
    for start_s, end_s in segments:
        strikes_s = step_times_s[(step_times_s >= start_s) & (step_times_s <= end_s)]
        if len(strikes_s):
            bouts_s.append((float(strikes_s[0]), float(strikes_s[-1])))
    truth = Truth(
        walk_s=float(sum(b - a for a, b in bouts_s)), steps=len(step_times_s), bouts_s=tuple(bouts_s),
        step_times_s=_read_only(step_times_s), walk_segments=segments, walking=_read_only(walking),
        lean_deg=_read_only(motion.lean_deg), lean_episodes=episodes(motion.lean_episodes),
        bends=episodes(motion.bends),
        stair_flights=tuple(motion.stair_flights), belt_moves=tuple(motion.belt_moves),
        closing_contacts_s=tuple(float(t) for t in motion.closing_contacts_s),
    )
    return SimulatedWalk(scenario, seed, float(rate_hz), mount, _read_only(t_s),
                         gravity, linear_acc, gyro, truth)
