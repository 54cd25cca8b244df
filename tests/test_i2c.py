"""SMBusI2C against a mocked smbus2.SMBus or a real one over a faked kernel call, and the emulated bus's routing, stats and faults."""

from __future__ import annotations

import errno
import inspect
import os

import pytest
from smbus2 import i2c_msg
from smbus2.smbus2 import I2C_M_RD

from walkcoach.hal.i2c import I2CStats, SMBusI2C
from walkcoach.sim.bno055_chip import BOOT_S, CONFIG_MODE, NDOF_MODE, EmulatedBno055
from walkcoach.sim.clock import VirtualClock
from walkcoach.sim.fake_kernel import FakeKernel, KernelPatch, chip_transfer
from walkcoach.sim.i2c_bus import EmulatedI2CBus

ADDRESS = 0x28
GRAVITY_MS2 = (0.5, -0.3, 9.79)


def still_source(t_s):
    return GRAVITY_MS2, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)


@pytest.fixture
def smbus(mocker):
    """The mocked ``smbus2.SMBus`` instance an ``SMBusI2C`` talks to."""
    return mocker.patch("smbus2.SMBus").return_value


def messages(call) -> list[tuple[int, int, int, bytes]]:
    return [(m.addr, m.flags, m.len, bytes(m) if not m.flags & I2C_M_RD else None) for m in call.args]


class Kernel:
    """The kernel's side of ``/dev/i2c-N`` for one test (a real smbus2.SMBus, its ``ioctl`` faked):
    ``transfer(address, written, n_read)`` answers; ``rdwr`` logs each I2C_RDWR call's messages
    as ``(address, flags, length, bytes written or None)``, ``requests`` the request objects."""

    def __init__(self) -> None:
        self.rdwr: list[list[tuple]] = []
        self.requests: list = []
        self.transfer = lambda address, written, n_read: bytes(n_read)
        self.error: int | None = None
        kernel = self

        class Recording(FakeKernel):
            def _rdwr(self, data) -> int:
                kernel.requests.append(data)
                return super()._rdwr(data)

        self.fake = Recording(self._transfer, log=self.rdwr)

    def _transfer(self, address: int, written, n_read: int) -> bytes:
        if self.error is not None:
            raise OSError(self.error, os.strerror(self.error))
        return self.transfer(address, written, n_read) if n_read else (self.transfer(address, written, 0), b"")[1]


@pytest.fixture
def kernel():
    k = Kernel()
    patch = KernelPatch(k.fake)
    yield k
    patch.restore()


# -- SMBusI2C --------------------------------------------------------------------------


def test_opens_the_numbered_bus(mocker):
    smbus_class = mocker.patch("smbus2.SMBus")
    SMBusI2C(3)
    smbus_class.assert_called_once_with(3)


def test_writeto_sends_one_write_message_with_the_slice(smbus):
    bus = SMBusI2C()
    bus.writeto(ADDRESS, bytearray([0xAA, 0x3D, 0x08, 0xBB]), start=1, end=3)
    assert smbus.i2c_rdwr.call_count == 1
    assert messages(smbus.i2c_rdwr.call_args) == [(ADDRESS, 0, 2, b"\x3d\x08")]


def test_empty_writeto_is_an_address_only_probe(smbus):
    SMBusI2C().writeto(ADDRESS, b"")
    smbus.write_quick.assert_called_once_with(ADDRESS)
    smbus.i2c_rdwr.assert_not_called()


def test_readfrom_into_fills_only_the_slice(kernel):
    kernel.transfer = lambda address, written, n: b"\x01\x02\x03"
    buf = bytearray(b"\xee" * 6)
    SMBusI2C().readfrom_into(ADDRESS, buf, start=2, end=5)
    assert kernel.rdwr == [[(ADDRESS, I2C_M_RD, 3, None)]]
    assert buf == bytearray(b"\xee\xee\x01\x02\x03\xee")


def test_writeto_then_readfrom_is_one_combined_transaction(kernel):
    kernel.transfer = lambda address, written, n: b"\x0a\x0b\x0c"
    out = bytearray([0x99, 0x28, 0x77])
    buf = bytearray(b"\xee" * 5)
    SMBusI2C().writeto_then_readfrom(
        ADDRESS, out, buf, out_start=1, out_end=2, in_start=1, in_end=4
    )
    assert kernel.rdwr == [[  # repeated start: both messages in one ioctl
        (ADDRESS, 0, 1, b"\x28"),
        (ADDRESS, I2C_M_RD, 3, None),
    ]]
    assert buf == bytearray(b"\xee\x0a\x0b\x0c\xee")


def test_writeto_then_readfrom_defaults_to_whole_buffers(kernel):
    kernel.transfer = lambda address, written, n: bytes(range(14))
    buf = bytearray(14)
    SMBusI2C().writeto_then_readfrom(ADDRESS, b"\x28", buf)
    assert kernel.rdwr == [[(ADDRESS, 0, 1, b"\x28"), (ADDRESS, I2C_M_RD, 14, None)]]
    assert buf == bytearray(range(14))


def test_stats_count_transactions_and_wire_bytes(kernel):
    bus = SMBusI2C()
    bus.writeto(ADDRESS, b"\x3d\x00")  # address + 2
    bus.writeto_then_readfrom(ADDRESS, b"\x28", bytearray(14))  # address + 1, address + 14
    bus.readfrom_into(ADDRESS, bytearray(4))  # address + 4
    assert (bus.stats.transactions, bus.stats.wire_bytes, bus.stats.errors) == (3, 3 + 17 + 5, 0)


def test_nack_propagates_as_oserror_and_is_counted(kernel):
    kernel.error = errno.EREMOTEIO
    bus = SMBusI2C()
    with pytest.raises(OSError) as info:
        bus.writeto_then_readfrom(ADDRESS, b"\x28", bytearray(14))
    assert info.value.errno == errno.EREMOTEIO
    assert bus.stats.errors == 1


def test_lock_is_exclusive_until_unlocked(smbus):
    bus = SMBusI2C()
    assert bus.try_lock()
    assert not bus.try_lock()
    bus.unlock()
    assert bus.try_lock()


def test_close_and_context_manager_close_the_smbus(smbus):
    with SMBusI2C() as bus:
        pass
    smbus.close.assert_called_once_with()
    assert bus.deinit == bus.close


def test_scan_lists_addresses_that_acknowledge(smbus):
    def quick(address):
        if address != ADDRESS:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    smbus.write_quick.side_effect = quick
    smbus.read_byte.side_effect = OSError(errno.EREMOTEIO, "Remote I/O error")
    assert SMBusI2C().scan() == [ADDRESS]
    assert smbus.read_byte.call_count == 8 + 16  # i2cdetect's read-probe ranges


def test_adafruit_driver_sets_up_a_chip_through_smbus_i2c(kernel):
    import adafruit_bno055

    from walkcoach.sim.bno055_chip import patch_driver_sleep

    clock = VirtualClock()
    chip = EmulatedBno055(clock=clock, source=still_source)
    kernel.transfer = chip_transfer({chip.address: chip})
    with patch_driver_sleep(clock):
        driver = adafruit_bno055.BNO055_I2C(SMBusI2C(1), ADDRESS)
        assert chip.mode == NDOF_MODE
        assert chip.resets == 1
        assert driver.gravity == pytest.approx(GRAVITY_MS2, abs=0.01)
    combined = [msgs for msgs in kernel.rdwr if len(msgs) == 2]
    assert combined, "register reads must be write+read in one I2C_RDWR"


def test_driver_probe_fails_cleanly_without_a_chip(kernel):
    import adafruit_bno055

    kernel.error = errno.EREMOTEIO
    with pytest.raises(ValueError, match="No I2C device"):
        adafruit_bno055.BNO055_I2C(SMBusI2C(1), ADDRESS)


# -- EmulatedI2CBus --------------------------------------------------------------------


def test_emulated_bus_has_the_same_interface_as_smbus_i2c():
    for name in ("try_lock", "unlock", "writeto", "readfrom_into", "writeto_then_readfrom", "scan", "close"):
        assert inspect.signature(getattr(EmulatedI2CBus, name)) == inspect.signature(
            getattr(SMBusI2C, name)
        ), name
    assert isinstance(EmulatedI2CBus(clock=VirtualClock()).stats, I2CStats)


@pytest.fixture
def rig():
    clock = VirtualClock()
    chip = EmulatedBno055(clock=clock, source=still_source)
    bus = EmulatedI2CBus(clock=clock, seed=1)
    bus.attach(chip)
    return clock, chip, bus


def read_chip_id(bus) -> int:
    buf = bytearray(1)
    bus.writeto_then_readfrom(ADDRESS, b"\x00", buf)
    return buf[0]


def errno_of(call) -> int | None:
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


def test_emulated_bus_routes_by_address_and_nacks_absent_ones(rig):
    _, _, bus = rig
    assert read_chip_id(bus) == 0xA0
    assert errno_of(lambda: bus.writeto(0x29, b"\x00")) == errno.EREMOTEIO
    assert bus.scan() == [ADDRESS]


def test_emulated_bus_counts_like_the_real_one(rig):
    _, _, bus = rig
    bus.writeto_then_readfrom(ADDRESS, b"\x28", bytearray(14))
    bus.writeto(ADDRESS, b"\x3d\x00")
    assert (bus.stats.transactions, bus.stats.wire_bytes) == (2, 17 + 3)


def test_nack_next_fails_exactly_that_many(rig):
    _, _, bus = rig
    bus.nack_next(2)
    codes = [errno_of(lambda: read_chip_id(bus)) for _ in range(3)]
    assert codes == [errno.EREMOTEIO, errno.EREMOTEIO, None]
    assert bus.stats.errors == 2


def test_nack_probability_is_seeded_and_roughly_right():
    def failures(seed):
        clock = VirtualClock()
        bus = EmulatedI2CBus(clock=clock, seed=seed)
        bus.attach(EmulatedBno055(clock=clock, source=still_source))
        bus.set_nack_probability(0.1)
        return [errno_of(lambda: read_chip_id(bus)) is not None for _ in range(2000)]

    first = failures(7)
    assert first == failures(7)
    assert 140 < sum(first) < 260


def test_timeouts_are_etimedout_and_can_cost_virtual_time(rig):
    clock, chip, _ = rig
    bus = EmulatedI2CBus(clock=clock, timeout_duration_s=0.035)
    bus.attach(EmulatedBno055(clock=clock, source=still_source, address=0x29))
    bus.timeout_next(1)
    assert errno_of(lambda: bus.writeto(0x29, b"\x00")) == errno.ETIMEDOUT
    assert clock.now_s == pytest.approx(0.035)
    bus.set_timeout_probability(1.0)
    assert errno_of(lambda: bus.writeto(0x29, b"\x00")) == errno.ETIMEDOUT


def test_corruption_replaces_read_data(rig):
    _, _, bus = rig
    bus.corrupt_next(1, pattern="ff")
    assert read_chip_id(bus) == 0xFF
    assert read_chip_id(bus) == 0xA0
    bus.set_corrupt_probability(1.0, pattern="random")
    reads = set()
    for _ in range(20):
        buf = bytearray(8)
        bus.writeto_then_readfrom(ADDRESS, b"\x00", buf)
        reads.add(bytes(buf))
    assert len(reads) == 20 and bytes([0xA0, 0xFB, 0x32, 0x0F, 0x11, 0x03, 0x15, 0x00]) not in reads
    with pytest.raises(ValueError):
        bus.corrupt_next(1, pattern="zeros")


def test_scheduled_chip_reset_happens_at_its_virtual_time(rig):
    clock, chip, bus = rig
    bus.writeto(ADDRESS, bytes([0x3D, NDOF_MODE]))
    bus.schedule_reset(at_s=2.0)
    clock.sleep_until(1.99)
    assert read_chip_id(bus) == 0xA0 and chip.mode == NDOF_MODE
    clock.sleep_until(2.0 + BOOT_S - 0.01)
    assert errno_of(lambda: read_chip_id(bus)) == errno.EREMOTEIO  # busy rebooting
    clock.sleep_until(2.0 + BOOT_S)
    assert read_chip_id(bus) == 0xA0
    assert chip.mode == CONFIG_MODE and chip.calibration_status() == 0


def test_unplug_nacks_for_the_window_then_the_chip_boots_in_config_mode(rig):
    clock, chip, bus = rig
    bus.writeto(ADDRESS, bytes([0x3D, NDOF_MODE]))
    clock.sleep_until(10.0)
    assert chip.calibration_status() != 0
    bus.schedule_unplug(at_s=10.5, duration_s=2.0)
    clock.sleep_until(10.5)
    assert errno_of(lambda: read_chip_id(bus)) == errno.EREMOTEIO
    clock.sleep_until(12.4)
    assert errno_of(lambda: read_chip_id(bus)) == errno.EREMOTEIO
    clock.sleep_until(12.5 + BOOT_S - 0.01)
    assert errno_of(lambda: read_chip_id(bus)) == errno.EREMOTEIO  # powered again, still booting
    clock.sleep_until(12.5 + BOOT_S)
    assert read_chip_id(bus) == 0xA0
    assert chip.mode == CONFIG_MODE and chip.calibration_status() == 0


def test_transaction_log_is_off_by_default_and_records_when_on():
    clock = VirtualClock()
    assert EmulatedI2CBus(clock=clock).transaction_log is None
    bus = EmulatedI2CBus(clock=clock, log_transactions=True)
    bus.attach(EmulatedBno055(clock=clock, source=still_source))
    read_chip_id(bus)
    bus.nack_next(1)
    errno_of(lambda: bus.writeto(ADDRESS, b"\x3d\x00"))
    (ok, failed) = bus.transaction_log
    assert (ok.address, ok.written, ok.read, ok.errno) == (ADDRESS, b"\x00", b"\xa0", None)
    assert (failed.written, failed.errno) == (b"\x3d\x00", errno.EREMOTEIO)


def test_i2c_msg_roundtrip_assumption():
    # The mocks above read written bytes with bytes(msg): guard that smbus2 still allows it.
    assert bytes(i2c_msg.write(ADDRESS, b"\x28")) == b"\x28"


def test_repeated_burst_reads_reuse_their_request_and_return_each_reads_bytes(kernel):
    answers = iter([b"\x01\x02\x03", b"\x04\x05\x06", b"\x07\x08\x09"])
    kernel.transfer = lambda address, written, n: next(answers)
    bus = SMBusI2C()
    first, second, other = bytearray(3), bytearray(3), bytearray(3)
    bus.writeto_then_readfrom(ADDRESS, b"\x28", first)
    bus.writeto_then_readfrom(ADDRESS, b"\x28", second)
    bus.writeto_then_readfrom(ADDRESS, b"\x08", other)
    assert (first, second, other) == (b"\x01\x02\x03", b"\x04\x05\x06", b"\x07\x08\x09")  # copied out each time
    assert kernel.requests[0] is kernel.requests[1]  # the same prepared request handed to the kernel
    assert kernel.requests[2] is not kernel.requests[0]
    assert [msgs[0][3] for msgs in kernel.rdwr] == [b"\x28", b"\x28", b"\x08"]  # each its own register


def test_the_set_ups_writes_reach_the_kernel_with_their_own_bytes(kernel):
    """Writes are built per call by smbus2 (new requests, maybe at a freed one's address): never mixed up."""
    bus = SMBusI2C()
    for value in range(70):  # past the fake kernel's cache of decoded requests
        bus.writeto(ADDRESS, bytes([0x3D, value]))
    assert [msgs for msgs in kernel.rdwr] == [[(ADDRESS, 0, 2, bytes([0x3D, value]))] for value in range(70)]


def test_timeouts_can_be_limited_to_a_window_of_virtual_time(rig):
    clock, _, bus = rig
    bus.timeout_duration_s = 1.0
    bus.set_timeout_probability(1.0, from_s=10.0, until_s=20.0)
    bus.writeto(ADDRESS, b"\x3b")  # before the window: fine
    clock.sleep_until(10.0)
    with pytest.raises(OSError) as raised:
        bus.writeto(ADDRESS, b"\x3b")
    assert raised.value.errno == errno.ETIMEDOUT and clock.monotonic() == pytest.approx(11.0)
    clock.sleep_until(20.0)
    bus.writeto(ADDRESS, b"\x3b")  # after it: fine again


def test_a_prepared_register_reader_is_one_combined_transaction_per_call_returning_each_reads_bytes(kernel):
    answers = iter([b"\x01\x02\x03", b"\x04\x05\x06"])
    kernel.transfer = lambda address, written, n: next(answers)
    bus = SMBusI2C()
    read = bus.register_reader(ADDRESS, 0x28, 3)
    first = bytes(read())
    second = bytes(read())
    assert (first, second) == (b"\x01\x02\x03", b"\x04\x05\x06")
    assert kernel.rdwr == [[(ADDRESS, 0, 1, b"\x28"), (ADDRESS, I2C_M_RD, 3, None)]] * 2  # write reg, repeated start, read
    assert kernel.requests[0] is kernel.requests[1]  # nothing built per call
    assert (bus.stats.transactions, bus.stats.wire_bytes) == (2, 2 * (2 + 1 + 3))  # as writeto_then_readfrom counts
    kernel.error = 121
    with pytest.raises(OSError):
        read()
    assert bus.stats.errors == 1
