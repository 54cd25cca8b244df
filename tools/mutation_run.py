"""A hand mutation run over the pure core: break one rule at a time, see whether a test fails.

Each mutant is one textual change to one file of the coach (a flipped comparison, a changed
constant, a dropped branch). For each, the tree is copied to a temporary folder, the change
applied, and the core's behaviour tests run (fast ones first, stopping at the first failure).
A mutant is *killed* when a test fails; a survivor names a rule no test holds.

    .venv/bin/python tools/mutation_run.py            # all mutants, prints the kill rate
    .venv/bin/python tools/mutation_run.py --list     # the mutants
    .venv/bin/python tools/mutation_run.py -k gait    # only those whose name contains "gait"

Not run by CI (a few minutes per mutant on 2 cores); its last figure is in the README.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent

TESTS = [
    "tests/test_session.py",
    "tests/test_plan.py",
    "tests/test_coach_unit.py",
    "tests/test_posture_unit.py",
    "tests/test_real_recordings.py",
    "tests/test_posture_real.py",
    "tests/test_coach_scenarios.py",
    "tests/test_posture_scenarios.py",
]


class Mutant(NamedTuple):
    name: str
    path: str
    old: str
    new: str


MUTANTS = [
    Mutant("gait: no regularity gate", "device/core/gait.py",
           "regularity(median_s) < self._min_regularity", "regularity(median_s) < -1.0"),
    Mutant("gait: every waiting contact counts at a bout's end", "device/core/gait.py",
           "len(self._unconfirmed) if self._faint_walker() else TERMINATION_STEPS", "len(self._unconfirmed)"),
    Mutant("gait: missed steps counted however uneven", "device/core/gait.py",
           "MISSED_STEP_TOLERANCE = 0.2", "MISSED_STEP_TOLERANCE = 0.6"),
    Mutant("gait: confirmation delay halved", "device/core/gait.py",
           "t_s - self._candidate_s >= self.step_latency_s", "t_s - self._candidate_s >= self.step_latency_s - 0.5 * CONFIRM_S"),
    Mutant("coach: lean coached while the bout waits for its end", "device/core/coach.py",
           "steps_current = walking and t_s - self._bout_last_step_s <= self._current_steps_within_s",
           "steps_current = walking"),
    Mutant("coach: stairs coached", "device/core/coach.py",
           "coachable = upright.coachable and not on_stairs\n                if on_stairs:",
           "coachable = upright.coachable\n                if False:"),
    Mutant("posture: cue at the threshold crossing, no hold", "device/core/posture.py",
           "self._cued = False\n                self._next_cue_s = t_s + self._hold_s\n",
           "self._cued = False\n                self._next_cue_s = t_s\n"),
    Mutant("posture: no limit of cues per 10 minutes", "device/core/posture.py",
           "if len(recent) >= s.max_cues_per_10min:", "if False:"),
    Mutant("upright: a sit-to-stand does not disqualify the stillness", "device/core/upright.py",
           "TRANSITION_DEG = 20.0", "TRANSITION_DEG = 90.0"),
    Mutant("upright: any stillness before walking is a stance", "device/core/upright.py",
           "PRE_GAIT_BEFORE_S = 3.0", "PRE_GAIT_BEFORE_S = 600.0"),
    Mutant("upright: a belt turned round is never corrected", "device/core/upright.py",
           "if off_deg <= FORWARD_CORRECT_DEG:", "if True:"),
    Mutant("upright: a sideways belt is never re-zeroed", "device/core/upright.py",
           "LATERAL_HOLD_S = 3.0", "LATERAL_HOLD_S = 3600.0"),
    Mutant("stairs: two risers make a flight", "device/core/activity.py",
           "FLIGHT_STEPS = 3", "FLIGHT_STEPS = 2"),
    Mutant("stairs: a riser is a whole 15 cm", "device/core/activity.py",
           "STAIR_RISE_M = 0.075", "STAIR_RISE_M = 0.15"),
    Mutant("session: cap warning at the cap", "device/core/session.py",
           "walk_s >= cap_s - self._plan.warning_before_cap_s and walk_s < cap_s",
           "walk_s >= cap_s and walk_s <= cap_s"),
    Mutant("session: a pain report does not shorten the cap", "device/core/session.py",
           "self.cap_s = max(walk_s, self.cap_s - self._plan.pain_shorten_min * 60.0)", "pass"),
]


def run_mutant(mutant: Mutant, python: str) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="walkcoach-mutant-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv*", ".git", "__pycache__", "artifacts"), symlinks=True)
        for name in ("device", "hal", "sim"):  # walkcoach.device is the copy's device/, not the installed tree's
            (tree / "walkcoach" / name).symlink_to(tree / name, target_is_directory=True)
        target = tree / mutant.path
        text = target.read_text()
        if text.count(mutant.old) != 1:
            return False, f"the mutant's text is not found once in {mutant.path} (the code moved: update the mutant)"
        target.write_text(text.replace(mutant.old, mutant.new))
        proc = subprocess.run(
            [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=tree, capture_output=True, text=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        )
        killed = proc.returncode == 1
        failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
        return killed, failed[0] if failed else proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true")
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if args.k in m.name]
    if args.list:
        for m in mutants:
            print(f"{m.name}  ({m.path})")
        return 0
    killed = 0
    for mutant in mutants:
        dead, why = run_mutant(mutant, sys.executable)
        killed += dead
        print(f"{'killed  ' if dead else 'SURVIVED'} {mutant.name}: {why}", flush=True)
    print(f"{killed} of {len(mutants)} mutants killed ({killed / len(mutants):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
