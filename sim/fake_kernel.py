"""The belt's real I2C path with only the kernel faked: smbus2's ``ioctl`` answered by an emulated chip.

``walkcoach bench`` uses it to measure the device path as the belt runs it:
``hal.i2c.SMBusI2C`` over a real ``smbus2.SMBus``, the Adafruit driver and
``hal.bno055.Bno055Imu``, the service with its store and status file. Only two
things are replaced in smbus2: opening ``/dev/i2c-N`` (it opens ``/dev/null``)
and the ``ioctl`` calls (``I2C_FUNCS``, ``I2C_SLAVE``, ``I2C_SMBUS`` quick
write and byte read, ``I2C_RDWR``), which a ``transfer(address, written,
n_read)`` function answers.

Two ways to answer:

- in the same process, from an ``EmulatedBno055`` (``open_backend``: the "pi"
  backend's parts on a virtual clock, for timing the tick);
- from another process over a pipe (``serve_chip`` in the parent,
  ``run_belt_client`` in the child): the child is a real ``walkcoach run
  --service --backend pi`` whose memory holds nothing of the emulator (no numpy,
  no walker), for measuring the running belt's resident memory.

This module imports no numpy at the top: the child process imports it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import smbus2
import smbus2.smbus2 as smbus2_impl

from walkcoach.hal.pi_backend import PiBackend

if TYPE_CHECKING:
    from walkcoach.sim.walker import SimulatedWalk  # numpy: only the child process imports it

Transfer = Callable[[int, bytes | None, int], bytes]  # (address, bytes written or None, bytes to read) -> read

_QUICK_WRITE_FUNCS = 0x0EFF0009  # I2C, SMBus quick, byte, byte/word data, block: a usual adapter's mask


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class FakeKernel:
    """Stands in for ``fcntl.ioctl`` inside smbus2, answering from ``transfer``."""

    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer
        self.calls = 0
        self._address: dict[int, int] = {}  # fd -> the I2C_SLAVE address

    def __call__(self, fd: int, request: int, arg=0, *rest):
        self.calls += 1
        if request == smbus2_impl.I2C_RDWR:
            data = arg
            msgs = data.msgs
            write_msg = None
            for k in range(data.nmsgs):
                msg = msgs[k]
                if msg.flags & smbus2_impl.I2C_M_RD:
                    out = bytes(write_msg) if write_msg is not None else None
                    answer = self.transfer(msg.addr, out, msg.len)
                    ctypes.memmove(msg.buf, bytes(answer), msg.len)
                    write_msg = None
                else:
                    if write_msg is not None:  # two writes in a row: the first on its own
                        self.transfer(write_msg.addr, bytes(write_msg), 0)
                    write_msg = msg
            if write_msg is not None:
                self.transfer(write_msg.addr, bytes(write_msg), 0)
            return 0
        if request in (smbus2_impl.I2C_SLAVE, smbus2_impl.I2C_SLAVE_FORCE):
            self._address[fd] = int(arg)
            return 0
        if request == smbus2_impl.I2C_FUNCS:
            arg.value = _QUICK_WRITE_FUNCS  # a ctypes c_ulong (smbus2 passes it by reference)
            return 0
        if request == smbus2_impl.I2C_SMBUS:
            address = self._address.get(fd)
            if address is None:
                raise _oserror(errno.EINVAL)
            size = arg.size
            if size == smbus2_impl.I2C_SMBUS_QUICK:
                self.transfer(address, b"", 0)
                return 0
            if size == smbus2_impl.I2C_SMBUS_BYTE and arg.read_write == smbus2_impl.I2C_SMBUS_READ:
                arg.data.contents.byte = self.transfer(address, None, 1)[0]
                return 0
            raise _oserror(errno.EOPNOTSUPP)
        if request == getattr(smbus2_impl, "I2C_PEC", None):
            return 0
        raise _oserror(errno.ENOTTY)


class KernelPatch:
    """smbus2's device open and ``ioctl`` replaced until ``restore()``."""

    def __init__(self, kernel: FakeKernel) -> None:
        self.kernel = kernel
        self._saved_ioctl = smbus2_impl.ioctl  # type: ignore[attr-defined]  # smbus2 imports it from fcntl
        self._saved_open = smbus2.SMBus.open

        def open_bus(bus_self, bus) -> None:
            bus_self.fd = os.open(os.devnull, os.O_RDWR)  # a real descriptor, so close() works as usual
            bus_self.funcs = bus_self._get_funcs()

        smbus2_impl.ioctl = kernel  # type: ignore[attr-defined]  # the fake kernel stands in for the module's ioctl
        smbus2.SMBus.open = open_bus  # type: ignore[method-assign, assignment]

    def restore(self) -> None:
        if self._saved_ioctl is not None:
            smbus2_impl.ioctl = self._saved_ioctl  # type: ignore[attr-defined]
            smbus2.SMBus.open = self._saved_open  # type: ignore[method-assign]
            self._saved_ioctl = None


def chip_transfer(devices: dict) -> Transfer:
    """Route a transfer to emulated chips by address; an absent address NACKs."""

    def transfer(address: int, written: bytes | None, n_read: int) -> bytes:
        device = devices.get(address)
        if device is None:
            raise _oserror(errno.EREMOTEIO)
        if written is not None:
            device.i2c_write(written)
        return bytes(device.i2c_read(n_read)) if n_read else b""

    return transfer


# -- in one process: the pi backend's parts on a virtual clock -------------------------------
def open_backend(
    *,
    scenario: str,
    seed: int = 0,
    rate_hz: float = 100.0,
    imu_settings=None,
    pins=None,
    mount=None,
    state_dir=None,
    clock=None,
    pace: str = "max",
    **_ignored,
):
    """A ``hal.pi_backend.PiBackend`` whose bus is ``SMBusI2C`` over the faked kernel, fed by a simulated walk.

    The clock is virtual (``clock``, default a new ``VirtualClock``), so the loop runs
    as fast as the CPU allows, or with ``pace="realtime"`` held to the wall clock (a
    tick every 10 ms, as on the belt); gpiozero's mock pins stand in for the GPIO."""
    from gpiozero.pins.mock import MockFactory

    from walkcoach.hal.bno055 import Bno055Imu
    from walkcoach.hal.gpio import open_button, open_outputs
    from walkcoach.hal.i2c import SMBusI2C
    from walkcoach.hal.mount import Mount
    from walkcoach.sim.bno055_chip import EmulatedBno055, WalkSignal, patch_driver_sleep
    from walkcoach.sim.clock import PacedClock, VirtualClock
    from walkcoach.sim.walker import simulate

    mount = mount or Mount()
    clock = clock or (PacedClock() if pace == "realtime" else VirtualClock())
    walk = simulate(scenario, seed, rate_hz=rate_hz, mount=mount)
    chip = EmulatedBno055(clock=clock, source=WalkSignal(walk))
    patch = KernelPatch(FakeKernel(chip_transfer({chip.address: chip})))
    sleep_patch = patch_driver_sleep(clock)
    pin_factory = MockFactory()
    outputs = open_outputs(
        buzzer=getattr(pins, "buzzer", "GPIO17"), led=getattr(pins, "led", "GPIO27"), motor=getattr(pins, "motor", ""),
        pin_factory=pin_factory,
    )
    button = open_button(getattr(pins, "button", "GPIO22"), pin_factory=pin_factory)
    try:
        bus = SMBusI2C(getattr(imu_settings, "i2c_bus", 1))
        imu = Bno055Imu(
            i2c=bus, clock=clock, mount=mount, fusion_mode=getattr(imu_settings, "fusion_mode", "IMUPLUS"),
            address=getattr(imu_settings, "address", 0x28), state_dir=state_dir,
        )
    except BaseException:
        sleep_patch.restore()
        patch.restore()
        raise
    backend = FakeKernelBackend(imu=imu, outputs=outputs, button=button, clock=clock, bus=bus)
    backend.walk = walk
    backend.restores = (sleep_patch.restore, patch.restore)
    return backend


class FakeKernelBackend(PiBackend):
    """The pi backend's parts; closing it also puts smbus2 and the driver's sleep back."""

    walk: SimulatedWalk | None = None
    restores: tuple = ()

    def close(self) -> None:
        try:
            super().close()
        finally:
            for restore in self.restores:
                restore()
            self.restores = ()


# -- across processes: the running belt in a child, the chip in the parent ------------------------
def serve_chip(listener, scenario: str, seed: int, rate_hz: float, *, stop) -> None:
    """Answer one child's transfers from an emulated chip on the wall clock, until it disconnects or ``stop`` is set."""
    from walkcoach.sim.bno055_chip import EmulatedBno055, WalkSignal
    from walkcoach.sim.walker import simulate

    class WallClock:
        def __init__(self) -> None:
            self._start = time.monotonic()

        def monotonic(self) -> float:
            return time.monotonic() - self._start

        def sleep_until(self, t_s: float) -> None:
            delay = t_s - self.monotonic()
            if delay > 0:
                time.sleep(delay)

    walk = simulate(scenario, seed, rate_hz=rate_hz)
    clock = WallClock()
    chip = EmulatedBno055(clock=clock, source=WalkSignal(walk))
    transfer = chip_transfer({chip.address: chip})
    conn = listener.accept()
    with conn:
        while not stop.is_set():
            try:
                if not conn.poll(0.2):
                    continue
                address, written, n_read = conn.recv()
            except (EOFError, OSError):
                return
            try:
                conn.send(("ok", transfer(address, written, n_read)))
            except OSError as exc:
                conn.send(("oserror", exc.errno))
            except Exception as exc:  # noqa: BLE001 - the end of the walk and the like: the child sees an I/O error
                conn.send(("oserror", errno.EIO))
                print(f"fake kernel: {exc}", file=sys.stderr)


def run_belt_client(address, authkey: bytes, argv: list[str]) -> int:
    """In the child: fake the kernel over a pipe to ``serve_chip``, then run ``walkcoach ARGV`` (the real CLI)."""
    from multiprocessing.connection import Client

    conn = Client(address, authkey=authkey)

    def transfer(address: int, written: bytes | None, n_read: int) -> bytes:
        conn.send((address, written, n_read))
        status, value = conn.recv()
        if status != "ok":
            raise _oserror(value)
        return value

    KernelPatch(FakeKernel(transfer))
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    from walkcoach.device.cli.cli import main

    return main(argv)
