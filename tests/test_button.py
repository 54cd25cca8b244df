from walkcoach.device.core.button import ButtonGestures, Gesture


def _feed(gestures, presses, rate_hz=100.0, until_s=10.0):
    out = []
    n = int(until_s * rate_hz)
    for i in range(n):
        t = i / rate_hz
        pressed = any(a <= t < b for a, b in presses)
        g = gestures.update(t, pressed)
        if g is not None:
            out.append((round(t, 2), g))
    return out


def test_short_press_is_reported_on_release():
    assert _feed(ButtonGestures(hold_s=3.0), [(1.0, 1.3)]) == [(1.3, Gesture.PRESS)]


def test_hold_reports_once_and_no_press_on_release():
    assert _feed(ButtonGestures(hold_s=3.0), [(1.0, 6.0)]) == [(4.0, Gesture.HOLD)]


def test_contact_bounce_is_ignored():
    assert _feed(ButtonGestures(hold_s=3.0), [(1.0, 1.02)]) == []
