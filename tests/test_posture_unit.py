"""The upright, stairs and lean-hold rules on small synthetic signals whose answer is known exactly."""

import math

import pytest

from tests.test_coach_unit import RATE_HZ, _coach, _cues
from tests.test_coach_unit import _run as _feed
from walkcoach.device.core.activity import STAIR_RISE_M, StairDetector
from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.gait import StepDetector
from walkcoach.device.core.settings import GaitSettings


def test_no_straighten_up_cue_once_steps_have_stopped():
    """A 20 deg lean from 22.3 s, due at 27.3 s; the steps stop at 26 s (the wearer stops, still leaning).
    The bout stays open until its end is confirmed (~2.2 s later): no cue may come in that time."""
    lean = lambda t: 20.0 if t > 22.3 else 0.0  # noqa: E731
    stopped = _feed(_coach(), 40, lean, lambda t: 3 < t < 26)
    assert _cues(stopped, Cue.STRAIGHTEN_UP) == []
    going_on = _feed(_coach(), 40, lean, lambda t: t > 3)  # the control: walking on, the cue is due at 27.3 s
    (cued_s,) = _cues(going_on, Cue.STRAIGHTEN_UP)
    assert 27.3 <= cued_s <= 27.8  # (+ the 0.25 s lean filter's rise to the threshold)


def test_a_seated_stillness_is_not_the_standing_upright():
    """Seated 0-5 s (pelvis 12 deg back), a sit-to-stand (trunk flexion to 35 deg) and walking off upright:
    the seated stillness gets `ready` but is not coached against; the walk reads as upright."""
    def lean(t):
        if t < 5.0:
            return -12.0
        if t < 6.0:
            return -12.0 + 47.0 * math.sin(math.pi / 2 * (t - 5.0))
        if t < 7.0:
            return 35.0 * math.cos(math.pi / 2 * (t - 6.0))
        return 0.0

    coach = _coach()
    events = _feed(coach, 60, lean, lambda t: t > 6.5)
    assert _cues(events, Cue.READY)[0] < 3.0
    assert _cues(events, Cue.STRAIGHTEN_UP) == []
    assert coach.upright.trusted and abs(coach.lean.lean_deg) < 1.0  # against seated it would read 12
    whys = [e.why for e in events if e.kind is EventKind.UPRIGHT_CAPTURED]
    assert any("was not standing" in why for why in whys), whys


def test_a_stillness_long_before_walking_is_not_the_stance():
    """Still for 3 s leaning back 10 deg against a wall, then a minute of standing about (small
    movements, never still 2 s), then a walk 8 deg ahead of that stance: the old stillness is not
    the stance before gait, so the walk is not measured against it (it would read 18 deg: a cue)."""
    def lean(t):
        if t < 3.0:
            return -10.0
        if t < 63.0:
            return 3.0 * math.sin(2 * math.pi * 0.7 * t)  # shifting weight, looking around
        return 8.0

    coach = _coach()
    events = _feed(coach, 100, lean, lambda t: t > 63.0)
    assert _cues(events, Cue.STRAIGHTEN_UP) == []


def test_a_stance_right_before_walking_becomes_the_upright():
    """Seated first (ready), then standing still 3 s, then walking: the stance is the upright."""
    lean = lambda t: -12.0 if t < 5 else 0.0  # noqa: E731  (a sit-to-stand between, quick and then still)
    coach = _coach()
    events = _feed(coach, 30, lean, lambda t: t > 9)
    assert coach.upright.source == "stance"
    assert any(e.why.startswith("upright reference taken from the stance before walking") for e in events)


def test_calibration_takes_the_next_stillness_whatever_it_is():
    coach = _coach()
    _feed(coach, 5, lambda t: -12.0, lambda t: False)
    assert coach.upright.captured and not coach.upright.trusted
    coach.request_upright_capture()
    events = _feed(coach, 5, lambda t: 3.0, lambda t: False, start_s=5.0)
    assert [e.why for e in events if e.cue is Cue.READY] == ["upright reference captured (calibration)"]
    assert coach.upright.trusted and abs(coach.lean.lean_deg) < 0.5


@pytest.mark.parametrize("step_s", [0.5, 0.65, 1.1])
@pytest.mark.parametrize("riser_m", [0.0, 0.15, 0.19, -0.17])
def test_a_steps_net_rise_is_measured_whatever_its_sensor_bias(riser_m, step_s):
    """Pelvis height: an inverted pendulum (lowest at each heel strike) plus a riser per step raised
    between strikes (a minimum-jerk move); the heel strike's impact (a zero-mean 20 ms transient, 20 ms
    after the strike); a 0.3 m/s^2 accelerometer bias on top. Steps come from the coach's StepDetector."""
    omega = 2 * math.pi / step_s
    stairs, steps = StairDetector(RATE_HZ), StepDetector(GaitSettings(), RATE_HZ)
    strikes = [1.0 + k * step_s for k in range(14)]
    rises = []
    for i in range(int((strikes[-1] + 2.0) * RATE_HZ)):
        t = i / RATE_HZ
        pendulum = 0.01 * omega**2 * math.cos(omega * (t - 1.0))
        u = ((t - 1.0) % step_s) / step_s
        riser = riser_m / step_s**2 * (60 * u - 180 * u**2 + 120 * u**3) if 1.0 <= t < strikes[-1] else 0.0
        tau = min(abs(t - s - 0.02) for s in strikes) / 0.02
        impact = 6.0 * (1.0 - tau * tau) * math.exp(-0.5 * tau * tau)
        acc = pendulum + riser + impact + 0.3
        stairs.add(acc)
        step = steps.update(t, acc)
        if step is not None:
            stairs.on_step(t, step + steps.filter_delay_s)  # the filtered peak (the coach passes it so)
            rises.append((step, stairs.last_rise_m))
    steps_up_the_stairs = [rise for step, rise in rises if strikes[1] < step < strikes[-1]]  # each ends a riser
    assert len(steps_up_the_stairs) >= 11
    for rise in steps_up_the_stairs:
        if riser_m >= 0:
            assert rise == pytest.approx(riser_m, abs=0.03)  # the impact lags the lowest point by 20 ms: ~2 cm
        else:  # going down the raw signal's sharpest rise is less exactly the strike: a flight, not its risers
            assert rise < -STAIR_RISE_M
    assert stairs.flights == (1 if riser_m else 0)  # one flight, over when the level steps come
