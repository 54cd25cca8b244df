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

from hal.mount import Mount

from .gait_model import G_MS2, Person, lowpass, render_activities
from .scenarios import SCENARIOS


@dataclass(frozen=True)
class LeanEpisode:
    start_s: float  # true lean starts rising (ramp start)
    end_s: float  # true lean back to baseline (ramp-down end)
    max_deg: float  # peak forward lean of the truth ``lean_deg`` in [start_s, end_s], deg


@dataclass(frozen=True, eq=False)
class Truth:
    """Ground truth for every sample; times in seconds from the first sample.

    - A walk segment ``(start_s, end_s)`` is one continuous walk: its first heel
      strike comes half a step after ``start_s`` and ``end_s`` is half a step
      after its last heel strike, so ``walk_s`` (the sum of segment durations)
      is ``steps`` x the mean step time. Pauses split segments.
    - ``step_times_s`` are the heel strikes inside walk segments, and only those:
      shuffling or turning on the spot is not walking. ``steps == len(step_times_s)``.
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
    acc_noise_ms2: float  # white, rms per axis
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
            acc_noise_ms2=rng.uniform(0.05, 0.15), acc_bias_ms2=random_vector(0.05, 0.2),
            gravity_noise_ms2=rng.uniform(0.01, 0.03), gravity_leak=rng.uniform(0.02, 0.05),
            gyro_noise_rads=rng.uniform(0.003, 0.01), gyro_bias_rads=random_vector(0.001, 0.01),
        )

    def measure(self, rng, rate_hz, gravity, linear_acc, gyro):
        """Body-frame truth -> belt-frame fusion output: (gravity, linear_acc, gyro), each (N, 3)."""
        to_belt = self.belt_to_body  # row vectors: v_belt^T = v_body^T @ belt_to_body
        gravity, linear_acc, gyro = gravity @ to_belt, linear_acc @ to_belt, gyro @ to_belt
        n = len(gravity)
        accelerometer = gravity + linear_acc + self.acc_bias_ms2
        accelerometer += self.acc_noise_ms2 * rng.standard_normal((n, 3))
        fused = gravity + self.gravity_leak * lowpass(linear_acc, rate_hz, 1.5)
        fused += self.gravity_noise_ms2 * rng.standard_normal((n, 3))
        fused *= G_MS2 / np.linalg.norm(fused, axis=1, keepdims=True)
        gyro = gyro + self.gyro_bias_rads + self.gyro_noise_rads * rng.standard_normal((n, 3))
        return fused, accelerometer - fused, gyro


def body_signals(lean_deg, sway_deg, heading_deg, acc_heading_ms2, rate_hz):
    """Gravity, linear acceleration and angular rate in the body frame, each (N, 3)."""
    roll = np.radians(sway_deg[:, 0])
    pitch = np.radians(lean_deg + sway_deg[:, 1])
    yaw = np.radians(heading_deg + sway_deg[:, 2])
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    zero = np.zeros_like(roll)
    tilt = np.stack([  # Ry(pitch) @ Rx(roll), per sample
        np.stack([cp, sp * sr, sp * cr], axis=-1),
        np.stack([zero, cr, -sr], axis=-1),
        np.stack([-sp, cp * sr, cp * cr], axis=-1),
    ], axis=1)
    gravity = G_MS2 * tilt[:, 2, :]
    linear_acc = np.einsum("nji,nj->ni", tilt, acc_heading_ms2)
    # Unwrapped: a handled belt may come back a whole turn round, where the next activity starts at 0.
    roll_rate, pitch_rate, yaw_rate = (np.gradient(np.unwrap(a), 1.0 / rate_hz) for a in (roll, pitch, yaw))
    gyro = np.column_stack([
        roll_rate - yaw_rate * sp,
        pitch_rate * cr + yaw_rate * cp * sr,
        -pitch_rate * sr + yaw_rate * cp * cr,
    ])
    return gravity, linear_acc, gyro


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
    body = body_signals(motion.lean_deg, motion.sway_deg, motion.heading_deg, motion.acc_ms2, rate_hz)
    belt = sensor.measure(sensor_rng, rate_hz, *body)
    sensor_to_body = mount.sensor_to_body()  # belt frame = body axes of the nominal mount
    gravity, linear_acc, gyro = (_read_only(v @ sensor_to_body) for v in belt)

    t_s = np.arange(len(motion.lean_deg)) / rate_hz
    segments = tuple((float(a), float(b)) for a, b in motion.walk_segments)
    walking = np.zeros(len(t_s), dtype=bool)
    for start_s, end_s in segments:
        walking |= (t_s >= start_s) & (t_s < end_s)

    def episodes(intervals):
        peak_deg = [float(motion.lean_deg[(t_s >= a) & (t_s <= b)].max()) for a, b in intervals]
        return tuple(LeanEpisode(float(a), float(b), peak) for (a, b), peak in zip(intervals, peak_deg))

    step_times_s = np.sort(np.asarray(motion.step_times_s, dtype=float))
    truth = Truth(
        walk_s=float(sum(b - a for a, b in segments)), steps=len(step_times_s),
        step_times_s=_read_only(step_times_s), walk_segments=segments, walking=_read_only(walking),
        lean_deg=_read_only(motion.lean_deg), lean_episodes=episodes(motion.lean_episodes),
        bends=episodes(motion.bends),
    )
    return SimulatedWalk(scenario, seed, float(rate_hz), mount, _read_only(t_s),
                         gravity, linear_acc, gyro, truth)
