"""How a bout starts on a walk whose first step is faint (issue 9, gait initiation).

A walk starts from standing: its first heel strike comes at a fraction of the walking speed, and the
first step brings the body near its steady speed (Brenière & Do 1986, Jian et al. 1993). So the walk's
first contact may peak far under its others (the simulated daily-living walks' first steps: 0.2-0.3 of
their median), while the contacts that start a bout must otherwise be alike (within PEAK_SPREAD of
their median: fidgeting is irregular in force). Contacts are fed to BoutTracker as the coach feeds
them (each with its peak, known ``step_latency_s`` later), the movement regular at their step time.
"""

from __future__ import annotations

import pytest

from walkcoach.device.core.gait import BoutTracker
from walkcoach.device.core.settings import GaitSettings

TICK_S = 0.01
STEP_S = 0.55  # ~110 steps/min
STRONG_MS2 = 2.0  # a daily-living heel strike's peak (the simulator's walks: 1-2.3 m/s2)
FIRST_STEP_MS2 = 0.3  # the walk's first step: 0.15 of its others, inside a walk's tenfold range, outside PEAK_SPREAD's


def _bouts(contacts):
    """Bouts a BoutTracker makes of ``contacts`` [(time, peak)], its end checked every tick."""
    tracker, bouts = BoutTracker(GaitSettings()), []
    pending = sorted(contacts)
    t_s = pending[0][0] + tracker.step_latency_s
    while pending or tracker.in_bout:
        if pending and pending[0][0] + tracker.step_latency_s <= t_s:
            step_s, peak_ms2 = pending.pop(0)
            tracker.add_step(step_s, peak_ms2, regularity=lambda _step_s: 0.9)
        elif tracker.in_bout and tracker.check_end(t_s):
            bouts.append(tracker.end())
        t_s += TICK_S
    return bouts


def _walk(start_s, peaks_ms2):
    return [(start_s + i * STEP_S, peak) for i, peak in enumerate(peaks_ms2)]


@pytest.mark.parametrize("before", ["standing still", "a foot shifted while standing"])
def test_a_short_walk_whose_first_step_is_faint_is_counted_from_that_step(before):
    """A 7-step walk (the shortest bouts of daily living), its first heel strike at 0.15 of the others'
    and its last at 0.25 (gait termination's closing step, as the simulated walks'): one bout from the first
    contact to the one before the closing step (the Mobilise-D end), 6 steps. The rule before counted none:
    the first six contacts failed the peak spread and the last six did too."""
    walk = _walk(10.0, [FIRST_STEP_MS2] + [STRONG_MS2] * 5 + [0.25 * STRONG_MS2])
    shifted = [(10.0 - 2.6, 1.2)] if before == "a foot shifted while standing" else []  # not a step of this walk's rhythm
    (bout,) = _bouts(shifted + walk)
    assert (bout.steps, bout.start_s, bout.end_s) == (6, walk[0][0], walk[-2][0])


@pytest.mark.parametrize("first_ms2", [0.05 * STRONG_MS2, 5.0 * STRONG_MS2])
def test_a_contact_fainter_than_a_tenth_of_the_walk_or_far_stronger_is_not_its_first_step(first_ms2):
    """A walk's peaks vary up to tenfold; a contact fainter than that before it is sway or noise, and one
    far stronger (a knock, a foot stamped) is not the gentler first step either: no bout on the first six
    contacts; it starts once six alike contacts have come (here, a step later) and ends at the contact
    before the last (the walk's closing step)."""
    walk = _walk(10.0, [first_ms2] + [STRONG_MS2] * 5)
    assert _bouts(walk) == []
    (bout,) = _bouts(walk + _walk(10.0 + 6 * STEP_S, [STRONG_MS2]))
    assert bout.end_s == 10.0 + 5 * STEP_S


def test_only_the_walks_first_contact_may_be_that_faint():
    """The allowance is for the step from standing, not for any faint contact that happens to be the
    oldest of six: a faint contact one step time after a strong one (in the rhythm, so not a first step)
    followed by five strong ones is no alike six, and neither is one in the middle. The rhythm's contacts
    with a tenfold spread inside them are the irregular force of fidgeting; once six alike contacts
    have come the bout starts and takes the earlier ones in (gait initiation)."""
    faint_second = _walk(10.0, [STRONG_MS2, FIRST_STEP_MS2] + [STRONG_MS2] * 5)
    assert _bouts(faint_second) == []
    faint_in_the_middle = _walk(10.0, [STRONG_MS2] * 3 + [FIRST_STEP_MS2] + [STRONG_MS2] * 2)
    assert _bouts(faint_in_the_middle) == []
    (bout,) = _bouts(faint_second + _walk(10.0 + 7 * STEP_S, [STRONG_MS2]))
    assert (bout.steps, bout.start_s) == (7, faint_second[0][0])



def test_a_noise_peak_that_opens_the_bout_just_before_a_heel_strike_gives_way_to_it():
    """Opened a contact early (on a faint first step), a bout may open on a noise peak 0.2 s before the sixth
    heel strike (a slow walker's pelvis barely moves: peaks at the floor come before a strike). When the strike
    comes, one step after a step in the rhythm, it is the step, as later in a bout (_retime_last_step); the
    count does not change. Before a bout, the pending contacts would have merged the two. (The walk's last
    contact is its closing step, not a step of the bout.)"""
    walk = _walk(10.0, [FIRST_STEP_MS2] + [STRONG_MS2] * 9)
    noise_s = walk[5][0] - 0.2
    (bout,) = _bouts(walk + [(noise_s, 0.4 * STRONG_MS2)])
    assert bout.steps == len(walk) - 1
    assert bout.step_times_s == tuple(t for t, _ in walk[:-1])


@pytest.mark.parametrize("missed", [2, 4, 12])
def test_a_contact_missed_among_the_opening_steps_is_counted_as_one_missed_later(missed):
    """A 16-step walk (and its closing step) with one heel strike the detector did not see: among the six
    contacts that open the bout (the rhythm allows one interval of two step times there) or later in
    it, the bout has the walk's 16 steps, to the contact before the closing one. Undercounting is not a
    safe error: the cap would allow more walking than planned."""
    walk = _walk(10.0, [STRONG_MS2] * 17)
    seen = walk[:missed] + walk[missed + 1 :]
    (bout,) = _bouts(seen)
    assert (bout.steps, bout.start_s, bout.end_s) == (16, walk[0][0], walk[-2][0])


def test_the_slow_first_step_of_gait_initiation_is_one_step_not_a_missed_one():
    """The first step from standing may take up to 1.7 step times (it accelerates the body): an interval of
    1.6 step times before the rhythm is that one step, not two with one missed. 16 steps in rhythm after it and
    the closing step: 17 steps, the bout from the first contact."""
    first_s = 10.0
    rhythm = [(first_s + 1.6 * STEP_S + i * STEP_S, STRONG_MS2) for i in range(17)]
    (bout,) = _bouts([(first_s, STRONG_MS2)] + rhythm)
    assert (bout.steps, bout.start_s, bout.end_s) == (17, first_s, rhythm[-2][0])
