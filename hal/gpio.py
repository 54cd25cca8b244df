"""Outputs and the button through gpiozero, by GPIO name from the config.

The pin factory is gpiozero's usual choice (``GPIOZERO_PIN_FACTORY``) unless one
is passed in (the simulator passes gpiozero's MockFactory).
"""

from __future__ import annotations

from walkcoach.hal.errors import BackendError


def open_outputs(*, buzzer: str = "", led: str = "", motor: str = "", pin_factory=None) -> dict:
    """{"buzzer", "led", "motor"} -> gpiozero devices; a pin left empty gives no device."""
    try:
        from gpiozero import LED, Buzzer, DigitalOutputDevice
        from gpiozero.exc import GPIOZeroError
    except ImportError as exc:  # pragma: no cover - gpiozero is a dependency
        raise BackendError(f"gpiozero is not installed: {exc}") from exc
    makers = {"buzzer": (Buzzer, buzzer), "led": (LED, led), "motor": (DigitalOutputDevice, motor)}
    outputs: dict = {}
    try:
        for name, (maker, pin) in makers.items():
            if pin:
                outputs[name] = maker(pin, pin_factory=pin_factory)
    except (GPIOZeroError, OSError, ValueError) as exc:
        close_all(outputs)
        raise BackendError(f"cannot open {name} on {pin}: {exc}") from exc
    return outputs


def open_button(pin: str, *, pin_factory=None):
    if not pin:
        return None
    from gpiozero import Button
    from gpiozero.exc import GPIOZeroError

    try:
        return Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
    except (GPIOZeroError, OSError, ValueError) as exc:
        raise BackendError(f"cannot open button on {pin}: {exc}") from exc


def close_all(devices: dict) -> None:
    """Every output off, then released (called on any exit path)."""
    from gpiozero.exc import GPIOZeroError

    for device in devices.values():
        try:
            device.off()
        except (GPIOZeroError, OSError):  # closed already, or its pin gone: closing must reach every device
            pass
        try:
            device.close()
        except (GPIOZeroError, OSError):
            pass


def output_value(device) -> int:
    """1 if an output is on, else 0; a closed device, or one whose pin is gone, reads as off."""
    from gpiozero.exc import GPIOZeroError

    try:
        return 1 if device.value else 0
    except (GPIOZeroError, OSError):
        return 0
