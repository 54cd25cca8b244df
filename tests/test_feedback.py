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
