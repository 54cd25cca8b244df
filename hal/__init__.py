"""Hardware abstraction: protocols, the real backends, and the by-name opener.

This is the only package that names ``sim``: ``open_backend("sim")`` imports it
lazily, the way gpiozero picks its pin factory from a name.
"""

from __future__ import annotations

import importlib

from walkcoach.hal.errors import BackendError

BACKENDS = {
    "pi": "walkcoach.hal.pi_backend",
    "sim": "walkcoach.sim.backend",
    "pi-fake-kernel": "walkcoach.sim.fake_kernel",  # the pi backend's parts, only smbus2's ioctl faked (walkcoach bench)
}


def open_backend(name: str, **options):
    """Open the hardware backend called ``name``; its module's ``open_backend(**options)``."""
    return backend_module(name).open_backend(**options)


def backend_module(name: str):
    """The module behind backend ``name``, imported on first use."""
    try:
        module_name = BACKENDS[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r} (choose from {', '.join(sorted(BACKENDS))})"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {name!r} cannot be loaded: {exc}") from exc
    return module
