"""Telling systemd how the service is doing: the sd_notify protocol, without libsystemd.

systemd passes ``$NOTIFY_SOCKET`` to a ``Type=notify`` service: an AF_UNIX datagram
socket (a path, or ``@name`` in the abstract namespace). Each message is lines of
``KEY=VALUE``. Without ``$NOTIFY_SOCKET`` (a laptop, a test) every call is a no-op,
so the loop calls these unconditionally. Sending never raises: a lost status
message must not stop the coach; the watchdog will notice if things are truly stuck.

Reload, as systemd 253+ wants it (and harmless on Bookworm's 252)::

    notifier.reloading()   # RELOADING=1 + MONOTONIC_USEC=...
    ...re-read the config...
    notifier.ready()       # READY=1: reload done
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("walkcoach.sdnotify")


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends sd_notify messages to ``$NOTIFY_SOCKET`` (or ``socket_path``); a no-op without one."""

    def __init__(self, socket_path: str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if path.startswith("@"):
            self._address = b"\0" + path[1:].encode()  # the abstract namespace
        elif path.startswith("/"):
            self._address = path
        elif path:
            log.warning("NOTIFY_SOCKET %r is not a path or @name: not notifying systemd", path)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True if it was sent."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message, socket.MSG_DONTWAIT, self._address)  # never block the loop
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", fields, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) is complete."""
        return self.notify("READY=1", *([_status(status)] if status is not None else []))

    def status(self, text: str) -> bool:
        """One line for `systemctl status`."""
        return self.notify(_status(text))

    def watchdog(self) -> bool:
        """The loop is alive: call at least twice per :func:`watchdog_interval_s`."""
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """A reload (SIGHUP) has begun; follow with :meth:`ready` when it is done."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _status(text: str) -> str:
    return "STATUS=" + " ".join(str(text).split())  # one line


def watchdog_interval_s(environ: Mapping[str, str] | None = None, *, pid: int | None = None) -> float | None:
    """The systemd watchdog timeout (``$WATCHDOG_USEC``) in seconds, or None when there is none for us.

    None also when ``$WATCHDOG_PID`` names another process (the variables were inherited).
    Ping with :meth:`Notifier.watchdog` at least twice per interval.
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    watchdog_pid = env.get("WATCHDOG_PID", "")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 1_000_000
