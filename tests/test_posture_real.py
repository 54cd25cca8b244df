"""Lean coaching on real people's lower-back recordings (tests/real_data.py finds them).

- No straighten-up cue on people who were not asked to lean, whichever way the sensor is worn.
- A real walk with a sustained forward lean put into it (the recording's gravity and acceleration
  rotated forward about the body's left axis, as a trunk lean turns the belt): cued within the hold
  plus 1 s at the threshold + 5 deg and more, also with the sensor worn rotated (configured flat);
  a backward lean, one under the threshold and one shorter than the hold are not cued.
- The daily-living recording starts seated: the upright must be the standing one.
"""

import numpy as np
import pytest

from tests.real_data import DAILY_LIVING, GAITPY_DEMO, TEST5_TRIALS, WORN, body_frame, coach_over, cue_times, lean_profile_deg, with_lean
from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.settings import LeanSettings

THRESHOLD_DEG = LeanSettings().threshold_deg
HOLD_S = LeanSettings().hold_s

# Inside the demo's second and third walks (36-55, 63-91, 123-154 s by all three peers in peers.json).
DEMO_LEAN_STARTS_S = (72.0, 132.0)


@pytest.mark.parametrize("worn", WORN)
@pytest.mark.parametrize("name", [*TEST5_TRIALS, DAILY_LIVING, GAITPY_DEMO])
def test_no_straighten_up_cue_on_people_not_asked_to_lean(name, worn):
    events, coach = coach_over(*body_frame(name), worn=worn)
    assert cue_times(events, Cue.STRAIGHTEN_UP) == []
    assert coach.stairs.flight_starts_s == []  # level walking (and daily living) is not taken for stairs


def _crossing_s(t_s, lean_deg):
    return float(t_s[np.argmax(lean_deg > THRESHOLD_DEG)])


@pytest.mark.parametrize("worn", WORN)
@pytest.mark.parametrize("angle_deg", [THRESHOLD_DEG + 5.0, THRESHOLD_DEG + 15.0])
@pytest.mark.parametrize("start_s", DEMO_LEAN_STARTS_S)
def test_a_sustained_lean_in_real_walking_is_cued_within_hold_plus_1_s(start_s, angle_deg, worn):
    t_s, gravity, linear = body_frame(GAITPY_DEMO)
    lean_deg = lean_profile_deg(t_s, start_s, angle_deg, hold_s=10.0)
    events, coach = coach_over(t_s, *with_lean(gravity, linear, lean_deg), worn=worn)
    due_s = _crossing_s(t_s, lean_deg) + HOLD_S
    cues = cue_times(events, Cue.STRAIGHTEN_UP)
    assert len(cues) == 1 and due_s - 0.5 <= cues[0] <= due_s + 1.0, (due_s, cues)
    moved = [e for e in events if e.kind is EventKind.BELT_MOVED]
    if worn in ("sideways", "turned-round-upside-down"):  # a wrong forward axis is found and said
        assert len(moved) == 1 and moved[0].why.startswith("forward axis taken from walking")
        assert moved[0].t_s < start_s
    else:
        assert moved == []


@pytest.mark.parametrize("worn", WORN)
@pytest.mark.parametrize("what, angle_deg, hold_s", [
    ("backward", -25.0, 12.0),
    ("under the threshold", THRESHOLD_DEG - 3.0, 15.0),
    ("shorter than the hold", 25.0, HOLD_S - 1.5),
])
def test_a_lean_that_should_not_be_cued_is_not(what, angle_deg, hold_s, worn):
    t_s, gravity, linear = body_frame(GAITPY_DEMO)
    for start_s in DEMO_LEAN_STARTS_S:
        lean_deg = lean_profile_deg(t_s, start_s, angle_deg, hold_s=hold_s)
        events, _ = coach_over(t_s, *with_lean(gravity, linear, lean_deg), worn=worn)
        assert cue_times(events, Cue.STRAIGHTEN_UP) == [], (what, start_s)


def test_the_daily_living_recording_starts_seated_and_its_upright_is_not_the_seated_one():
    """HA001 sits for the first ~4 s, then stands up and walks: a seated upright would make every walk read
    as 10-17 deg of lean. The upright must come from standing or walking, and the seated stillness (the
    first one, and the one that `ready` was given for) must not be it."""
    t_s, gravity, linear = body_frame(DAILY_LIVING)
    events, coach = coach_over(t_s, gravity, linear)
    assert [e for e in events if e.kind is EventKind.WALK_ENDED]
    assert coach.upright.trusted
    seated_up = gravity[t_s < 3.0].mean(axis=0)
    seated_up /= np.linalg.norm(seated_up)
    assert np.degrees(np.arccos(np.clip(np.dot(seated_up, coach.upright.up), -1, 1))) > 8.0
