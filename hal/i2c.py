"""A busio-compatible I2C bus over smbus2, so the Adafruit drivers run without Blinka's board detection.

``SMBusI2C`` offers exactly what ``adafruit_bus_device.I2CDevice`` calls on a bus:
``try_lock/unlock``, ``writeto``, ``readfrom_into``, ``writeto_then_readfrom`` (one
combined transaction with a repeated start, through ``SMBus.i2c_rdwr``) and ``scan``.
Bus errors stay ``OSError`` (errno 121 EREMOTEIO on a NACK, 110 ETIMEDOUT on a stuck
bus); the device classes above decide what they mean.

A register read (write the register address, read ``n`` bytes: the tick's burst
read) and a plain read are built once per (address, register, length) as the
whole ``I2C_RDWR`` request (the messages, their array and the read buffer) and
handed to the kernel as they are: smbus2's ``i2c_rdwr`` builds the array anew on
every call and the caller then copies the bytes out through ``bytes(msg)``, about
7 us of the tick's Python on this path, where the kernel call itself is one
syscall. The bytes read are copied out of the reused buffer through a memoryview.
Writes of data (the set-up's register values) are built each time; at most
``REQUEST_CACHE_SIZE`` requests are kept.

Every transaction is counted in ``stats`` (transactions, bytes on the wire, errors):
"on the wire" counts, per message, the address byte plus the data bytes, and
ignores start/stop/ack bits.
"""

from __future__ import annotations

import threading

# i2cdetect's rule: addresses where a quick write can upset some chips (EEPROMs and
# the like) are probed with a one-byte read instead.
_READ_PROBE_RANGES = (range(0x30, 0x38), range(0x50, 0x60))
REQUEST_CACHE_SIZE = 256


class I2CStats:
    """Running totals of one bus's traffic; cheap enough to update on every transaction."""

    __slots__ = ("transactions", "wire_bytes", "errors")

    def __init__(self, transactions: int = 0, wire_bytes: int = 0, errors: int = 0) -> None:
        self.transactions = transactions
        self.wire_bytes = wire_bytes  # address byte + data bytes, per message
        self.errors = errors  # transactions that raised OSError

    def snapshot(self) -> I2CStats:
        return I2CStats(self.transactions, self.wire_bytes, self.errors)

    def __sub__(self, other: I2CStats) -> I2CStats:
        return I2CStats(
            self.transactions - other.transactions,
            self.wire_bytes - other.wire_bytes,
            self.errors - other.errors,
        )

    def reset(self) -> None:
        self.transactions = self.wire_bytes = self.errors = 0

    def __repr__(self) -> str:
        return (
            f"I2CStats(transactions={self.transactions}, wire_bytes={self.wire_bytes}, "
            f"errors={self.errors})"
        )


class SMBusI2C:
    """The Linux I2C bus ``/dev/i2c-<bus_number>`` with busio.I2C's interface.

    ``bus_number`` is 1 for the Pi's header pins, or e.g. 3 for an ``i2c-gpio``
    overlay (a bit-banged bus that tolerates the BNO055's clock stretching).
    Opening needs read/write access to the device node (group ``i2c``).
    """

    def __init__(self, bus_number: int = 1) -> None:
        import smbus2  # runtime dependency; imported here so importing hal never needs it
        import smbus2.smbus2 as smbus2_impl

        self.bus_number = bus_number
        self.stats = I2CStats()
        self._msg = smbus2.i2c_msg
        self._impl = smbus2_impl  # its ``ioctl`` looked up per call, as smbus2 itself does (a test can fake it)
        self._bus = smbus2.SMBus(bus_number)
        self._lock = threading.Lock()
        self._requests: dict = {}  # (address, register or None, length) -> (request, read view, the ctypes kept alive)
        self._readers: dict = {}  # (address, register, length) -> register_reader's function

    def _request(self, address: int, register: int | None, length: int):
        """The prepared I2C_RDWR request reading ``length`` bytes (after writing ``register``) and a view of what it reads."""
        key = (address, register, length)
        entry = self._requests.get(key)
        if entry is None:
            import ctypes

            impl = self._impl
            buffer = ctypes.create_string_buffer(length)
            read = impl.i2c_msg(addr=address, flags=impl.I2C_M_RD, len=length, buf=buffer)
            msgs = (read,) if register is None else (self._msg.write(address, bytes((register,))), read)
            entry = (impl.i2c_rdwr_ioctl_data.create(*msgs), memoryview(buffer).cast("B"), (msgs, buffer))
            if len(self._requests) < REQUEST_CACHE_SIZE:
                self._requests[key] = entry
        return entry

    def _transfer(self, request) -> None:
        impl = self._impl
        impl.ioctl(self._bus.fd, impl.I2C_RDWR, request)

    def register_reader(self, address: int, register: int, length: int):
        """A prepared register read for a caller that reads the same block every tick (the BNO055's burst):
        a function doing the one ``I2C_RDWR`` and returning the request's own read buffer (a memoryview,
        overwritten by the next call: unpack it before). Counted in ``stats`` like ``writeto_then_readfrom``;
        the caller holds the lock as for any transfer. ``writeto_then_readfrom``'s register reads use it too."""
        key = (address, register, length)
        reader = self._readers.get(key)
        if reader is not None:
            return reader
        entry = self._request(address, register, length)
        request, read, _ = entry
        impl, fd, stats, rdwr = self._impl, self._bus.fd, self.stats, self._impl.I2C_RDWR
        wire_bytes = 3 + length

        def read_register(_keep_alive=entry):  # the messages and buffer, past the request cache's size
            stats.transactions += 1
            stats.wire_bytes += wire_bytes
            try:
                impl.ioctl(fd, rdwr, request)
            except OSError:
                stats.errors += 1
                raise
            return read

        if len(self._readers) < REQUEST_CACHE_SIZE:
            self._readers[key] = read_register
        return read_register

    # -- busio's locking: non-blocking, released by the same user ---------------------
    def try_lock(self) -> bool:
        return self._lock.acquire(False)  # positional: no keyword parsing on the tick

    def unlock(self) -> None:
        self._lock.release()

    # -- transfers ----------------------------------------------------------------------
    def writeto(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        """Write ``buffer[start:end]`` to ``address`` then stop; an empty write is a probe."""
        data = buffer[start:end]
        stats = self.stats
        stats.transactions += 1
        stats.wire_bytes += 1 + len(data)
        try:
            if data:
                self._bus.i2c_rdwr(self._msg.write(address, data))  # the set-up's writes: not worth keeping
            else:
                # A zero-length write is an address-only probe: SMBus "quick write".
                self._bus.write_quick(address)
        except OSError:
            stats.errors += 1
            raise

    def readfrom_into(self, address: int, buffer, *, start: int = 0, end: int | None = None) -> None:
        """Fill ``buffer[start:end]`` with bytes read from ``address``."""
        if end is None:
            end = len(buffer)
        request, read, _ = self._request(address, None, end - start)
        stats = self.stats
        stats.transactions += 1
        stats.wire_bytes += 1 + end - start
        try:
            self._transfer(request)
        except OSError:
            stats.errors += 1
            raise
        buffer[start:end] = read

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
        """Write then read in ONE transaction (repeated start, no stop in between)."""
        if in_end is None:
            in_end = len(buffer_in)
        data = buffer_out[out_start:out_end]
        length = in_end - in_start
        if len(data) == 1:  # a register read: prepared once, counted by the reader
            buffer_in[in_start:in_end] = self.register_reader(address, data[0], length)()
            return
        stats = self.stats  # a longer write before the read: built for this once
        stats.transactions += 1
        stats.wire_bytes += 2 + len(data) + length
        try:
            read_msg = self._msg.read(address, length)
            self._bus.i2c_rdwr(self._msg.write(address, data), read_msg)
        except OSError:
            stats.errors += 1
            raise
        buffer_in[in_start:in_end] = bytes(read_msg)

    def scan(self) -> list[int]:
        """Addresses 0x08..0x77 that acknowledge, probed the way ``i2cdetect`` does."""
        found = []
        stats = self.stats
        for address in range(0x08, 0x78):
            read_probe = any(address in r for r in _READ_PROBE_RANGES)
            stats.transactions += 1
            stats.wire_bytes += 2 if read_probe else 1
            try:
                if read_probe:
                    self._bus.read_byte(address)
                else:
                    self._bus.write_quick(address)
            except OSError:
                stats.errors += 1
                continue
            found.append(address)
        return found

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self._bus.close()

    deinit = close  # busio's name

    def __enter__(self) -> SMBusI2C:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SMBusI2C(bus_number={self.bus_number})"


def bus_time_s(wire_bytes: float, transactions: float, clock_hz: float) -> float:
    """Time on the wire: 9 clocks per byte (8 bits + ACK), plus a start and a stop per transaction
    and a repeated start per combined write-then-read (counted as one extra start here)."""
    bits = 9.0 * wire_bytes + 3.0 * transactions
    return bits / clock_hz
