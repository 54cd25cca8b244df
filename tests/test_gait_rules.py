"""The step and bout detectors' rules, each stated from the walking it is about: step sequences (and the
faint contacts a rhythm would find) fed to BoutTracker as the coach feeds it, or a synthetic vertical
acceleration fed to StepDetector. Each test asserts what the rule is for (steps and walk time the walker
really made, or none for a movement that is not walking).

A walk's last contact is its closing step (gait termination: the trailing foot set down beside the other),
which starts no stride: by the Mobilise-D definition (mobgap's ``MaxBreakCriteria(remove_last_ic=True)``) a
bout ends at the contact before it, and its steps are its contacts up to there. So a sequence's last contact
here is that closing contact, and a bout is expected from its first contact to the one before its last."""

import math

import pytest

from walkcoach.device.core.gait import BoutTracker, StepDetector
from walkcoach.device.core.settings import GaitSettings

TICK_S = 0.01


def _run(detected_s, faint_s=(), peak_ms2=2.0, regularity=0.9):
    """Bouts a BoutTracker makes of detected contacts (each known ``step_latency_s`` after it, as from
    StepDetector) while the rhythm may find the faint contacts ``faint_s`` (the largest, here the only,
    local maximum in the window it asks about, as StepDetector.rhythm_peak would); its end checked every
    tick as the coach does. Returns (bouts, the tracker)."""
    tracker, bouts = BoutTracker(GaitSettings()), []
    detected = sorted(detected_s)
    faint = sorted(faint_s)
    latency_s = tracker.step_latency_s

    def regular(_step_s):
        return regularity

    t_s = detected[0] + latency_s
    last_s = max(detected + faint)
    while detected or tracker.in_bout or t_s <= last_s + latency_s:
        if detected and detected[0] + latency_s <= t_s:
            tracker.add_step(detected.pop(0), peak_ms2, regularity=regular)
        elif t_s >= tracker.rhythm_due_s:
            lo_s, hi_s = tracker.rhythm_window_s
            found = [s for s in faint if lo_s <= s <= hi_s]
            tracker.add_rhythm_step((found[0], 0.3 * peak_ms2) if found else None, regularity=regular)
        elif tracker.in_bout and tracker.check_end(t_s):
            bouts.append(tracker.end())
        t_s += TICK_S
    return bouts, tracker


def _steps_between(first_s, last_s, step_s):
    return round((last_s - first_s) / step_s) + 1


def test_two_missed_steps_in_a_row_keep_a_slow_walkers_bout_and_three_end_it():
    """A slow walker (40 steps/min, 1.5 s a step) whose faint steps go undetected: two in a row missed (the
    next contact three step times on) is still the walk, and its missed steps are counted; three in a row
    (four step times, 6 s without a contact) is a pause that ends the bout."""
    step_s = 1.5
    walk = [step_s * i for i in range(10)]
    two_missed = walk + [walk[-1] + step_s * (3 + i) for i in range(8)]
    (bout,), _ = _run(two_missed)
    assert (bout.start_s, bout.end_s) == (two_missed[0], two_missed[-2])
    assert bout.steps == _steps_between(two_missed[0], two_missed[-2], step_s)

    three_missed = walk + [walk[-1] + step_s * (4 + i) for i in range(8)]
    first, second = _run(three_missed)[0]
    assert (first.start_s, first.end_s, first.steps) == (walk[0], walk[-2], len(walk) - 1)
    assert (second.start_s, second.end_s) == (three_missed[len(walk)], three_missed[-2])


@pytest.mark.parametrize("pause_s", [2.2, 2.7])
def test_a_pause_inside_a_bout_holds_no_steps(pause_s):
    """Walking at 0.55 s a step, a stop (the closing contact 0.6 s after the last step) and 2.2 or 2.7 s of
    standing (a break the bout bridges: Mobilise-D's breaks of up to 3 s), then walking on (a landing between
    two flights of stairs, a look around). The pause is four or five step times, more than the missed steps
    that keep a bout open (two): its steps are the walker's contacts, not the pause split into step times."""
    step_s = 0.55
    first = [step_s * i for i in range(20)]
    closing_s = first[-1] + 0.6
    second = [closing_s + pause_s + step_s * i for i in range(20)]
    contacts = first + [closing_s] + second
    (bout,), _ = _run(contacts)
    assert (bout.start_s, bout.end_s) == (contacts[0], contacts[-2])
    assert bout.steps == len(contacts) - 1


def test_after_a_pause_a_walk_resuming_with_two_missed_steps_goes_on_as_one_bout():
    """A pause (2.5 s, not whole steps of the 1 s rhythm) then a contact, then the next one three step
    times later (two steps missed, as a slow restart's faint steps are) and walking on: one walk, the
    contact after the pause kept, not a bout ended at the pause and a new one started."""
    walk = [1.0 * i for i in range(10)]
    resumed_s = walk[-1] + 2.5
    after = [resumed_s + 3.0 + i for i in range(8)]
    (bout,), _ = _run(walk + [resumed_s] + after)
    assert (bout.start_s, bout.end_s) == (walk[0], after[-2])
    assert resumed_s in bout.step_times_s


def test_a_faint_walkers_last_missed_steps_count():
    """A walker whose steps are often (10 %: 2 of 20) too faint to detect ends the walk with contacts two
    step times apart (every other step unseen): they are the walk's last steps, counted to the contact
    before the last (the closing one). A walker whose steps were all seen, with the same contacts after
    the walk, is sitting down or turning: only the few steps of gait termination count."""
    seen = [float(i) for i in range(20) if i not in (7, 14)]  # 20 steps from 0 to 19 s, 2 missed
    ending = [19.0 + 2.0 * i for i in range(1, 5)]
    (bout,), _ = _run(seen + ending)
    assert (bout.start_s, bout.end_s) == (0.0, ending[-2])
    assert bout.steps == _steps_between(0.0, ending[-2], 1.0)

    strong = [float(i) for i in range(20)]
    (bout,), _ = _run(strong + ending)
    assert bout.end_s < ending[-2]


def test_faint_contacts_found_only_by_the_rhythm_never_end_a_bout():
    """A faint walker's (steps often missed) contacts at the rhythm's times after its last detected step
    are counted only if a detected step follows: at the bout's end they may be the sway of standing still.
    The last detected contact is then the closing one."""
    seen = [float(i) for i in range(20) if i not in (7, 14)]
    (bout,), _ = _run(seen, faint_s=[20.0, 21.0])
    assert bout.end_s == seen[-2]
    assert bout.steps == _steps_between(0.0, seen[-2], 1.0)


def test_a_faint_step_after_the_first_two_is_found_by_their_rhythm():
    """Two detected contacts already give a step time: a third step too faint to detect, at the rhythm's
    time, is found and counted once the walk goes on (the bout counts every step from the first to the
    one before the closing contact at 7 s)."""
    (bout,), _ = _run([0.0, 1.0, 3.0, 4.0, 5.0, 6.0, 7.0], faint_s=[2.0])
    assert bout.start_s == 0.0
    assert bout.steps == 7
    assert 2.0 in bout.step_times_s


def test_three_faint_contacts_in_a_row_count_and_then_the_rhythm_must_be_seen_again():
    """Before a bout, up to three contacts in a row found only by the rhythm carry a walk (a shuffler's soft
    contacts); a fourth is not looked for: peaks of noise alone never carry a rhythm further. Three faint
    steps between detected ones make one walk; four leave the contacts before them no walk."""
    (bout,), _ = _run([0.0, 1.0, 2.0, 6.0, 7.0, 8.0], faint_s=[3.0, 4.0, 5.0])
    assert (bout.start_s, bout.end_s, bout.steps) == (0.0, 7.0, 8)

    bouts, _ = _run([0.0, 1.0, 2.0, 7.0, 8.0, 9.0], faint_s=[3.0, 4.0, 5.0, 6.0])
    assert bouts == []


def test_live_walk_time_stops_growing_once_the_next_step_is_overdue():
    """While walking, the live walk time grows with the clock; once the next step is later than a step
    time and the rhythm's tolerance (the walk may have ended), it is the walk time the bout will have if
    it ends there: its span to the contact before its last (the closing step)."""
    tracker = BoutTracker(GaitSettings())
    steps = [0.5 * i for i in range(12)]
    for step_s in steps:
        tracker.add_step(step_s, 2.0, regularity=lambda _step_s: 0.9)
    assert tracker.in_bout
    assert tracker.live_duration_s(steps[-1] + tracker.step_latency_s + 0.3) == steps[-1] + 0.3 - steps[0]
    overdue_s = (1.0 + GaitSettings().rhythm_tolerance) * 0.5
    t_s = steps[-1] + tracker.step_latency_s + overdue_s + 0.1
    assert not tracker.check_end(t_s)  # the bout is still open: steps might still come
    assert tracker.live_duration_s(t_s) == steps[-2] - steps[0]
    assert tracker.end().duration_s == steps[-2] - steps[0]


def _pulses(duration_s, rate_hz, every_s):
    """A knock (a 0.2 s bump) every ``every_s``: a movement that repeats, as shifting on a chair might."""
    width_s = 0.2
    return [3.0 * math.sin(math.pi * (t % every_s) / width_s) if t % every_s < width_s else 0.0
            for t in (i / rate_hz for i in range(int(duration_s * rate_hz)))]


def test_a_movement_repeating_slower_than_the_slowest_stride_is_not_walkings_regularity():
    """The stride of the slowest walker (40 steps/min) is 3 s: a movement that repeats every 4 s is not a
    stride, even at a step time (2 s, within the slowest walker's tolerance) whose second step would be it.
    Its regularity at that step time stays under what a bout needs."""
    rate_hz = 50.0
    detector = StepDetector(GaitSettings(), rate_hz)
    for i, acc_ms2 in enumerate(_pulses(21.0, rate_hz, 4.0)):
        detector.update(i / rate_hz, acc_ms2)
    assert detector.regularity(2.0) < GaitSettings().min_regularity


def test_a_shufflers_shortest_walk_counts_each_step_once():
    """A shuffler (70 steps/min) whose push-off, 0.38 of a step after each soft heel strike, is as strong
    as it: a walk of six steps and its closing contact, the shortest bout, is six steps, not thirteen
    contacts."""
    step_s, jitter = 0.86, (0.0, 0.02, -0.015, 0.01, -0.02, 0.015, -0.01)
    strikes_s = [2.0 + step_s * k + j for k, j in enumerate(jitter)]
    contacts = sorted([(s, 0.3) for s in strikes_s] + [(s + 0.38 * step_s, 0.25) for s in strikes_s[:-1]])
    tracker = BoutTracker(GaitSettings())
    for t_s, peak_ms2 in contacts:
        tracker.add_step(t_s, peak_ms2)
    t_s = contacts[-1][0]
    while not tracker.check_end(t_s):
        t_s += TICK_S
    bout = tracker.end()
    assert bout.steps == len(strikes_s) - 1
    assert list(bout.step_times_s) == strikes_s[:-1]


def test_a_walk_whose_alternate_steps_turn_too_faint_to_see_goes_on_to_its_last_contact():
    """A walker whose every step was seen, then every other step too faint to detect: six contacts two step
    times apart (as many in the rhythm as start a bout) are the walk going on, not the sparse contacts of
    sitting down: every step counts, to the contact before the last (the closing one)."""
    walk = [float(i) for i in range(20)]
    alternate = [walk[-1] + 2.0 * i for i in range(1, 7)]
    (bout,), _ = _run(walk + alternate)
    assert (bout.start_s, bout.end_s) == (0.0, alternate[-2])
    assert bout.steps == _steps_between(0.0, alternate[-2], 1.0)
