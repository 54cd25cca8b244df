"""The real lower-back recordings, for the tests: found in tests/data/real/ (when copied into the
project) or else in the shared folder beside the checkout; read as `walkcoach replay` reads them."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLACES = (ROOT / "tests" / "data" / "real", ROOT.parent / "shared" / "real")

TEST5_TRIALS = ("mobgap-lab/HA001_Test5_Trial1.csv", "mobgap-lab/HA001_Test5_Trial2.csv")
DAILY_LIVING = "mobgap-lab/HA001_Test11_Trial1.csv"  # starts seated
GAITPY_DEMO = "gaitpy-demo/demo.csv"  # three walks, no reference


def real_path(name: str) -> Path:
    for place in PLACES:
        path = place / name
        if path.exists():
            return path
    pytest.skip(f"real recording {name} not found in {' or '.join(str(p) for p in PLACES)}")


@cache
def body_frame(name: str):
    """(t_s, gravity_ms2, linear_acc_ms2) in the body frame, as `walkcoach replay --units g` estimates it."""
    from walkcoach.device.offline.replay import read_recording

    rec = read_recording(real_path(name), units="g")
    return rec.t_s, np.asarray(rec.gravity_ms2), np.asarray(rec.linear_acc_ms2)


def lean_profile_deg(t_s: np.ndarray, start_s: float, angle_deg: float, hold_s: float, ramp_s: float = 1.0) -> np.ndarray:
    """0 -> angle over ``ramp_s`` (raised cosine), held ``hold_s``, back to 0 over ``ramp_s``."""
    def ramp(u):
        return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))

    return angle_deg * (ramp((t_s - start_s) / ramp_s) - ramp((t_s - start_s - ramp_s - hold_s) / ramp_s))


def with_lean(gravity: np.ndarray, linear: np.ndarray, lean_deg: np.ndarray):
    """The trunk (and the belt on it) pitched forward by ``lean_deg`` about the body's left axis: what the
    sensor measures turns the other way, gravity (pointing up) tipping backwards."""
    th = np.radians(lean_deg)
    c, s = np.cos(th), np.sin(th)

    def pitch(v):
        out = v.copy()
        out[:, 0] = c * v[:, 0] - s * v[:, 2]
        out[:, 2] = s * v[:, 0] + c * v[:, 2]
        return out

    return pitch(gravity), pitch(linear)


# The sensor worn rotated on the body while configured flat: body-frame vectors -> what it reports.
WORN = {
    "as-configured": np.eye(3),
    "sideways": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # forward shows on +y
    "upside-down": np.diag([1.0, -1.0, -1.0]),  # turned over about the forward axis
    "turned-round-upside-down": np.diag([-1.0, 1.0, -1.0]),
}


def coach_over(t_s, gravity, linear, worn: str = "as-configured"):
    """The coach over the samples (default settings, a cap no walk reaches); its events and itself."""
    from walkcoach.device.core.coach import Coach
    from walkcoach.device.core.settings import CoachSettings
    from walkcoach.hal.types import ImuSample

    rotation = WORN[worn]
    gravity, linear = gravity @ rotation, linear @ rotation
    coach = Coach(CoachSettings(), rate_hz=round(1.0 / float(np.median(np.diff(t_s)))), cap_s=math.inf)
    zero = (0.0, 0.0, 0.0)
    events = []
    coach.lean_deg = lean_deg = np.full(len(t_s), np.nan)  # per sample, once lean is coachable
    for i, (t, g, a) in enumerate(zip(t_s.tolist(), map(tuple, gravity.tolist()), map(tuple, linear.tolist()), strict=True)):
        events.extend(coach.update(ImuSample(t, g, a, zero, 3)))
        if coach.upright.coachable:
            lean_deg[i] = coach.lean.lean_deg
    events.extend(coach.finish(float(t_s[-1])))
    return events, coach


def cue_times(events, cue) -> list[float]:
    return [e.t_s for e in events if e.cue is cue]


def _report() -> None:
    """`python -m tests.real_data`: cue counts on the unmodified recordings and the injected leans' latency."""
    from walkcoach.device.core.events import Cue
    from walkcoach.device.core.settings import LeanSettings

    lean = LeanSettings()
    for name in (*TEST5_TRIALS, DAILY_LIVING, GAITPY_DEMO):
        for worn in WORN:
            events, coach = coach_over(*body_frame(name), worn=worn)
            print(f"{name:40s} {worn:26s} straighten_up {len(cue_times(events, Cue.STRAIGHTEN_UP))}"
                  f"  belt_moved {len(cue_times(events, Cue.BELT_MOVED))}  upright {coach.upright.source}")
    t_s, gravity, linear = body_frame(GAITPY_DEMO)
    for worn in WORN:
        for start_s in (72.0, 132.0):
            for angle_deg, hold_s in ((lean.threshold_deg + 5, 10.0), (lean.threshold_deg + 15, 10.0), (-25.0, 12.0),
                                      (lean.threshold_deg - 3, 15.0), (25.0, lean.hold_s - 1.5)):
                profile = lean_profile_deg(t_s, start_s, angle_deg, hold_s)
                events, _ = coach_over(t_s, *with_lean(gravity, linear, profile), worn=worn)
                cues = cue_times(events, Cue.STRAIGHTEN_UP)
                crossed = profile > lean.threshold_deg
                after = f"{cues[0] - float(t_s[np.argmax(crossed)]):.2f} s after crossing" if cues and crossed.any() else ""
                print(f"demo {worn:26s} lean {angle_deg:+5.0f} deg from {start_s:.0f} s held {hold_s:4.1f} s: "
                      f"{len(cues)} cue(s) {after}")


def _sim_report() -> None:
    """`python -m tests.real_data --sim`: the simulator's held leans (cue - due), belt and stair figures."""
    from tests.sim_runs import SEEDS, simulated
    from tests.test_posture_scenarios import _due_s

    for scenario in ("leaning-walk", "full-session", "seated-start", "belt-rotation", "belt-slip", "stairs"):
        late_s, cues, moved_s, found, flights = [], 0, [], 0, 0
        for seed in SEEDS:
            run = simulated(scenario, seed)
            straighten = [t for t, k, _ in run.summary.cues if k == "straighten_up"]
            cues += len(straighten)
            late_s += [min((c - _due_s(run, e) for c in straighten), key=abs, default=np.nan)
                       for e in run.walk.truth.lean_episodes]
            moved_s += [round(t - run.walk.truth.belt_moves[0][0], 1) for t, k, _ in run.summary.cues
                        if k == "belt_moved" and run.walk.truth.belt_moves]
            found += len(run.coach.stairs.flight_starts_s)
            flights += len(run.walk.truth.stair_flights)
        late = f"cue - due {np.nanmin(late_s):+.2f}..{np.nanmax(late_s):+.2f} s" if late_s else ""
        print(f"{scenario:14s} held leans {len(late_s)} {late}; straighten_up cues {cues}; "
              f"belt_moved after the move started {moved_s} s; stair flights recognised {found} of {flights}")


if __name__ == "__main__":
    import sys

    _sim_report() if "--sim" in sys.argv else _report()
