"""walkcoach against mobgap's Mobilise-D pipeline, on the same recordings, scored the same way.

Not part of CI, and it installs nothing. mobgap (Apache-2.0, numba, pandas,
scipy: a few hundred MB) lives in its own venv so walkcoach's stays small:

    python3 -m venv .venv-peers && .venv-peers/bin/pip install mobgap   # once (tried with mobgap 1.2.0)
    .venv/bin/python tools/compare_peers.py                             # the real recordings with a reference
    .venv/bin/python tools/compare_peers.py --sim daily-living shuffle-walk --seeds 3   # simulated, truth as reference
    .venv/bin/python tools/compare_peers.py --json                      # every score, one object
    .venv/bin/python tools/compare_peers.py --save /tmp/peers           # and mobgap's bouts per recording

What runs:
- walkcoach: ``walkcoach.device.offline.evaluate.evaluate_recording`` (what ``walkcoach evaluate
  RECORDING REFERENCE.json --units g`` prints), default settings but for the
  leg length, told from the participant's height as mobgap is (``gait.leg_length_m``,
  which a wearer sets: ``LEG_SHARE_OF_HEIGHT`` of the height), the coach not told the axes.
- mobgap: ``MobilisedPipelineHealthy`` (GSD Iluz, ICD Ionescu, laterality,
  cadence, stride length, speed, the WB assembly), run by
  ``PEER_PYTHON tools/compare_peers.py --mobgap-json CSV ...`` in the peer venv,
  which prints mobgap's walking bouts (WBs) and their initial contacts in the
  shape ``walkcoach replay --json`` prints (``bouts`` with start_s, end_s,
  steps, cadence_spm, step_length_m, speed_ms, step_times_s; and
  ``step_times_s``). A WB runs from its first to its last initial contact;
  its contacts are the pipeline's raw initial contacts inside it (what mobgap
  counts as ``n_raw_initial_contacts``). mobgap is given what it needs: the
  Mobilise-D sensor frame (x up, y right, z forward: the mobgap-lab CSVs are
  in it), m/s² and deg/s, the participant's height and sensor height.
- both scored by ``walkcoach.device.offline.evaluate.score`` against the reference.

Simulated walks (``--sim``) are written as CSVs in the same frame and units as
the lab recordings, with the truth as the reference (each walk from its first
heel strike to the contact before its closing one, every walking heel strike as
an initial contact: like the INDIP, none for the closing step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
G_MS2 = 9.80665
DEFAULT_PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
# The mobgap-lab participant (tests/data/real/README.md): HA/001, 1.59 m tall, sensor 0.96 m above the floor.
LAB_HEIGHT_M, LAB_SENSOR_HEIGHT_M = 1.59, 0.96
# Greater trochanter to floor as a share of body height (Winter, Biomechanics and Motor Control of Human
# Movement, 4th ed. 2009, Fig. 4.1): the leg length walkcoach's step length takes (0.90 m at 1.70 m: the default).
LEG_SHARE_OF_HEIGHT = 0.53


def real_dir() -> Path:
    candidate = ROOT / "tests" / "data" / "real"  # shipped with the project: nothing points outside it
    if (candidate / "mobgap-lab").is_dir():
        return candidate
    raise SystemExit("no real recordings: expected tests/data/real/mobgap-lab")


# -- the mobgap side (runs in the peer venv; imports nothing of walkcoach) ----------------------------
def mobgap_bouts(csv_path: str, height_m: float, sensor_height_m: float, cohort: str = "HA") -> dict:
    import warnings

    import numpy as np
    import pandas as pd
    from mobgap.data import GaitDatasetFromData
    from mobgap.pipeline import MobilisedPipelineHealthy

    warnings.filterwarnings("ignore")
    data = np.loadtxt(csv_path, delimiter=",", skiprows=1)
    rate_hz = float(round(1.0 / np.median(np.diff(data[:, 0]))))
    frame = pd.DataFrame({
        "acc_x": data[:, 1] * G_MS2, "acc_y": data[:, 2] * G_MS2, "acc_z": data[:, 3] * G_MS2,
        "gyr_x": np.degrees(data[:, 4]), "gyr_y": np.degrees(data[:, 5]), "gyr_z": np.degrees(data[:, 6]),
    })
    dataset = GaitDatasetFromData(
        {"recording": {"LowerBack": frame}}, rate_hz,
        {"recording": {"height_m": height_m, "sensor_height_m": sensor_height_m, "cohort": cohort}},
        {"recording": {"measurement_condition": "laboratory"}},
    )
    pipeline = MobilisedPipelineHealthy().run(dataset[0])
    raw_ics = np.sort(pipeline.raw_ic_list_["ic"].to_numpy()) if len(pipeline.raw_ic_list_) else np.zeros(0)
    bouts = []
    for _, wb in pipeline.per_wb_parameters_.iterrows():
        start, end = int(wb["start"]), int(wb["end"])
        ics = raw_ics[(raw_ics >= start) & (raw_ics <= end)]
        step_s = np.diff(ics) / rate_hz
        def number(key, wb=wb):
            value = wb.get(key)
            return None if value is None or not np.isfinite(value) else float(value)
        stride_m = number("stride_length_m")
        bouts.append({
            "start_s": start / rate_hz, "end_s": end / rate_hz, "steps": int(len(ics)),
            "cadence_spm": number("cadence_spm") or (60.0 / float(np.mean(step_s)) if len(step_s) else 0.0),
            "step_time_cv": float(np.std(step_s) / np.mean(step_s)) if len(step_s) > 1 else 0.0,
            "step_length_m": None if stride_m is None else stride_m / 2.0,
            "speed_ms": number("walking_speed_mps"),
            "step_times_s": [float(t) / rate_hz for t in ics],
        })
    return {"bouts": bouts, "step_times_s": [t for b in bouts for t in b["step_times_s"]],
            "steps": sum(b["steps"] for b in bouts), "walk_s": sum(b["end_s"] - b["start_s"] for b in bouts)}


# -- the walkcoach side (runs in .venv) -----------------------------------------------------------------
def run_peer(peer_python: Path, csv_path: Path, height_m: float, sensor_height_m: float) -> dict:
    command = [str(peer_python), str(Path(__file__).resolve()), "--mobgap-json", str(csv_path),
               "--height-m", str(height_m), "--sensor-height-m", str(sensor_height_m)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        raise SystemExit(f"mobgap failed on {csv_path}: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}")
    return json.loads(done.stdout)


def bouts_from_json(replay_json: dict):
    from walkcoach.device.core.events import Bout

    return [Bout(b["start_s"], b["end_s"], b["steps"], b["cadence_spm"], b.get("step_time_cv", 0.0),
                 b.get("step_length_m"), b.get("speed_ms"), step_times_s=tuple(b["step_times_s"]))
            for b in replay_json["bouts"]]


def write_sim_recording(scenario: str, seed: int, folder: Path) -> tuple[Path, Path]:
    """A simulated walk as a lab-like CSV (g, rad/s; x up, y right, z forward) and its truth as a reference JSON."""
    import numpy as np

    from walkcoach.sim.walker import simulate

    w = simulate(scenario, seed)
    body_acc = w.mount.remap_array(np.asarray(w.gravity_ms2) + np.asarray(w.linear_acc_ms2)) / G_MS2
    body_gyro = w.mount.remap_array(np.asarray(w.gyro_rads))
    # body: x forward, y left, z up  ->  Mobilise-D sensor frame: x up, y right, z forward
    columns = np.column_stack([w.t_s, body_acc[:, 2], -body_acc[:, 1], body_acc[:, 0],
                               body_gyro[:, 2], -body_gyro[:, 1], body_gyro[:, 0]])
    csv_path = folder / f"{scenario}-{seed}.csv"
    np.savetxt(csv_path, columns, delimiter=",", fmt="%.5f", header="t,ax,ay,az,gx,gy,gz", comments="")
    ics = w.truth.step_times_s
    bouts = []
    for start_s, end_s in w.truth.walk_segments:
        inside = ics[(ics > start_s) & (ics < end_s)]
        bouts.append({"start_s": float(inside[0]), "end_s": float(inside[-1]), "n_ic": int(len(inside)),
                      "cadence_spm": 60.0 / float(np.mean(np.diff(inside))),
                      "stride_length_m": None, "speed_mps": None})
    reference_path = folder / f"{scenario}-{seed}.reference.json"
    reference_path.write_text(json.dumps({"bouts": bouts, "ics_s": [float(t) for t in ics]}))
    return csv_path, reference_path


FIGURES = (
    ("walking_time_sensitivity", "walking-time sensitivity", "{:.2f}"),
    ("walking_time_ppv", "walking-time PPV", "{:.2f}"),
    ("ic_sensitivity", "IC sensitivity (0.25 s)", "{:.2f}"),
    ("ic_ppv", "IC PPV", "{:.2f}"),
    ("ic_timing_error_s", "IC timing error, s", "{:.3f}"),
    ("step_count_error", "step-count error in ref. bouts", "{:.1%}"),
    ("cadence_error_mean", "cadence error (mean, bouts found)", "{:.1%}"),
    ("stride_length_error_mean", "stride-length error (mean)", "{:.1%}"),
    ("speed_error_mean", "speed error (mean)", "{:.1%}"),
    ("walk_time_error_per_bout_max_s", "walk-time error per bout, max, s", "{:.1f}"),
    ("walk_time_error_s", "walk time, detected - reference, s", "{:+.1f}"),
)


def pooled(scores: list[dict]) -> dict:
    """Figures over several recordings, each ratio weighted by what it counts (PPV of walking time by
    the detected walk time), per-bout errors by the bouts found; walk-time errors as max and total."""
    def weighted(key, weight):
        pairs = [(s[key], weight(s)) for s in scores if s[key] is not None]
        total_weight = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / total_weight if total_weight else None

    out = {
        "walking_time_sensitivity": weighted("walking_time_sensitivity", lambda s: s["reference_walk_s"]),
        "walking_time_ppv": weighted("walking_time_ppv", lambda s: s["detected_walk_s"]),
        "ic_sensitivity": weighted("ic_sensitivity", lambda s: s["reference_ics"]),
        "ic_ppv": weighted("ic_ppv", lambda s: s["detected_steps_in_reference_bouts"]),
        "ic_timing_error_s": weighted("ic_timing_error_s", lambda s: (s["ic_sensitivity"] or 0.0) * s["reference_ics"]),
        "step_count_error": weighted("step_count_error", lambda s: s["reference_ics"]),
    }
    for key in ("cadence_error_mean", "stride_length_error_mean", "speed_error_mean"):
        out[key] = weighted(key, lambda s: s["reference_bouts_found"])
    max_values = [s["walk_time_error_per_bout_max_s"] for s in scores if s["walk_time_error_per_bout_max_s"] is not None]
    out["walk_time_error_per_bout_max_s"] = max(max_values) if max_values else None
    out["walk_time_error_s"] = sum(s["walk_time_error_s"] for s in scores)
    out["reference_bouts"] = sum(s["reference_bouts"] for s in scores)
    out["reference_bouts_found"] = sum(s["reference_bouts_found"] for s in scores)
    return out


def table(columns: dict[str, dict]) -> str:
    names = list(columns)
    lines = ["| figure | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    lines.append("| reference bouts found | " + " | ".join(
        f"{c['reference_bouts_found']} of {c['reference_bouts']}" for c in columns.values()) + " |")
    for key, label, fmt in FIGURES:
        cells = ["–" if columns[n].get(key) is None else fmt.format(columns[n][key]) for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", type=Path, default=Path(os.environ.get("PEER_PYTHON", DEFAULT_PEER_PYTHON)),
                        help="the python of the venv with mobgap (default .venv-peers/bin/python, or $PEER_PYTHON)")
    parser.add_argument("--sim", nargs="*", default=None, metavar="SCENARIO",
                        help="simulated scenarios instead of the real recordings (truth as the reference)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--save", type=Path, metavar="DIR",
                        help="also write mobgap's answer per recording as DIR/NAME.mobgap.json (the replay --json shape)")
    parser.add_argument("--mobgap-json", metavar="CSV", help=argparse.SUPPRESS)  # the peer venv's half
    parser.add_argument("--height-m", type=float, default=LAB_HEIGHT_M, help=argparse.SUPPRESS)
    parser.add_argument("--sensor-height-m", type=float, default=LAB_SENSOR_HEIGHT_M, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mobgap_json:
        print(json.dumps(mobgap_bouts(args.mobgap_json, args.height_m, args.sensor_height_m)))
        return 0
    if not args.peer_python.exists():
        raise SystemExit(f"no peer venv at {args.peer_python}: python3 -m venv .venv-peers && "
                         ".venv-peers/bin/pip install mobgap (or --peer-python)")

    sys.path.insert(0, str(ROOT))
    from dataclasses import replace

    from walkcoach.device.core.settings import DeviceSettings
    from walkcoach.device.offline.evaluate import evaluate_recording, load_reference, score

    with tempfile.TemporaryDirectory() as tmp:
        if args.sim is None:
            recordings = [(p.with_name(p.name.replace(".reference.json", ".csv")), p)
                          for p in sorted((real_dir() / "mobgap-lab").glob("*.reference.json"))]
            groups = {"mobgap-lab (3 recordings)": recordings}
            height = (LAB_HEIGHT_M, LAB_SENSOR_HEIGHT_M)
        else:
            groups = {f"sim {s} ({args.seeds} seeds)": [write_sim_recording(s, seed, Path(tmp)) for seed in range(args.seeds)]
                      for s in args.sim}
            height = (1.7, 1.0)  # the simulated wearer's leg length is 0.85-1 m
        coach = DeviceSettings().coach
        leg_length_m = round(LEG_SHARE_OF_HEIGHT * height[0], 2)
        settings = DeviceSettings(coach=replace(coach, gait=replace(coach.gait, leg_length_m=leg_length_m)))
        results = {}
        for group, recordings in groups.items():
            per_recording = {"walkcoach": [], "mobgap": []}
            for csv_path, reference_path in recordings:
                per_recording["walkcoach"].append(evaluate_recording(csv_path, reference_path, settings, units="g"))
                peer = run_peer(args.peer_python, csv_path, *height)
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"{csv_path.stem}.mobgap.json").write_text(json.dumps(peer, indent=1))
                peer_scores = score(bouts_from_json(peer), load_reference(reference_path))
                peer_scores["recording"] = str(csv_path)
                per_recording["mobgap"].append(peer_scores)
            results[group] = {"pooled": {name: pooled(s) for name, s in per_recording.items()},
                              "per_recording": per_recording}
    if args.json:
        print(json.dumps(results, default=str))
        return 0
    for group, result in results.items():
        print(f"\n### {group}\n")
        columns = {}
        if args.sim is None:  # each recording, then all of them
            for i, (csv_path, _) in enumerate(groups[group]):
                name = csv_path.stem.replace("HA001_", "")
                for system in ("walkcoach", "mobgap"):
                    columns[f"{name} {system}"] = pooled([result["per_recording"][system][i]])
        for system in ("walkcoach", "mobgap"):
            columns[f"all {system}" if args.sim is None else system] = result["pooled"][system]
        print(table(columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
