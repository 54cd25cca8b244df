"""The real recordings as other sensors would have recorded them: does the evaluation hold?

    .venv/bin/python tools/sensor_variants.py            # the table in the README ("Other sensors")
    .venv/bin/python tools/sensor_variants.py --json

The coach is judged on recordings it never saw, from other belts and phones: other sample rates,
axis conventions, no gyroscope, noisier accelerometers. Each variant is the same real walk, so
each figure should stay where the original recording's is. Variants (numpy only, seeded):

- ``40 Hz``, ``50 Hz``, ``128 Hz``: linear interpolation of every column onto the new grid;
- ``rotation 0..2``: the sensor mounted in any orientation (a random rotation of acceleration
  and gyro together); ``axes zxy``: another axis convention (a right-handed permutation);
- ``accelerometer only``: the gyro columns removed (gravity then comes from a low-pass);
- ``noise BNO055`` / ``noise MPU-6050`` / ``noise 0.01 g``: white noise added to each
  accelerometer axis at a sensor's level. BNO055 datasheet (BST-BNO055-DS000): accelerometer
  noise density 150 µg/√Hz, ~1.2 mg rms over its 62.5 Hz fusion-mode bandwidth; InvenSense
  MPU-6000/6050 product specification: 400 µg/√Hz, ~6.4 mg rms over its 260 Hz bandwidth; 10 mg
  rms, the noisy end of a phone's or a cheap consumer accelerometer.

Writes the variant CSVs to a temporary folder and scores each with ``evaluate_recording`` (what
``walkcoach evaluate --units g`` prints).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "tests" / "data" / "real" / "mobgap-lab"
LAB_RECORDINGS = ("HA001_Test11_Trial1", "HA001_Test5_Trial1", "HA001_Test5_Trial2")

BNO055_NOISE_G = 150e-6 * math.sqrt(62.5)
MPU6050_NOISE_G = 400e-6 * math.sqrt(260.0)
CONSUMER_NOISE_G = 0.01
NOISE_LEVELS_G = {"noise BNO055": BNO055_NOISE_G, "noise MPU-6050": MPU6050_NOISE_G, "noise 0.01 g": CONSUMER_NOISE_G}
RATES_HZ = (40.0, 50.0, 128.0)
ROTATION_SEEDS = (0, 1, 2)
NOISE_SEEDS = (0, 1, 2)  # noise is random: a rule that holds by luck on one draw fails on another


def random_rotation(seed: int) -> np.ndarray:
    """A uniformly random rotation matrix (QR of a Gaussian matrix, signs fixed; det +1)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


AXES_ZXY = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # new x = -z, y = x, z = -y: right-handed


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(t_s, acc (n, 3), gyro (n, 3) or None) of a plain CSV recording."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, 0], data[:, 1:4], (data[:, 4:7] if data.shape[1] >= 7 else None)


def write_csv(path: Path, t_s: np.ndarray, acc: np.ndarray, gyro: np.ndarray | None) -> Path:
    columns = [t_s[:, None], acc] + ([] if gyro is None else [gyro])
    header = "t,ax,ay,az" + ("" if gyro is None else ",gx,gy,gz")
    np.savetxt(path, np.hstack(columns), delimiter=",", fmt="%.5f", header=header, comments="")
    return path


def resampled(t_s: np.ndarray, columns: np.ndarray | None, grid_s: np.ndarray) -> np.ndarray | None:
    if columns is None:
        return None
    return np.stack([np.interp(grid_s, t_s, columns[:, k]) for k in range(columns.shape[1])], axis=1)


def variants(t_s: np.ndarray, acc: np.ndarray, gyro: np.ndarray | None) -> dict:
    """name -> (t_s, acc, gyro or None): the recording as other sensors would give it."""
    out = {"original": (t_s, acc, gyro)}
    for rate_hz in RATES_HZ:
        grid_s = np.arange(t_s[0], t_s[-1], 1.0 / rate_hz)
        out[f"{rate_hz:g} Hz"] = (grid_s, resampled(t_s, acc, grid_s), resampled(t_s, gyro, grid_s))
    for seed in ROTATION_SEEDS:
        rotation = random_rotation(seed)
        out[f"rotation {seed}"] = (t_s, acc @ rotation.T, None if gyro is None else gyro @ rotation.T)
    out["axes zxy"] = (t_s, acc @ AXES_ZXY.T, None if gyro is None else gyro @ AXES_ZXY.T)
    if gyro is not None:
        out["accelerometer only"] = (t_s, acc, None)
    for level, (name, noise_g) in enumerate(NOISE_LEVELS_G.items()):
        for seed in NOISE_SEEDS:
            rng = np.random.default_rng((seed, level))
            out[f"{name} #{seed}"] = (t_s, acc + rng.normal(0.0, noise_g, acc.shape), gyro)
    return out


def write_variants(recording: Path, folder: Path, only: tuple[str, ...] | None = None) -> dict[str, Path]:
    """The variants of ``recording`` as CSV files in ``folder`` (units as the original: g)."""
    t_s, acc, gyro = read_csv(recording)
    paths = {}
    for name, (tv, av, gv) in variants(t_s, acc, gyro).items():
        if only is None or name in only:
            paths[name] = write_csv(folder / f"{recording.stem}_{name.replace(' ', '_').replace('#', '')}.csv", tv, av, gv)
    return paths


FIGURES = (
    ("walking_time_sensitivity", "walking sens"),
    ("walking_time_ppv", "walking PPV"),
    ("ic_sensitivity", "IC sens"),
    ("ic_ppv", "IC PPV"),
    ("step_count_error", "steps err"),
    ("cadence_error_mean", "cadence err"),
    ("walk_time_error_s", "walk time err s"),
)


def score_variants(names=LAB_RECORDINGS, folder: Path | None = None) -> dict:
    from walkcoach.device.core.settings import DeviceSettings
    from walkcoach.device.offline.evaluate import evaluate_recording

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        where = folder or Path(tmp)
        for name in names:
            for variant, path in write_variants(LAB / f"{name}.csv", where).items():
                scores = evaluate_recording(path, LAB / f"{name}.reference.json", DeviceSettings(), units="g")
                results.setdefault(name, {})[variant] = {key: scores[key] for key, _ in FIGURES}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(LAB_RECORDINGS), help="mobgap-lab recordings (default: all three)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = score_variants(args.names)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print("| recording | variant | " + " | ".join(label for _, label in FIGURES) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in FIGURES) + " |")
    for name, rows in results.items():
        for variant, figures in rows.items():
            cells = []
            for key, _ in FIGURES:
                value = figures[key]
                cells.append("-" if value is None else (f"{value:+.1f}" if key.endswith("_s") else f"{value:.2f}"))
            print(f"| {name.removeprefix('HA001_')} | {variant} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
