"""An emulated I2C bus with busio's interface, routing to emulated chips, with fault injection.

``EmulatedI2CBus`` is interchangeable with ``hal.i2c.SMBusI2C``: the Adafruit
driver and ``hal.bno055.Bno055Imu`` cannot tell them apart. It counts the same
``stats`` and can keep a transaction log (off by default: the simulator runs
~100k ticks, and the steady-state path is a counter update and a dict lookup).

Faults, all in the virtual time of ``clock`` and drawn from one seeded RNG:

- NACK (``OSError`` errno 121): per-transaction probability, or the next N;
- timeout (``OSError`` errno 110 ETIMEDOUT): likewise; optionally costs
  ``timeout_duration_s`` of virtual time, like a real stuck transfer;
- corrupt read data (random bytes, or all 0xFF as from a floating SDA line);
- a chip reset at a given time (the chip answers again 650 ms later, in CONFIG
  mode with calibration lost);
- an unplugged cable for a time window: every transaction NACKs, and the chips
  power-cycle (they boot when the window ends, then answer 650 ms later).

A device is any object with ``address``, ``i2c_write(data)``, ``i2c_read(n)``,
``reset(at_s=...)`` and ``power_cycle(off_at_s=..., on_at_s=...)``, such as
``sim.bno055_chip.EmulatedBno055``.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import math
import os
import random
from typing import Any, NamedTuple, Protocol

from walkcoach.hal.i2c import I2CStats

CORRUPT_PATTERNS = ("random", "ff")


class I2CTransaction(NamedTuple):
    t_s: float
    address: int
    written: bytes
    read: bytes  # empty for a write-only transaction
    errno: int | None  # None when it succeeded


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class I2CDevice(Protocol):
    """A device on the emulated bus (``sim.bno055_chip.EmulatedBno055``)."""

    address: int

    def i2c_write(self, data: bytes) -> None: ...

    def i2c_read(self, n: int) -> bytes | bytearray: ...

    def reset(self, *, at_s: float) -> None: ...

    def power_cycle(self, *, off_at_s: float, on_at_s: float) -> None: ...


class EmulatedI2CBus:
    def __init__(
        self,
        *,
        clock,
        seed: int = 0,
        log_transactions: bool = False,
        timeout_duration_s: float = 0.0,
    ) -> None:
        self.stats = I2CStats()
        self.transaction_log: list[I2CTransaction] | None = [] if log_transactions else None
        self.timeout_duration_s = timeout_duration_s
        self._clock = clock
        self._rng = random.Random(seed)
        self._devices: dict[int, I2CDevice] = {}
        self._locked = False
        self._nack_probability = 0.0
        self._timeout_probability = 0.0
        self._timeout_window_s = (-math.inf, math.inf)
        self._corrupt_probability = 0.0
        self._corrupt_probability_pattern = "random"
        self._nack_next = 0
        self._timeout_next = 0
        self._corrupt_next = 0
        self._corrupt_next_pattern = "random"
        self._events: list[tuple[float, int, str, Any]] = []  # heap of (at_s, seq, kind, arg)
        self._event_seq = itertools.count()
        self._unplugged_from_s = math.inf
        self._unplugged_until_s = -math.inf
        self._armed = False  # any fault pending: only then does a transaction look at the clock

    # -- devices -----------------------------------------------------------------------
    def attach(self, device: I2CDevice) -> None:
        if device.address in self._devices:
            raise ValueError(f"address 0x{device.address:02x} is already taken")
        self._devices[device.address] = device

    # -- busio interface ---------------------------------------------------------------
    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        out = bytes(buffer[start:end])
        self._transfer(address, out, None, 0, 0)

    def readfrom_into(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        if end is None:
            end = len(buffer)
        self._transfer(address, None, buffer, start, end)

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out,
        buffer_in,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        if in_end is None:
            in_end = len(buffer_in)
        self._transfer(address, buffer_out[out_start:out_end], buffer_in, in_start, in_end)

    def scan(self) -> list[int]:
        found = []
        for address in sorted(self._devices):
            try:
                self.writeto(address, b"")
            except OSError:
                continue
            found.append(address)
        return found

    def close(self) -> None:
        self._devices.clear()

    deinit = close

    def __enter__(self) -> EmulatedI2CBus:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- fault injection ---------------------------------------------------------------
    def set_nack_probability(self, probability: float) -> None:
        self._nack_probability = probability
        self._update_armed()

    def set_timeout_probability(self, probability: float, *, from_s: float = -math.inf, until_s: float = math.inf) -> None:
        """Each transaction from ``from_s`` to ``until_s`` times out with ``probability``."""
        self._timeout_probability = probability
        self._timeout_window_s = (from_s, until_s)
        self._update_armed()

    def set_corrupt_probability(self, probability: float, *, pattern: str = "random") -> None:
        self._corrupt_probability = probability
        self._corrupt_probability_pattern = _check_pattern(pattern)
        self._update_armed()

    def nack_next(self, count: int = 1) -> None:
        self._nack_next = count
        self._update_armed()

    def timeout_next(self, count: int = 1) -> None:
        self._timeout_next = count
        self._update_armed()

    def corrupt_next(self, count: int = 1, *, pattern: str = "random") -> None:
        """Corrupt the read data of the next ``count`` transactions that read."""
        self._corrupt_next = count
        self._corrupt_next_pattern = _check_pattern(pattern)
        self._update_armed()

    def schedule_reset(self, *, at_s: float, address: int | None = None) -> None:
        """Reset the chip at ``address`` (every chip if None) at virtual time ``at_s``."""
        self._schedule(at_s, "reset", address)

    def schedule_unplug(self, *, at_s: float, duration_s: float) -> None:
        """Pull the cable at ``at_s`` for ``duration_s``: NACKs, and the chips power-cycle."""
        self._schedule(at_s, "unplug", duration_s)

    def clear_faults(self) -> None:
        self._nack_probability = self._timeout_probability = self._corrupt_probability = 0.0
        self._nack_next = self._timeout_next = self._corrupt_next = 0
        self._events.clear()
        self._unplugged_from_s, self._unplugged_until_s = math.inf, -math.inf
        self._armed = False

    # -- internals ---------------------------------------------------------------------
    def _transfer(self, address: int, out, buffer_in, in_start: int, in_end: int) -> None:
        """One transaction: an optional write message then an optional read message."""
        stats = self.stats
        stats.transactions += 1
        n_in = in_end - in_start
        try:
            corrupt = self._inject(buffer_in is not None) if self._armed else None
            device = self._devices.get(address)
            if device is None:
                raise _error(errno.EREMOTEIO)
            if out is not None:
                device.i2c_write(out)
            data = device.i2c_read(n_in) if buffer_in is not None else b""
        except OSError as exc:
            stats.errors += 1
            stats.wire_bytes += 1  # the address byte nobody acknowledged
            if self.transaction_log is not None:
                self._log(address, out, b"", exc.errno)
            raise
        if corrupt is not None:
            data = b"\xff" * n_in if corrupt == "ff" else self._rng.randbytes(n_in)
        if buffer_in is not None:
            buffer_in[in_start:in_end] = data
            stats.wire_bytes += 1 + n_in
        if out is not None:
            stats.wire_bytes += 1 + len(out)
        if self.transaction_log is not None:
            self._log(address, out, data, None)

    def _inject(self, reads: bool) -> str | None:
        """Apply due faults: raise OSError, or return a corruption pattern for the read data."""
        now_s = self._clock.monotonic()
        while self._events and self._events[0][0] <= now_s:
            at_s, _, kind, arg = heapq.heappop(self._events)
            if kind == "reset":
                for device in self._devices.values():
                    if arg is None or device.address == arg:
                        device.reset(at_s=at_s)
            else:
                self._unplugged_from_s, self._unplugged_until_s = at_s, at_s + arg
                for device in self._devices.values():
                    device.power_cycle(off_at_s=at_s, on_at_s=at_s + arg)
        try:
            if self._unplugged_from_s <= now_s < self._unplugged_until_s:
                raise _error(errno.EREMOTEIO)
            if self._nack_next:
                self._nack_next -= 1
                raise _error(errno.EREMOTEIO)
            if self._timeout_next:
                self._timeout_next -= 1
                raise self._timeout()
            rng = self._rng
            if self._nack_probability and rng.random() < self._nack_probability:
                raise _error(errno.EREMOTEIO)
            if self._timeout_probability and self._timeout_window_s[0] <= now_s < self._timeout_window_s[1]:
                if rng.random() < self._timeout_probability:
                    raise self._timeout()
            if reads and self._corrupt_next:
                self._corrupt_next -= 1
                return self._corrupt_next_pattern
            if reads and self._corrupt_probability and rng.random() < self._corrupt_probability:
                return self._corrupt_probability_pattern
            return None
        finally:
            self._update_armed(now_s)

    def _timeout(self) -> OSError:
        if self.timeout_duration_s > 0:
            self._clock.sleep_until(self._clock.monotonic() + self.timeout_duration_s)
        return _error(errno.ETIMEDOUT)

    def _schedule(self, at_s: float, kind: str, arg) -> None:
        heapq.heappush(self._events, (at_s, next(self._event_seq), kind, arg))
        self._update_armed()

    def _update_armed(self, now_s: float = -math.inf) -> None:
        self._armed = bool(
            self._nack_probability
            or self._timeout_probability
            or self._corrupt_probability
            or self._nack_next
            or self._timeout_next
            or self._corrupt_next
            or self._events
            or now_s < self._unplugged_until_s
        )

    def _log(self, address: int, out, data, error: int | None) -> None:
        assert self.transaction_log is not None  # callers check: logging is optional
        self.transaction_log.append(
            I2CTransaction(
                self._clock.monotonic(), address, bytes(out or b""), bytes(data), error
            )
        )


def _check_pattern(pattern: str) -> str:
    if pattern not in CORRUPT_PATTERNS:
        raise ValueError(f"corruption pattern {pattern!r} is not one of {CORRUPT_PATTERNS}")
    return pattern
