"""The faint peaks StepDetector offers the bout rules, from a synthetic vertical acceleration.

At each heel strike the pelvis is pushed upward: a peak of vertical acceleration per step (Zijlstra & Hof
2003), zero on average over the step (the trunk neither rises nor falls over a walk). While standing, sway
and noise give small peaks of their own. The detector's floors for faint contacts are set by those: the
typical peak while not walking (the quiet level), and the walk's own step peaks.
"""

from __future__ import annotations

import numpy as np

from walkcoach.device.core.gait import StepDetector
from walkcoach.device.core.settings import GaitSettings

RATE_HZ = 100.0
STEP_S = 0.55  # ~110 steps/min
PULSE_S = 0.06  # the heel strike's push, spread by the loading response
STRONG_MS2 = 2.0  # a daily-living heel strike's peak
SWAY_MS2 = 0.05  # the peaks of standing sway: under the detection floor (min_peak_ms2 0.12)


def _acceleration(contacts, sway, duration_s):
    """(t, vertical acceleration) with a pulse [(time, peak)] at each contact, zero-mean over its step (the
    pelvis falls between the pushes), and a bare one at each sway peak."""
    t = np.arange(0.0, duration_s, 1.0 / RATE_HZ)
    acc = np.zeros_like(t)
    for centre_s, peak_ms2 in contacts + sway:
        acc += peak_ms2 * np.exp(-0.5 * ((t - centre_s) / PULSE_S) ** 2)
    for centre_s, peak_ms2 in contacts:
        acc[np.abs(t - centre_s) < STEP_S / 2] -= peak_ms2 * np.sqrt(2.0 * np.pi) * PULSE_S / STEP_S
    return t, acc


def _standing(until_s, seed=0):
    """Sway peaks 0.9-1.5 s apart from 1 s to ``until_s`` (the walker stood half a minute)."""
    rng = np.random.default_rng(seed)
    peaks, t_s = [], 1.0
    while t_s < until_s:
        peaks.append((t_s, SWAY_MS2))
        t_s += rng.uniform(0.9, 1.5)
    return peaks


def _detect(contacts, sway, duration_s):
    detector = StepDetector(GaitSettings(), RATE_HZ)
    t, acc = _acceleration(contacts, sway, duration_s)
    steps = [step_s for t_s, a in zip(t, acc, strict=True) if (step_s := detector.update(t_s, a)) is not None]
    return detector, steps


WALK_START_S = 31.0
WALK = [(WALK_START_S + i * STEP_S, STRONG_MS2) for i in range(10)]
FAINT_LAST = [(WALK_START_S + 10 * STEP_S, 0.25 * STRONG_MS2), (WALK_START_S + 11 * STEP_S, 0.2 * STRONG_MS2)]


def test_a_walks_faint_last_stride_is_found_at_its_contacts():
    """Gait termination slows the last stride and its heel strikes fade (here to a quarter and a fifth of the
    walk's, under the detection threshold's share of recent steps): the detector offers them at their own
    contacts, within two samples, so the bout ends where the walker stopped."""
    detector, steps = _detect(WALK + FAINT_LAST, _standing(30.0), WALK_START_S + 16.0)
    assert len(steps) == len(WALK)
    found = detector.faint_steps_after(steps[-1], STEP_S, GaitSettings().rhythm_tolerance)
    assert len(found) == len(FAINT_LAST)
    for found_s, (true_s, _) in zip(found, FAINT_LAST, strict=True):
        assert abs(found_s - true_s) <= 2.0 / RATE_HZ


def test_past_the_last_stride_a_faint_peak_in_rhythm_is_a_weight_shift_not_a_step():
    """Stopping is done within two steps of its start (the stopping step and the closing one: Jaeger &
    Vanitchatchavan 1992): a third faint peak a step later is the walker shifting weight while standing, not
    a step, and is not offered."""
    weight_shift = [(WALK_START_S + 12 * STEP_S, 0.2 * STRONG_MS2)]
    detector, steps = _detect(WALK + FAINT_LAST + weight_shift, _standing(30.0), WALK_START_S + 16.0)
    found = detector.faint_steps_after(steps[-1], STEP_S, GaitSettings().rhythm_tolerance)
    assert len(found) == len(FAINT_LAST)
    for found_s, (true_s, _) in zip(found, FAINT_LAST, strict=True):
        assert abs(found_s - true_s) <= 2.0 / RATE_HZ


def test_a_peak_little_above_standing_sway_is_no_faint_contact_and_one_well_above_is():
    """While standing, a peak 1.3 times the typical sway peak is sway (its peaks vary that much): the rhythm
    may not take it as a faint contact. One twice the sway peak stands out, as a faint heel strike does."""
    sway = _standing(5.0)  # a few seconds of standing are enough to know its level
    for times_sway, is_contact in ((1.3, False), (2.0, True)):
        peak_s = 6.0
        detector, steps = _detect([], sway + [(peak_s, times_sway * SWAY_MS2)], 7.0)
        assert steps == []
        found = detector.rhythm_peak(peak_s - 0.15, peak_s + 0.15)
        assert (found is not None) == is_contact, times_sway
        if found is not None:
            assert abs(found[0] - peak_s) <= 2.0 / RATE_HZ
