"""A walking bout's cadence (issue 9: cadence error <= 5 % per reference bout found).

The reference's cadence comes from its initial contacts (the INDIP's, mobgap's ``CadFromIc``). A bout's
contacts are not one regular step time: an asymmetric walker's alternate steps are unalike, a walk
speeds up and slows down, gait initiation and termination are slower, a bout holds pauses of up to
3 s and, now and then, a contact the detector missed. Contacts are fed to BoutTracker as the coach
feeds them (each known ``step_latency_s`` later), the movement regular at their step time; the true
cadence is the walker's own, in steps a minute of walking.
"""

from __future__ import annotations

import numpy as np
import pytest

from walkcoach.device.core.gait import BoutTracker
from walkcoach.device.core.settings import GaitSettings

TICK_S = 0.01
PEAK_MS2 = 2.0


def _bout(contacts_s):
    tracker, bouts = BoutTracker(GaitSettings()), []
    pending = list(contacts_s)
    t_s = pending[0] + tracker.step_latency_s
    while pending or tracker.in_bout:
        if pending and pending[0] + tracker.step_latency_s <= t_s:
            tracker.add_step(pending.pop(0), PEAK_MS2, regularity=lambda _step_s: 0.9)
        elif tracker.in_bout and tracker.check_end(t_s):
            bouts.append(tracker.end())
        t_s += TICK_S
    (bout,) = bouts
    return bout


def _contacts(step_times_s, start_s=10.0):
    return list(start_s + np.concatenate([[0.0], np.cumsum(step_times_s)]))


@pytest.mark.parametrize("steps", [11, 16])
def test_an_asymmetric_walker_has_the_cadence_of_its_strides(steps):
    """Alternate steps of 0.5 and 0.7 s (a stride of 1.2 s: 100 steps a minute), then the closing step.
    A median step time is one side's step time for an odd count of steps (120 or 86 a minute)."""
    step_times_s = [0.5 if i % 2 else 0.7 for i in range(steps)] + [0.65]
    bout = _bout(_contacts(step_times_s))
    assert bout.cadence_spm == pytest.approx(100.0, rel=0.02)


def test_pauses_missed_contacts_and_slow_ends_do_not_pull_the_cadence_down():
    """24 steps at 0.6 s (100 a minute) with a 2.2 s pause (a look around), one contact missed (a 1.2 s
    interval), a slower first step of gait initiation and the last stride of termination slower: the walk's
    cadence is the walking's, not its contacts over its duration (86 a minute here)."""
    step_times_s = [0.8] + [0.6] * 8 + [2.2] + [0.6] * 6 + [1.2] + [0.6] * 6 + [0.7, 0.75, 0.7]
    bout = _bout(_contacts(step_times_s))
    assert bout.cadence_spm == pytest.approx(100.0, rel=0.02)
    contacts = len(bout.step_times_s)
    assert (contacts - 1) * 60.0 / (bout.end_s - bout.start_s) < 90.0  # what a plain rate would give


def test_a_walk_that_speeds_up_has_its_cadence_between_its_ends():
    """Step times falling from 0.7 to 0.5 s over 20 steps: the cadence lies between the ends' (86 and 120
    a minute), near the walk's own mean rate, not at either end."""
    step_times_s = list(np.linspace(0.7, 0.5, 20)) + [0.6]
    contacts_s = _contacts(step_times_s)
    bout = _bout(contacts_s)
    walking_rate_spm = 60.0 * 19 / (contacts_s[19] - contacts_s[0])  # the walk's steps over its span
    assert 86.0 < bout.cadence_spm < 120.0
    assert bout.cadence_spm == pytest.approx(walking_rate_spm, rel=0.03)
