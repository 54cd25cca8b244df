from walkcoach.device.core.events import Cue
from walkcoach.device.core.feedback import PATTERNS, CuePlayer
from walkcoach.hal.gpio import close_all, open_outputs


def _player(mock_factory):
    outputs = open_outputs(buzzer="GPIO17", led="GPIO27", motor="GPIO23", pin_factory=mock_factory)
    return CuePlayer(outputs), outputs


def test_every_cue_has_a_pattern_that_sounds_and_ends():
    for cue in Cue:
        pattern = PATTERNS[cue]
        assert 0 < pattern.duration_s <= 3.0
        assert pattern.buzzer or pattern.led or pattern.motor


def test_stop_cue_plays_its_rhythm_in_loop_time(mock_factory):
    player, outputs = _player(mock_factory)
    buzzer = mock_factory.pin(17)
    player.start(Cue.STOP, now_s=10.0)
    assert buzzer.state
    player.advance(10.6)  # 0.5 s on, 0.25 s off
    assert not buzzer.state
    player.advance(10.8)
    assert buzzer.state
    player.advance(13.0)
    assert not buzzer.state and player.playing is None
    close_all(outputs)


def test_higher_priority_interrupts_and_lower_is_dropped(mock_factory):
    player, outputs = _player(mock_factory)
    player.start(Cue.STRAIGHTEN_UP, now_s=0.0)
    assert player.start(Cue.STOP, now_s=0.1)
    assert player.playing is Cue.STOP
    assert not player.start(Cue.UPRIGHT_AGAIN, now_s=0.2)
    assert player.playing is Cue.STOP
    player.advance(5.0)
    assert player.start(Cue.UPRIGHT_AGAIN, now_s=5.0)
    close_all(outputs)


def test_all_off_leaves_every_output_off(mock_factory):
    player, outputs = _player(mock_factory)
    player.start(Cue.STOP, now_s=0.0)
    assert mock_factory.pin(23).state
    player.all_off()
    assert not any(mock_factory.pin(n).state for n in (17, 27, 23))
    close_all(outputs)


def test_missing_motor_is_skipped(mock_factory):
    outputs = open_outputs(buzzer="GPIO17", led="", motor="", pin_factory=mock_factory)
    player = CuePlayer(outputs)
    player.start(Cue.STRAIGHTEN_UP, now_s=0.0)
    assert mock_factory.pin(17).state
    close_all(outputs)


def _states(pin) -> list[bool]:
    """Every state the pin went through (gpiozero's assert_states compares only as many as it is given)."""
    return [bool(s.state) for s in pin.states]


def _play_through(player, cue, start_s=0.0, end_s=3.0, tick_s=0.01):
    player.start(cue, now_s=start_s)
    for k in range(1, int(round((end_s - start_s) / tick_s)) + 1):
        player.advance(start_s + k * tick_s)  # the loop's 10 ms ticks


def test_straighten_up_is_exactly_two_buzzes_and_two_motor_pulses_under_one_light(mock_factory):
    player, outputs = _player(mock_factory)
    buzzer, led, motor = mock_factory.pin(17), mock_factory.pin(27), mock_factory.pin(23)
    for pin in (buzzer, led, motor):
        pin.clear_states()
    _play_through(player, Cue.STRAIGHTEN_UP)
    assert _states(buzzer) == [False, True, False, True, False]
    assert _states(motor) == [False, True, False, True, False]
    assert _states(led) == [False, True, False]
    close_all(outputs)


def test_ready_is_one_chirp_and_stop_three_long_buzzes(mock_factory):
    player, outputs = _player(mock_factory)
    buzzer = mock_factory.pin(17)
    buzzer.clear_states()
    _play_through(player, Cue.READY)
    assert _states(buzzer) == [False, True, False]
    buzzer.clear_states()
    _play_through(player, Cue.STOP, start_s=5.0, end_s=9.0)
    assert _states(buzzer) == [False, True, False, True, False, True, False]
    close_all(outputs)
