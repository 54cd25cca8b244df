"""Loading the device settings (the TOML config comes with the service work)."""

from __future__ import annotations

from pathlib import Path

from .settings import DeviceSettings


def load_settings(path: Path | None = None) -> DeviceSettings:
    """The effective settings: defaults, overridden by the config file if one is given."""
    return DeviceSettings()
