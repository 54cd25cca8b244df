"""Simulated sessions shared by the scenario tests (each run once per test session)."""

from __future__ import annotations

import functools

import numpy as np

from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.mount import Mount

SEEDS = range(5)
WALKING_SCENARIOS = ("upright-walk", "leaning-walk", "bend-and-go", "lbp-walk", "slow-walk", "full-session")


@functools.cache
def simulated(scenario: str, seed: int, mount: tuple[str, str] = ("+x", "+z"), via_chip: bool = False):
    return run_simulation(DeviceSettings(), scenario=scenario, seed=seed, mount=Mount(*mount), via_chip=via_chip)


def truth_time_of_walk(truth, t_s: np.ndarray, walk_s: float) -> float:
    """The moment the true walk time (the sum of the true bouts, first to last heel strike) reaches ``walk_s``."""
    walked_s = 0.0
    for start_s, end_s in truth.bouts_s:
        if walked_s + (end_s - start_s) >= walk_s:
            return start_s + (walk_s - walked_s)
        walked_s += end_s - start_s
    return float(t_s[-1])
