"""Mutation testing of the pure core, mutmut-style: every small change a test should catch.

For each module below, every comparison, arithmetic and boolean operator, number, ``not``
and min/max is changed one at a time (``<`` to ``<=``, ``+`` to ``-``, ``and`` to ``or``,
``60.0`` to ``61.0``, ...). Each mutant is run against the module's fast unit tests in a
forked child (pytest and its plugins imported once), in a private copy of the tree; a
mutant is *killed* when a test fails or the run times out, else it *survived*.

    .venv/bin/python tools/mutate_core.py                 # all modules: kill rate and survivors
    .venv/bin/python tools/mutate_core.py session plan    # only these modules
    .venv/bin/python tools/mutate_core.py --list          # the mutants, not run
    .venv/bin/python tools/mutate_core.py --min-kill-rate 90   # as CI runs it: status 1 below 90 %
    .venv/bin/python tools/mutate_core.py gait --sample 80 --seed 1   # a random 80 of the module's mutants

Why not mutmut itself: mutmut 3 runs the tests inside a ``mutants/`` copy of the source
folders, which the installed ``walkcoach.*`` package (setuptools' ``package-dir``) does
not import from; here the copy is put first on the import path under the same names.
The hand-written run over the detectors is ``tools/mutation_run.py``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Target(NamedTuple):
    name: str
    path: str  # inside the repository
    tests: tuple[str, ...]
    # only inside these functions (empty: the whole module); "name@text": from the line holding text on
    functions: tuple[str, ...] = ()


SESSION_TESTS = ("tests/test_session.py", "tests/test_session_rules.py")
TARGETS = [
    Target("session", "device/core/session.py", SESSION_TESTS),
    Target("plan", "device/core/plan.py", ("tests/test_plan.py", "tests/test_session_rules.py")),
    Target("posture", "device/core/posture.py", ("tests/test_lean_rules.py", "tests/test_posture_unit.py", "tests/test_coach_unit.py")),
    Target("events", "device/core/events.py", SESSION_TESTS + ("tests/test_store.py",)),
    # the coach's session and cap logic (its gait and posture hooks are tools/mutation_run.py's)
    Target("coach-cap", "device/core/coach.py", SESSION_TESTS + ("tests/test_coach_unit.py",),
           ("_with", "_session_ended", "_walk_ended", "_walk_started", "report_pain", "set_planned_cap", "walk_s",
            "saved_state", "restore_state",
            "update@session = self.session")),
    # the step and bout detectors: their unit tests (walk start, bout cadence among them), the contact timing, the
    # real recordings' regression figures, the messy and non-walking sim scenarios and the other sensors; hundreds
    # of mutants at up to ~40 s each, so it is run on a random sample (--sample)
    Target("gait", "device/core/gait.py",
           ("tests/test_gait_rules.py", "tests/test_regularity.py", "tests/test_contact_timing.py", "tests/test_coach_unit.py",
            "tests/test_walk_start.py", "tests/test_bout_cadence.py", "tests/test_bout_start_rules.py", "tests/test_faint_peak_rules.py",
            "tests/test_real_recordings.py", "tests/test_no_walking.py", "tests/test_messy_walkers.py", "tests/test_sensor_variants.py")),
]

# Mutants that change no behaviour (checked by hand), by (file, the line's code, the change), or, where the same
# change of the same code comes more than once in the file (two alike operators on one line, one line written in
# two places), by (file, code, change, which of them: 1 for the first in the file's order): a key of three names
# only a change that comes once, so an equivalent mutant can never hide a surviving twin. They are reported apart
# and left out of the score. A test that kills one shows it was not equivalent after all.
INIT_OVERWRITTEN = "a starting value every path sets before reading it"
EQUIVALENT: dict[tuple, str] = {
    ("device/core/session.py", "self._next_stop_s = 0.0", "0.0 -> 1.0"):
        "the stop is due from the start: walk time reaches a cap after 1 s",
    ("device/core/session.py", "self._warned = walk_s >= self.cap_s - self._plan.warning_before_cap_s", ">= -> >"):
        "a pain report exactly at the warning point: the warning then, or none; both are before the cap",
    ("device/core/session.py", "self._warned = True", "True -> False", 2):  # the stop's, not the warning's
        "after the stop walk time never falls back under the cap (a larger cap by reload is not a warning case)",
    ("device/core/plan.py", "stepped_back = pain_recent >= 2 and grown_min > settings.start_min and step_min > 0", "> -> >=",
     2):  # step_min > 0
        "step_min == 0 leaves grown_min at the start, so the middle term is already false",
    ("device/core/plan.py", "sessions_today = sum(1 for s in sessions if s.date == today and s.walk_s > 0)", "0 -> 1"):
        "a session with walking has a bout of at least six steps, several seconds",
    ("device/core/posture.py", "self.lean_deg = 0.0", "0.0 -> 1.0"): INIT_OVERWRITTEN,
    ("device/core/posture.py", "self._start_s = 0.0", "0.0 -> 1.0"): INIT_OVERWRITTEN,
    ("device/core/posture.py", "self._max_deg = 0.0", "0.0 -> 1.0"): INIT_OVERWRITTEN,
    ("device/core/posture.py", "self._cued = False", "False -> True", 1): INIT_OVERWRITTEN,  # __init__'s, not a lean's
    ("device/core/posture.py", "self._next_cue_s = 0.0", "0.0 -> 1.0"): INIT_OVERWRITTEN,
    ("device/core/posture.py", "self._last_t_s = 0.0", "0.0 -> 1.0"): INIT_OVERWRITTEN,
    ("device/core/posture.py", "if self.leaning and self._next_cue_s < t_s + self._hold_s:", "< -> <="):
        "at equality the assignment writes the value already there",
    ("device/core/posture.py", "if lean > self._max_deg:", "> -> >="): "at equality the assignment writes the value already there",
    ("device/core/coach.py", "elif session.started and t_s - self._last_walk_s > self._session_end_pause_s:", "> -> >="):
        "the pause equal to the sample's time to the float: one sample's difference at most",
    ("device/core/coach.py",
     "if len(up) != 3 or not all(math.isfinite(v) for v in up) or math.sqrt(sum(v * v for v in up)) < 0.5:", "< -> <="):
        "a saved upright of exactly half a unit's length: refused or taken, both a judgment of a broken file",
    ("device/core/posture.py", "self._next_cue_s = recent[0] + 600.0", "+ -> -"):
        "the cue limit is checked again on the next sample: the same cues, found with more work",
    ("device/core/gait.py", "cutoff_hz = min(STEP_BAND_HZ, 0.4 * rate_hz)", "0.4 -> 0.8"):
        "at the 25-200 Hz the sensor settings accept, 0.4 and 0.8 of the rate are both above 3 Hz: min is STEP_BAND_HZ",
    ("device/core/gait.py", "self.last_peak_ms2 = 0.0  # peak of the step update() returned last", "0.0 -> 1.0"):
        "read only after update() returned a step, and _confirm sets it for that step",
    **{("device/core/gait.py", "if later_energy > 0.0 and earlier_energy > 0.0:", "> -> >=", n):
        "the newest blocks' energy is zero only when their squares underflow, minutes into an exactly-zero input, "
        "when no step asks for the regularity (the guard is what keeps the division by zero out)" for n in (1, 2)},
    **{("device/core/gait.py", "if peak_ms2 < self._min_peak_ms2 or peak_ms2 < RELATIVE_THRESHOLD * recent:", "< -> <=", n):
        "a measured peak exactly at the detection floor or the relative threshold (float equality)" for n in (1, 2)},
    ("device/core/gait.py", "if lo_s <= peak_s <= hi_s and peak_ms2 >= floor and (best is None or peak_ms2 > best[1]):",
     "> -> >="): "two local maxima exactly equal (float equality of measured values)",
    ("device/core/gait.py", "if lo_s <= peak_s <= hi_s and peak_ms2 >= floor and (best is None or peak_ms2 > best[1]):",
     ">= -> >"): "a measured local maximum exactly at the quiet floor (float equality)",
    ("device/core/gait.py", "if lo <= peak_s <= hi and peak_ms2 >= floor and (best is None or peak_ms2 > best[1]):",
     "> -> >="): "two local maxima exactly equal (float equality of measured values)",
    ("device/core/gait.py", "if lo <= peak_s <= hi and peak_ms2 >= floor and (best is None or peak_ms2 > best[1]):",
     ">= -> >"): "a measured local maximum exactly at the faint-step floor (float equality)",
    ("device/core/gait.py", "if since_s < SECOND_PEAK_SHARE[0] * step_s or kept[-1] in seconds:", "< -> <="):
        "a contact exactly 0.2 of a step after a heel strike (float equality of measured times)",
    **{("device/core/gait.py",
        "self._regular_until = (0, 0, 0)  # (step times, steps, missed steps) while the movement was last regular", "0 -> 1", n):
        INIT_OVERWRITTEN + " (a bout's start sets it; only a bout reads it)" for n in (1, 2, 3)},
    ("device/core/gait.py", "self._median_s = 0.0", "0.0 -> 1.0"):
        "read only while in a bout, whose start sets it (the coach reads median_step_s behind in_bout)",
    ("device/core/gait.py", "self._all_intervals = [i / c for i, c in zip(intervals, counts, strict=True)]", "True -> False"):
        "counts is made from intervals, one for one: one length",
    ("device/core/gait.py", "elif self._regularity_avg < IRREGULAR_BELOW and self._off_rhythm_avg >= IRREGULAR_OFF_SHARE:",
     "< -> <="): "a running mean of measured correlations exactly at the level (float equality)",
    ("device/core/gait.py",
     "if step_time_s is None or step_s - pending[-1] > (1.0 + RHYTHM_WINDOW_SHARE) * step_time_s:", "> -> >="):
        "a measured interval exactly at the rhythm window's end (float equality)",
    ("device/core/gait.py",
     "if median_s is not None and regularity is not None and regularity(median_s) < self._min_regularity:", "< -> <="):
        "a measured correlation exactly at min_regularity (float equality)",
    ("device/core/gait.py", "and peaks[first - 1] >= initiation_floor_ms2", ">= -> >"):
        "a measured peak exactly a tenth of the rhythm's median peak (float equality; the coach passes every peak)",
    ("device/core/gait.py", "self._missed_steps = 0", "0 -> 1"):
        INIT_OVERWRITTEN + " (a bout's start sets it; only a bout reads it)",
    ("device/core/gait.py", "median_s = self._rhythm_step_s(window, [p for t, p in zip(window, peaks[-n:], strict=True) "
     "if t not in faint],", "True -> False"): "window is pending[-n:]: both are n long",
    ("device/core/gait.py", "self._all_intervals = [interval / n for interval, n in zip(intervals, whole_steps, strict=True)]",
     "True -> False"): "whole_steps is made from intervals, one for one: one length",
    ("device/core/gait.py", "first_detected: bool = False) -> float | None:", "False -> True"):
        "the one caller always passes first_detected",
    **{("device/core/gait.py", "return step_s if self._min_interval_s <= step_s <= self._max_interval_s else None", "<= -> <", n):
        "a measured step time exactly at the cadence range's end (float equality)" for n in (1, 2)},
    **{("device/core/gait.py", "if not self._min_interval_s <= median_s <= self._max_interval_s:", "<= -> <", n):
        "a measured median exactly at the cadence range's end (float equality)" for n in (1, 2)},
    ("device/core/gait.py", "off = abs(interval / whole_steps - median_s) > OFF_RHYTHM_SHARE * median_s", "> -> >="):
        "a measured step time exactly OFF_RHYTHM_SHARE off the median (float equality)",
    **{("device/core/gait.py", "and SECOND_PEAK_RATIO[0] <= _median(ratios) <= SECOND_PEAK_RATIO[1]):", "<= -> <", n):
        "a measured peak ratio exactly at either end of its range (float equality)" for n in (1, 2)},
    ("device/core/gait.py", "if whole_steps > 1 and (", "> -> >="):
        "in _whole_steps: with whole_steps at 1 both branches return 1",
    ("device/core/gait.py", "whole_steps = max(1, round(interval_s / median_s))", "1 -> 2"):
        "in _whole_steps: an interval under 1.5 step times taken as two steps is over MISSED_STEP_TOLERANCE off "
        "the rhythm, so it counts as one step all the same",
    ("device/core/gait.py", "self.phase = 0", "0 -> 1"):
        "the block grid's phase is wherever the stream started anyway: after a (re)start the first block averages "
        "one sample fewer, one of the window's blocks while the rest are still the restart's zeros",
    ("device/core/gait.py", "if 1 <= lag <= block_means.max_lag and lag < n:", "< -> <="):
        "n is the window's blocks (REGULARITY_WINDOW_S), over twice max_lag (REGULARITY_MAX_LAG_S) at any rate: "
        "lag <= max_lag already keeps lag under n",
    ("device/core/gait.py",
     "def add_step(self, step_s: float, peak_ms2: float = 0.0, regularity=None, contact_s: float | None = None) -> bool:",
     "0.0 -> 1.0"): "every caller passes the step's peak; with all peaks the default, 0 and 1 pass the peak rules alike",
    ("device/core/gait.py", "if missed > 1 or abs(interval / whole_steps - median_s) > self._tolerance * median_s:", "> -> >=",
     2): "the step time exactly rhythm_tolerance off the median (float equality)",
    **{("device/core/gait.py",
        "if first_peak is not None and not INITIATION_PEAK_SHARE * typical_peak <= first_peak <= typical_peak * PEAK_SPREAD:",
        "<= -> <", n): "the first step's measured peak exactly at either end of its range (float equality)" for n in (1, 2)},
    **{("device/core/gait.py", "if interval < DOUBLE_STEP_SHARE * median_s:", "< -> <=", n):
        "a measured interval exactly DOUBLE_STEP_SHARE of the median (float equality)" for n in (1, 2, 3)},
}

COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv,
}
SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
          ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
          ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.And: "and", ast.Or: "or"}


class Mutant(NamedTuple):
    target: Target
    line: int
    what: str
    source: str  # the whole mutated module
    code: str  # the original line, for EQUIVALENT
    occurrence: int = 1  # which of the module's mutants with this code and change (1: the first in its order)
    alike: int = 1  # how many of them there are

    @property
    def equivalent(self) -> str | None:
        key = (self.target.path, self.code, self.what)
        return EQUIVALENT.get((*key, self.occurrence)) or (EQUIVALENT.get(key) if self.alike == 1 else None)


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Docstrings, annotations and f-string parts: text, not behaviour."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                mark(first)
        if isinstance(node, ast.JoinedStr):
            mark(node)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.arg):
            mark(node.annotation)
        if isinstance(node, ast.FunctionDef):
            mark(node.returns)
    return skip


def _in_functions(tree: ast.AST, text: str, names: tuple[str, ...]) -> set[int] | None:
    if not names:
        return None
    lines = text.splitlines()
    inside: set[int] = set()
    for spec in names:
        name, _, marker = spec.partition("@")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == name:
                first = node.lineno
                if marker:
                    first = next(i + 1 for i in range(node.lineno - 1, len(lines)) if marker in lines[i])
                inside.update(id(n) for n in ast.walk(node) if getattr(n, "lineno", first) >= first)
    return inside


def _changes(node: ast.AST) -> list[tuple[str, object]]:
    """(description, how) for each mutation of this node; ``how`` is applied by ``_apply``."""
    out: list[tuple[str, object]] = []
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            if type(op) in COMPARE_SWAPS:
                new = COMPARE_SWAPS[type(op)]
                out.append((f"{SYMBOL[type(op)]} -> {SYMBOL[new]}", ("compare", k, new)))
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        new = BINOP_SWAPS[type(node.op)]
        out.append((f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", ("binop", new)))
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAPS:
        new = BINOP_SWAPS[type(node.op)]
        out.append((f"{SYMBOL[type(node.op)]}= -> {SYMBOL[new]}=", ("augop", new)))
    elif isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        out.append((f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}", ("boolop", new)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        out.append(("not x -> x", ("drop_not",)))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value
        new_value = value + 1 if isinstance(value, int) else (value * 2 if value != 0 else 1.0)
        out.append((f"{value!r} -> {new_value!r}", ("const", new_value)))
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        out.append((f"{node.value} -> {not node.value}", ("const", not node.value)))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        new_name = "max" if node.func.id == "min" else "min"
        out.append((f"{node.func.id}() -> {new_name}()", ("call", new_name)))
    return out


def _apply(node: ast.AST, how: tuple) -> ast.AST:
    kind = how[0]
    if kind == "compare":
        assert isinstance(node, ast.Compare)
        node.ops[how[1]] = how[2]()
    elif kind in ("binop", "augop", "boolop"):
        node.op = how[1]()  # type: ignore[attr-defined]
    elif kind == "drop_not":
        assert isinstance(node, ast.UnaryOp)
        return node.operand
    elif kind == "const":
        assert isinstance(node, ast.Constant)
        node.value = how[1]
    elif kind == "call":
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        node.func.id = how[1]
    return node


class _Replace(ast.NodeTransformer):
    def __init__(self, index: int, how: tuple) -> None:
        self.index, self.how, self.seen = index, how, -1

    def generic_visit(self, node: ast.AST) -> ast.AST:
        self.seen += 1
        if self.seen == self.index:
            node = _apply(node, self.how)
            return node
        return super().generic_visit(node)


def mutants_of(target: Target) -> list[Mutant]:
    text = (ROOT / target.path).read_text()
    tree = ast.parse(text)
    skip = _skipped_nodes(tree)
    inside = _in_functions(tree, text, target.functions)
    out = []
    order = []  # nodes in the order _Replace visits them

    class _Order(ast.NodeVisitor):
        def generic_visit(self, node: ast.AST) -> None:
            order.append(node)
            super().generic_visit(node)

    _Order().visit(tree)
    lines = text.splitlines()
    for index, node in enumerate(order):
        if id(node) in skip or (inside is not None and id(node) not in inside):
            continue
        for what, how in _changes(node):
            mutated = _Replace(index, how).visit(copy.deepcopy(tree))
            ast.fix_missing_locations(mutated)
            line = getattr(node, "lineno", 0)
            out.append(Mutant(target, line, what, ast.unparse(mutated), lines[line - 1].strip() if line else ""))
    alike = Counter((m.code, m.what) for m in out)
    seen: Counter = Counter()
    for i, m in enumerate(out):
        seen[m.code, m.what] += 1
        out[i] = m._replace(occurrence=seen[m.code, m.what], alike=alike[m.code, m.what])
    return out


def stale_equivalents(mutants: list[Mutant]) -> list[tuple]:
    """EQUIVALENT keys of the listed modules that name no mutant (the code moved on), or name several (ambiguous)."""
    paths = {m.target.path for m in mutants}
    counts = Counter()
    for m in mutants:
        key = (m.target.path, m.code, m.what)
        counts[key] += 1
        counts[(*key, m.occurrence)] += 1
    return [key for key in EQUIVALENT if key[0] in paths and counts[key] != 1]


# -- running --------------------------------------------------------------------------------------
def _copy_tree(dest: Path) -> Path:
    """The tree to mutate in ``dest``; returns the folder to put first on the import path."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "mutants", "*.egg-info", "artifacts")
    for name in ("device", "hal", "sim", "tests", "tools", "walkcoach"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore, symlinks=True)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    if (dest / "walkcoach").is_dir():  # one import name: walkcoach.device is the copy's device/ folder
        for name in ("device", "hal", "sim"):
            (dest / "walkcoach" / name).symlink_to(dest / name, target_is_directory=True)
    return dest


def _imports_the_copy(tree: Path, target: Target) -> bool:
    """In a child: does importing the target's module load the copy's file (not the installed tree's)?"""
    module = target.path.removesuffix(".py").replace("/", ".")
    if (tree / "walkcoach").is_dir():
        module = "walkcoach." + module
    pid = os.fork()
    if pid == 0:
        import importlib

        try:
            loaded = os.path.realpath(importlib.import_module(module).__file__ or "")
            os._exit(0 if loaded == os.path.realpath(tree / target.path) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _run_tests(tests: tuple[str, ...], timeout_s: float) -> str:
    """'passed', 'failed' or 'timeout': pytest in a forked child (imports already warm)."""
    pid = os.fork()
    if pid == 0:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests])
        except BaseException:
            code = 99
        os._exit(int(code))
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.02)


def _wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of: {' '.join(t.name for t in TARGETS)}")
    parser.add_argument("--list", action="store_true", help="list the mutants, do not run them")
    parser.add_argument("--min-kill-rate", type=float, default=0.0, metavar="PERCENT",
                        help="exit with status 1 below this kill rate (CI)")
    parser.add_argument("--sample", type=int, metavar="N", help="run a random N of each module's mutants (with a 95 %% interval)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's random seed (default 0)")
    args = parser.parse_args(argv)
    targets = [t for t in TARGETS if not args.modules or t.name in args.modules]
    if not targets:
        parser.error(f"no such module; choose from {' '.join(t.name for t in TARGETS)}")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    mutants, every_mutant = [], []
    for target in targets:
        of_target = mutants_of(target)
        every_mutant.extend(of_target)
        if args.sample is not None and args.sample < len(of_target):
            print(f"{target.name}: a random {args.sample} of its {len(of_target)} mutants (seed {args.seed})", flush=True)
            of_target = sorted(random.Random(args.seed).sample(of_target, args.sample), key=lambda m: m.line)
        mutants.extend(of_target)
    for key in stale_equivalents(every_mutant):
        which = f" #{key[3]}" if len(key) > 3 else ""
        print(f"warning: EQUIVALENT entry {key[:3]}{which} names no single mutant "
              "(the code changed, or the change comes more than once: give which)", file=sys.stderr)
    if args.list:
        for m in mutants:
            print(f"{m.target.path}:{m.line}: {m.what}" + (f"  (equivalent: {m.equivalent})" if m.equivalent else ""))
        print(f"{len(mutants)} mutants")
        return 0

    sys.dont_write_bytecode = True  # a mutant of the same size and second must not reuse a stale .pyc
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="walkcoach-mutants-") as tmp:
        tree = Path(tmp)
        imports = _copy_tree(tree)
        os.chdir(tree)
        sys.path.insert(0, str(imports))  # before the installed walkcoach: the copy is what the tests import
        import hypothesis  # noqa: F401  (warm: every child inherits these imports)
        import numpy  # noqa: F401
        import pytest  # noqa: F401

        survivors: list[Mutant] = []
        totals: dict[str, list[int]] = {}
        for target in targets:
            if not _imports_the_copy(tree, target):
                print(f"{target.name}: the tests would not import the mutated copy of {target.path}", file=sys.stderr)
                return 2
            started = time.monotonic()
            if _run_tests(target.tests, 600.0) != "passed":
                print(f"{target.name}: its tests fail without any mutation; fix them first", file=sys.stderr)
                return 2
            timeout_s = 3.0 * (time.monotonic() - started) + 10.0
            original = (tree / target.path).read_text()
            killed = total = equivalent = 0
            for m in (m for m in mutants if m.target is target):
                (tree / target.path).write_text(m.source)
                outcome = _run_tests(target.tests, timeout_s)
                total += 1
                if outcome != "passed":
                    killed += 1
                elif m.equivalent:
                    equivalent += 1
                    print(f"equivalent {m.target.path}:{m.line}: {m.what} ({m.equivalent})", flush=True)
                else:
                    survivors.append(m)
                    print(f"SURVIVED {m.target.path}:{m.line}: {m.what}   [{m.code}]", flush=True)
            (tree / target.path).write_text(original)
            totals[target.name] = [killed, total, equivalent]
            print(f"{target.name}: {killed}/{total - equivalent} killed ({100.0 * killed / max(total - equivalent, 1):.0f} %)"
                  f"; {equivalent} equivalent; {time.monotonic() - started:.0f} s", flush=True)
        killed = sum(k for k, _, _ in totals.values())
        total = sum(n for _, n, _ in totals.values())
        equivalent = sum(e for _, _, e in totals.values())
        rate = 100.0 * killed / max(total - equivalent, 1)
        print(f"all: {killed}/{total - equivalent} mutants killed ({rate:.1f} %), {len(survivors)} survived, "
              f"{equivalent} equivalent left out ({killed}/{total} = {100.0 * killed / max(total, 1):.1f} % counting them)")
        if args.sample is not None:
            low, high = _wilson_interval(killed, total - equivalent)
            print(f"sampled: the module's kill rate is {100 * low:.0f}-{100 * high:.0f} % (95 % Wilson interval)")
    return 1 if rate < args.min_kill_rate else 0


if __name__ == "__main__":
    sys.exit(main())
