"""Simulated sessions shared by the scenario tests (each run once per test session)."""

from __future__ import annotations

import functools

import numpy as np

from walkcoach.device.core.gait import BoutTracker
from walkcoach.device.core.settings import DeviceSettings, GaitSettings
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.mount import Mount

SEEDS = range(5)
WALKING_SCENARIOS = ("upright-walk", "leaning-walk", "bend-and-go", "lbp-walk", "slow-walk", "full-session")


@functools.cache
def simulated(scenario: str, seed: int, mount: tuple[str, str] = ("+x", "+z"), via_chip: bool = False):
    return run_simulation(DeviceSettings(), scenario=scenario, seed=seed, mount=Mount(*mount), via_chip=via_chip)


def truth_time_of_walk(truth, t_s: np.ndarray, walk_s: float) -> float:
    """The moment the true walk time (the sum of the true bouts: first heel strike to the contact before the
    closing one) reaches ``walk_s``."""
    walked_s = 0.0
    for start_s, end_s in truth.bouts_s:
        if walked_s + (end_s - start_s) >= walk_s:
            return start_s + (walk_s - walked_s)
        walked_s += end_s - start_s
    return float(t_s[-1])


def finished_bout(step_times_s, peak_ms2: float = 1.0):
    """The bout a BoutTracker makes of these step times once it has seen the walk end (None: no bout)."""
    tracker = BoutTracker(GaitSettings())
    for step_s in step_times_s:
        tracker.add_step(step_s, peak_ms2)
    t_s = step_times_s[-1]
    while not tracker.check_end(t_s):
        t_s += 0.01
    return tracker.end()
