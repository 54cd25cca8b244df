"""How a bout starts, told from the walk's own contacts: detected steps fed to BoutTracker as the coach feeds
them (each known ``step_latency_s`` after its contact, with its peak), the movement regular at their step time.
Step times vary from step to step as a real walk's do (a coefficient of variation of 2-4 %, Hausdorff 2005).

A walk's last contact is its closing step (gait termination), which starts no stride: the bout ends at the
contact before it (the Mobilise-D end), and its steps are its contacts up to there.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from walkcoach.device.core.gait import BoutTracker
from walkcoach.device.core.settings import GaitSettings

TICK_S = 0.01
PEAK_MS2 = 2.0


def _walk(step_s, steps, start_s=10.0, cv=0.03, seed=0):
    """Contact times of a walk of ``steps`` steps and its closing step, step times varying by ``cv``."""
    step_times_s = step_s * (1.0 + cv * np.random.default_rng(seed).standard_normal(steps))
    return [start_s, *(start_s + np.cumsum(step_times_s))]


def _feed(contacts_s):
    """Feed ``contacts_s`` tick by tick; returns (the contacts whose add_step said a bout started, bouts)."""
    tracker, started, bouts = BoutTracker(GaitSettings()), [], []
    pending = sorted(contacts_s)
    t_s = pending[0] + tracker.step_latency_s
    while pending or tracker.in_bout:
        if pending and pending[0] + tracker.step_latency_s <= t_s:
            step_s = pending.pop(0)
            if tracker.add_step(step_s, PEAK_MS2, regularity=lambda _step_s: 0.9):
                started.append(step_s)
        elif tracker.in_bout and tracker.check_end(t_s):
            bouts.append(tracker.end())
        t_s += TICK_S
    return started, bouts


@pytest.mark.parametrize("cadence_spm", [40.0, 110.0, 180.0])
def test_a_walk_starts_its_bout_once_at_its_sixth_contact(cadence_spm):
    """A walk of 20 steps starts one bout, known at its sixth contact (four strides, the Mobilise-D minimum);
    the steps after it continue that bout, they start none (the coach starts the walk's time and posture
    coaching once)."""
    contacts_s = _walk(60.0 / cadence_spm, 20)
    started, bouts = _feed(contacts_s)
    assert started == [contacts_s[5]]
    assert [(b.steps, b.start_s, b.end_s) for b in bouts] == [(20, contacts_s[0], contacts_s[-2])]


@pytest.mark.parametrize("missed", [1, 2, 4])
def test_a_contact_missed_among_the_opening_steps_leaves_the_bouts_step_times_as_walked(missed):
    """A steady walk (step times varying 3 %) whose detector missed one heel strike among the six contacts
    that open its bout: the interval across the missed step is two step times, so the bout's step-time
    variation is the walk's own, not that of a walker who paused."""
    contacts_s = _walk(0.55, 16)
    seen = contacts_s[:missed] + contacts_s[missed + 1 :]
    _, (bout,) = _feed(seen)
    walked = np.diff(contacts_s[:-1])
    true_cv = statistics.pstdev(walked) / statistics.fmean(walked)
    assert bout.steps == 16
    assert bout.step_time_cv == pytest.approx(true_cv, abs=0.005)  # one interval split in two equal steps
