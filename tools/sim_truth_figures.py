"""The coach against the simulator's truth, per seed: what tests/test_messy_walkers.py holds it to, as figures.

    .venv/bin/python tools/sim_truth_figures.py very-slow-walk shuffle-walk daily-living [--seeds 5] [--first-seed 0]

For each scenario and seed (default mount, default settings, through the loop as `walkcoach sim` runs it):
steps error against the truth's steps (%), the worst walk-time error of a true walk (s: the detected bouts
overlapping it against its first heel strike to the contact before its closing one), and the heel strikes found within 0.25 s
(sensitivity, PPV). A scenario without true walking prints its bout count instead.
"""

from __future__ import annotations

import argparse

from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.offline.evaluate import match_contacts
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.mount import Mount

IC_TOLERANCE_S = 0.25


def figures(scenario: str, seed: int) -> str:
    run = run_simulation(DeviceSettings(), scenario=scenario, seed=seed, mount=Mount("+x", "+z"))
    truth, summary = run.walk.truth, run.summary
    if not truth.steps:
        return f"{len(summary.bouts)} bouts"
    worst_s = 0.0
    for start_s, end_s in truth.bouts_s:
        detected_s = sum(b.duration_s for b in summary.bouts if b.end_s > start_s and b.start_s < end_s)
        worst_s = max(worst_s, abs(detected_s - (end_s - start_s)))
    detected = sorted(t for b in summary.bouts for t in b.step_times_s)
    matched = len(match_contacts(list(truth.step_times_s), detected, IC_TOLERANCE_S))
    steps_error = 100.0 * (summary.steps - truth.steps) / truth.steps
    return (f"{steps_error:+.1f} % / {worst_s:.1f} s / {matched / len(truth.step_times_s):.2f}, "
            f"{matched / max(1, len(detected)):.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+")
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (to split a long range over processes)")
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"scenario: steps error / worst walk-time error / heel strikes sensitivity, PPV; seeds {seeds.start}-{seeds.stop - 1}")
    for scenario in args.scenarios:
        print(scenario + ": " + " | ".join(figures(scenario, seed) for seed in seeds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
