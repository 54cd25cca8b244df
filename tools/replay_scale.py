#!/usr/bin/env python3
"""Replay at scale: whole-process CPU, peak memory and cost per sample of `walkcoach replay`
from 3 minutes to 24 hours, beside scikit-digital-health's gait pipeline on the same files.

    .venv/bin/python tools/replay_scale.py [--runs 3] [--skdh /tmp/skdh-venv/bin/python] [--hours 24]

The files are GaitPy's demo recording (../shared/real/gaitpy-demo/demo.csv: a
GENEActiv at the lower back, 50 Hz, 168.5 s) concatenated with t shifted: once
(3 min), 100 times (4.7 h) and to 24 h, written to --dir (default /tmp) if
missing; never commit them. Each figure is the median of --runs runs, one
process at a time. CPU is user + system time of the process (os.wait4), so
start-up counts (the cost per sample beyond the 3-minute file's leaves it out); peak memory is its ru_maxrss (this script imports no numpy,
so the child's peak is its own). Replay runs at its default rate for a plain
CSV (the demo's own 50 Hz: from 50 Hz up to the loop rate a CSV replays at its
own rate); per-sample figures are per replayed sample (``replay_rate_hz``).

skdh: ``skdh.Pipeline`` of ``io.ReadCSV`` -> ``context.PredictGaitLumbarLgbm``
-> ``gait.GaitLumbar`` (its gait classifier, then gait events and bouts), run
with the interpreter given by --skdh (a separate venv: ``python -m venv
/tmp/skdh-venv && /tmp/skdh-venv/bin/pip install scikit-digital-health``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT.parent / "shared" / "real" / "gaitpy-demo" / "demo.csv"

SKDH_SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
import skdh
pipe = skdh.Pipeline()
pipe.add(skdh.io.ReadCSV(time_col_name="t", column_names={"accel": ["ax", "ay", "az"]},
                         to_datetime_kwargs={"unit": "s"}, accel_in_g=True))
pipe.add(skdh.context.PredictGaitLumbarLgbm())
pipe.add(skdh.gait.GaitLumbar())
res = pipe.run(file=sys.argv[1], height=1.7)
import numpy as np
gait = res["GaitLumbar"]
print(len(np.unique(gait["Bout N"])), file=sys.stderr)
"""


def make_file(path: Path, copies: int) -> Path:
    if path.exists():
        return path
    rows = DEMO.read_text().splitlines()
    header, body = rows[0], [r.split(",", 1) for r in rows[1:]]
    times = [float(t) for t, _ in body]
    period_s = times[-1] - times[0] + (times[1] - times[0])
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w") as f:
        f.write(header + "\n")
        for copy in range(copies):
            offset = copy * period_s
            f.write("".join(f"{t + offset:.3f},{rest}\n" for t, (_, rest) in zip(times, body, strict=True)))
    tmp.replace(path)
    return path


def measure(argv: list[str]) -> dict:
    """Run argv to the end; its CPU seconds, peak RSS (MB), wall seconds and stdout."""
    import time

    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall_s = time.perf_counter() - started
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}")
    return {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024.0,
        "wall_s": wall_s,
        "stdout": stdout,
    }


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skdh", help="python of a venv with scikit-digital-health")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--hours", type=float, default=24.0, help="the longest file (default 24 h)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not DEMO.exists():
        print(f"replay_scale: {DEMO} not found", file=sys.stderr)
        return 2
    period_s = 168.5
    longest = math.ceil(args.hours * 3600.0 / period_s)
    files = [
        ("3 min", make_file(args.dir / "walkcoach-demo-x1.csv", 1)),
        ("4.7 h", make_file(args.dir / "walkcoach-demo-x100.csv", 100)),
        (f"{args.hours:g} h", make_file(args.dir / f"walkcoach-demo-x{longest}.csv", longest)),
    ]
    walkcoach = [sys.executable, "-m", "walkcoach", "replay", "--units", "g", "--json"]
    skdh_script = None
    if args.skdh:
        skdh_script = Path(tempfile.gettempdir()) / "walkcoach_skdh_gait.py"
        skdh_script.write_text(SKDH_SCRIPT)
    results = []
    for label, path in files:
        runs = [measure([*walkcoach, str(path)]) for _ in range(args.runs)]
        out = json.loads(runs[0]["stdout"])
        samples = out["duration_s"] * out["rate_hz"]
        row = {
            "file": label,
            "path": str(path),
            "duration_h": round(out["duration_s"] / 3600.0, 2),
            "replay_rate_hz": out["rate_hz"],
            "samples": int(samples),
            "steps": out["steps"],
            "bouts": len(out["bouts"]),
            "walkcoach_cpu_s": round(median_of(runs, "cpu_s"), 2),
            "walkcoach_peak_mb": round(median_of(runs, "peak_mb"), 1),
            "walkcoach_us_per_sample": round(median_of(runs, "cpu_s") / samples * 1e6, 2),
        }
        if skdh_script is not None:
            skdh_runs = [measure([args.skdh, str(skdh_script), str(path)]) for _ in range(args.runs)]
            row["skdh_cpu_s"] = round(median_of(skdh_runs, "cpu_s"), 2)
            row["skdh_peak_mb"] = round(median_of(skdh_runs, "peak_mb"), 1)
            row["cpu_ratio_walkcoach_over_skdh"] = round(row["walkcoach_cpu_s"] / row["skdh_cpu_s"], 2)
        results.append(row)
    base = results[0]  # the 3-minute file: mostly start-up
    for row in results[1:]:
        extra_cpu_s = row["walkcoach_cpu_s"] - base["walkcoach_cpu_s"]
        row["walkcoach_marginal_us_per_sample"] = round(extra_cpu_s / (row["samples"] - base["samples"]) * 1e6, 2)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                machine = f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores, Python {platform.python_version()}"
                break
    except OSError:
        pass
    if args.json:
        print(json.dumps({"machine": machine, "runs": args.runs, "files": results}))
        return 0
    print(f"machine: {machine}; medians of {args.runs} run(s), one process at a time")
    for row in results:
        line = (
            f"{row['file']:>6} ({row['duration_h']} h, {row['samples']} samples at {row['replay_rate_hz']:g} Hz, {row['steps']} steps in "
            f"{row['bouts']} bouts): walkcoach replay CPU {row['walkcoach_cpu_s']} s, peak {row['walkcoach_peak_mb']} MB, "
            f"{row['walkcoach_us_per_sample']} us/sample whole process"
            + (f", {row['walkcoach_marginal_us_per_sample']} us/sample beyond the 3-minute file's"
               if "walkcoach_marginal_us_per_sample" in row else "")
        )
        if "skdh_cpu_s" in row:
            line += (
                f"; skdh gait CPU {row['skdh_cpu_s']} s, peak {row['skdh_peak_mb']} MB; "
                f"walkcoach/skdh CPU {row['cpu_ratio_walkcoach_over_skdh']}"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
