"""What was opened is released when a later step of opening fails (issue 14)."""

import dataclasses
import gc
import os
import warnings

import pytest

import walkcoach.hal.pi_backend as pi_backend
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.recording import RecordingError, RecordingWriter
from walkcoach.hal.errors import BackendError
from walkcoach.hal.mount import Mount


class _SpyButton:
    closed = 0

    def close(self) -> None:
        _SpyButton.closed += 1


def test_the_button_is_released_when_the_i2c_bus_does_not_open(monkeypatch, tmp_path):
    opened = []
    monkeypatch.setattr(pi_backend, "open_outputs", lambda **pins: {})
    monkeypatch.setattr(pi_backend, "open_button", lambda pin: opened.append(_SpyButton()) or opened[-1])
    settings = DeviceSettings()
    no_bus = dataclasses.replace(settings.imu, i2c_bus=31)
    assert not os.path.exists("/dev/i2c-31")
    with pytest.raises(BackendError, match="i2c-31"):
        pi_backend.open_backend(imu_settings=no_bus, pins=settings.pins, mount=Mount(), state_dir=tmp_path)
    assert len(opened) == 1 and _SpyButton.closed == 1


def test_a_recording_whose_header_cannot_be_written_leaves_no_file_open():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(RecordingError, match="cannot write the recording"):
            RecordingWriter("/dev/full", rate_hz=100.0, meta={"backend": "sim"})  # every write: no space left
        gc.collect()  # a file still open is closed here, with a ResourceWarning
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
