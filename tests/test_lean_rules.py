"""The lean detector's rules one at a time, on lean values fed straight in (device/posture.py).

Times are multiples of 0.25 s (exact in binary), so "at the hold" means at it, not a sample later.
The expectations are the rules' own numbers: 15 deg threshold, 5 deg hysteresis, 5 s hold,
30 s repeat, a first-order low-pass with a 0.25 s time constant.
"""

import dataclasses
import math

import pytest

from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.posture import LeanDetector
from walkcoach.device.core.settings import LeanSettings

RATE_HZ = 4.0  # one sample every 0.25 s
STEP_S = 1.0 / RATE_HZ


def _detector(**settings) -> LeanDetector:
    return LeanDetector(dataclasses.replace(LeanSettings(filter_s=0.05), **settings), RATE_HZ)


def _feed(detector, start_s, end_s, lean_deg, coachable=True):
    events = []
    for k in range(int(round((end_s - start_s) / STEP_S))):
        t_s = start_s + k * STEP_S
        lean = lean_deg(t_s) if callable(lean_deg) else lean_deg
        ok = coachable(t_s) if callable(coachable) else coachable
        event = detector.update(t_s, lean, ok)
        if event is not None:
            events.append(event)
    return events


def _at(events, kind):
    return [e.t_s for e in events if e.kind is kind]


def test_the_first_lean_is_taken_as_it_is_not_smoothed_up_from_zero():
    detector = LeanDetector(LeanSettings(), RATE_HZ)  # a slow filter: 0.25 s at 4 Hz
    event = detector.update(0.0, 20.0, True)
    assert detector.lean_deg == 20.0 and event is not None and event.kind is EventKind.LEAN_STARTED


def test_after_a_gap_the_next_lean_is_taken_as_it_is():
    detector = LeanDetector(LeanSettings(), RATE_HZ)
    _feed(detector, 0.0, 5.0, 0.0)
    detector.restart_filter()
    detector.update(5.0, 20.0, True)
    assert detector.lean_deg == 20.0


def test_the_filter_reaches_63_percent_of_a_step_in_one_time_constant():
    filter_s = 2.0
    detector = LeanDetector(LeanSettings(filter_s=filter_s, threshold_deg=45.0), 100.0)
    detector.update(0.0, 0.0, True)
    for k in range(1, int(filter_s * 100.0) + 1):
        detector.update(k / 100.0, 20.0, True)
    assert detector.lean_deg == pytest.approx(20.0 * (1.0 - math.exp(-1.0)), rel=0.01)


def test_upright_samples_from_the_start_give_no_event():
    assert _feed(_detector(), 0.0, 30.0, 0.0) == []


def test_a_lean_at_the_threshold_is_not_a_lean_and_above_it_is():
    assert _feed(_detector(), 0.0, 20.0, 15.0) == []
    assert _at(_feed(_detector(), 0.0, 20.0, 15.5), EventKind.LEAN_STARTED) == [0.0]


def test_a_lean_clears_below_the_hysteresis_not_at_it():
    detector = _detector()
    assert _at(_feed(detector, 0.0, 2.0, 20.0), EventKind.LEAN_STARTED) == [0.0]
    assert _feed(detector, 2.0, 4.0, 10.0) == []  # at 15 - 5: still leaning
    assert _at(_feed(detector, 4.0, 5.0, 9.5), EventKind.LEAN_CLEARED) == [4.0]


def test_the_cue_comes_at_the_hold_then_every_repeat():
    events = _feed(_detector(), 0.0, 70.0, 20.0)
    assert _at(events, EventKind.LEAN_HELD) == [5.0, 35.0, 65.0]


def test_the_hold_counts_coachable_time_only():
    """Not coachable (stairs, standing) from 2 s to 5 s: the 5 s hold ends 3 s later, at 8 s."""
    events = _feed(_detector(), 0.0, 20.0, 20.0, coachable=lambda t: not 2.0 <= t < 5.0)
    assert _at(events, EventKind.LEAN_HELD) == [8.0]


def test_a_lean_starting_late_in_a_run_is_held_from_its_own_start():
    detector = _detector()
    _feed(detector, 0.0, 100.0, 0.0)
    events = _feed(detector, 100.0, 120.0, 20.0, coachable=lambda t: not 100.25 <= t < 101.0)
    assert _at(events, EventKind.LEAN_HELD) == [105.75]  # 0.75 s of the hold not coachable


def test_hold_off_restarts_the_hold_and_never_brings_a_repeat_forward():
    detector = _detector()
    _feed(detector, 0.0, 3.0, 20.0)
    detector.hold_off(3.0)  # a step on the stairs at 3 s: a whole hold from there
    events = _feed(detector, 3.0, 10.0, 20.0)
    assert _at(events, EventKind.LEAN_HELD) == [8.0]
    detector.hold_off(9.0)  # after the cue: the repeat stays due at 38 s, not 14 s
    events = _feed(detector, 10.0, 40.0, 20.0)
    assert _at(events, EventKind.LEAN_HELD) == [38.0]


def test_hold_off_while_upright_changes_nothing():
    detector = _detector()
    _feed(detector, 0.0, 3.0, 0.0)
    detector.hold_off(3.0)
    assert _at(_feed(detector, 3.0, 12.0, 20.0), EventKind.LEAN_HELD) == [8.0]


def test_at_most_the_limit_of_cues_in_any_ten_minutes_then_again_when_the_oldest_leaves():
    events = _feed(_detector(max_cues_per_10min=3, repeat_s=30.0), 0.0, 700.0, 20.0)
    assert _at(events, EventKind.LEAN_HELD) == [5.0, 35.0, 65.0, 605.0, 635.0, 665.0]


def test_the_cue_says_how_long_the_lean_was_held_and_the_episode_its_peak():
    detector = _detector()
    _feed(detector, 0.0, 10.0, 0.0)
    events = _feed(detector, 10.0, 16.0, lambda t: 20.0 if t < 13.0 else 25.0)
    (held,) = [e for e in events if e.kind is EventKind.LEAN_HELD]
    assert held.t_s == 15.0 and held.cue is Cue.STRAIGHTEN_UP and "for 5 s" in held.why and "25°" in held.why
    (cleared,) = _feed(detector, 16.0, 17.0, 0.0)
    assert cleared.lean.start_s == 10.0 and cleared.lean.end_s == 16.0 and cleared.lean.max_deg == 25.0
    assert "upright again after 6 s" in cleared.why
    assert cleared.lean.cued and cleared.cue is Cue.UPRIGHT_AGAIN


def test_an_episode_without_a_cue_clears_without_the_upright_again_cue():
    detector = _detector()
    _feed(detector, 0.0, 3.0, 20.0)
    (cleared,) = _feed(detector, 3.0, 4.0, 0.0)
    assert cleared.cue is None and not cleared.lean.cued
    assert detector.open_episode(4.0) is None


def test_ending_the_episode_at_shutdown_returns_it_once_and_leaves_no_lean():
    detector = _detector()
    _feed(detector, 0.0, 3.0, 20.0)
    episode = detector.end_episode(3.0)
    assert episode is not None and episode.start_s == 0.0 and episode.end_s == 3.0
    assert not detector.leaning and detector.end_episode(4.0) is None
