"""The emulated BNO055 under the real Adafruit driver, and Bno055Imu over it (no hardware)."""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
import types

import adafruit_bno055
import numpy as np
import pytest

from walkcoach.hal import bno055
from walkcoach.hal.bno055 import CALIBRATION_FILE, SETUP_BUDGET_S, Bno055Imu, OffsetsSaver, offsets_problem
from walkcoach.hal.errors import ConfigError, EndOfStream, ImuError, SensorPaused
from walkcoach.hal.mount import Mount
from walkcoach.sim.bno055_chip import (
    ACCEL_CALIBRATION_S,
    BOOT_S,
    CONFIG_MODE,
    DEFAULT_LEARNED_OFFSETS,
    GYRO_CALIBRATION_S,
    IMUPLUS_MODE,
    NDOF_MODE,
    TO_CONFIG_S,
    TO_OPERATION_S,
    EmulatedBno055,
    WalkSignal,
    patch_driver_sleep,
)
from walkcoach.sim.clock import VirtualClock
from walkcoach.sim.i2c_bus import EmulatedI2CBus

ADDRESS = 0x28
RATE_HZ = 100.0
GRAVITY_MS2 = (1.2, -0.8, 9.70)  # sensor frame, |g| ~ 9.81
LINEAR_MS2 = (0.35, -1.25, 2.5)
GYRO_RADS = (0.1, -0.2, 0.3)


def still_source(t_s):
    return GRAVITY_MS2, LINEAR_MS2, GYRO_RADS


def make_walk(duration_s: float):
    """Small arrays shaped like sim.walker's SimulatedWalk: gravity tilting slowly, a 2 Hz bounce."""
    t_s = np.arange(int(duration_s * RATE_HZ)) / RATE_HZ
    tilt_rad = np.radians(20.0) * np.sin(2 * np.pi * 0.1 * t_s)
    gravity = 9.81 * np.stack([np.sin(tilt_rad), np.zeros_like(t_s), np.cos(tilt_rad)], axis=1)
    linear = np.stack([np.zeros_like(t_s), np.zeros_like(t_s), 1.5 * np.sin(2 * np.pi * 2 * t_s)], axis=1)
    gyro = np.stack([np.zeros_like(t_s), np.gradient(tilt_rad, t_s), np.zeros_like(t_s)], axis=1)
    return types.SimpleNamespace(
        t_s=t_s, gravity_ms2=gravity, linear_acc_ms2=linear, gyro_rads=gyro, rate_hz=RATE_HZ
    )


class Rig:
    def __init__(self, source=still_source, **chip_options) -> None:
        self.clock = VirtualClock()
        self.chip = EmulatedBno055(clock=self.clock, source=source, **chip_options)
        self.bus = EmulatedI2CBus(clock=self.clock, seed=3)
        self.bus.attach(self.chip)

    def write(self, register: int, *values: int) -> None:
        self.bus.writeto(ADDRESS, bytes([register, *values]))

    def read(self, register: int, size: int) -> bytes:
        buf = bytearray(size)
        self.bus.writeto_then_readfrom(ADDRESS, bytes([register]), buf)
        return bytes(buf)

    def gravity_lsb(self) -> tuple[int, int, int]:
        return struct.unpack("<3h", self.read(0x2E, 6))

    def imu(self, **options) -> Bno055Imu:
        return Bno055Imu(i2c=self.bus, clock=self.clock, **options)

    def tick(self, imu: Bno055Imu, seconds: float):
        """Read at RATE_HZ for ``seconds`` of virtual time; the last sample (the offset capture's few
        paused ticks have none, as in the loop, where they are lost time)."""
        sample = None
        for _ in range(round(seconds * RATE_HZ)):
            self.clock.sleep(1 / RATE_HZ)
            try:
                sample = imu.read()
            except SensorPaused:
                pass
        return sample


@pytest.fixture
def rig():
    rig = Rig()
    with patch_driver_sleep(rig.clock):
        yield rig


# -- the real driver against the emulated chip ------------------------------------------


def test_driver_initialises_the_chip_and_reads_the_source(rig):
    driver = adafruit_bno055.BNO055_I2C(rig.bus, ADDRESS)
    assert rig.chip.resets == 1  # the constructor's RST_SYS
    assert rig.clock.now_s == pytest.approx(0.77)  # its sleeps ran in virtual time
    assert driver.mode == NDOF_MODE == rig.chip.mode
    assert rig.chip.register(0x08, page=1) & 0x03 == adafruit_bno055.ACCEL_4G
    assert driver.gravity == pytest.approx(GRAVITY_MS2, abs=0.01)
    assert driver.linear_acceleration == pytest.approx(LINEAR_MS2, abs=0.01)
    assert driver.acceleration == pytest.approx(np.add(GRAVITY_MS2, LINEAR_MS2), abs=0.01)
    assert driver.gyro == pytest.approx(GYRO_RADS, abs=0.0011)  # 1/16 dps resolution
    assert driver.temperature == 25
    w, x, y, z = driver.quaternion
    assert w * w + x * x + y * y + z * z == pytest.approx(1.0, abs=1e-3)


def test_chip_evaluates_the_source_at_the_virtual_time_of_the_read(rig):
    walk = make_walk(60.0)
    rig = Rig(WalkSignal(walk))
    with patch_driver_sleep(rig.clock):
        driver = adafruit_bno055.BNO055_I2C(rig.bus, ADDRESS)
        for t_s in (1.0, 2.5, 7.31):
            rig.clock.sleep_until(t_s)
            i = round(t_s * RATE_HZ)
            assert driver.gravity == pytest.approx(tuple(walk.gravity_ms2[i]), abs=0.01)
            assert driver.linear_acceleration == pytest.approx(tuple(walk.linear_acc_ms2[i]), abs=0.01)


def test_axis_remap_registers_are_applied_to_outputs(rig):
    driver = adafruit_bno055.BNO055_I2C(rig.bus, ADDRESS)
    # output X <- sensor Y, output Y <- sensor X, output Z <- -sensor Z
    driver.axis_remap = (adafruit_bno055.AXIS_REMAP_Y, adafruit_bno055.AXIS_REMAP_X,
                         adafruit_bno055.AXIS_REMAP_Z, 0, 0, 1)
    rig.clock.sleep(0.01)
    gx, gy, gz = GRAVITY_MS2
    assert driver.gravity == pytest.approx((gy, gx, -gz), abs=0.01)
    assert driver.axis_remap == (1, 0, 2, 0, 0, 1)
    # an invalid map (two outputs from one axis) keeps the previous one
    driver.axis_remap = (0, 0, 2, 0, 0, 1)
    assert driver.axis_remap[:3] == (1, 0, 2)


def test_unit_sel_mg_and_rps(rig):
    rig.write(0x3B, 0x80 | 0x01 | 0x02)  # acc mg, gyro rps
    rig.write(0x3D, NDOF_MODE)
    rig.clock.sleep(TO_OPERATION_S)
    acc_mg = struct.unpack("<3h", rig.read(0x08, 6))
    gyro_lsb = struct.unpack("<3h", rig.read(0x14, 6))
    assert acc_mg == pytest.approx(np.add(GRAVITY_MS2, LINEAR_MS2) / 9.80665 * 1000, abs=1)
    assert gyro_lsb == pytest.approx(np.multiply(GYRO_RADS, 900), abs=1)


def test_registers_burst_read_across_addresses(rig):
    assert rig.read(0x00, 7) == bytes([0xA0, 0xFB, 0x32, 0x0F, 0x11, 0x03, 0x15])
    rig.write(0x3D, IMUPLUS_MODE)
    rig.clock.sleep(TO_OPERATION_S)
    burst = rig.read(0x28, 14)
    assert struct.unpack("<3h", burst[6:12]) == rig.gravity_lsb()
    assert burst[12] == 25


def test_page_one_holds_the_sensor_config(rig):
    rig.write(0x07, 1)
    assert rig.read(0x08, 4) == bytes([0x0D, 0x0B, 0x38, 0x00])
    rig.write(0x08, 0x0E)
    assert rig.read(0x08, 1) == b"\x0e"
    rig.write(0x07, 0)
    assert rig.read(0x00, 1) == b"\xa0"


def test_pages_as_the_datasheet_maps_them(rig):
    """PAGE_ID on both pages; page 1 is reserved (reads 0) but for its config and UNIQUE_ID; page 0 deaf on page 1."""
    assert rig.read(0x07, 1) == b"\x00" and rig.chip.page == 0
    rig.write(0x3D, 0x00)  # CONFIG mode (already)
    rig.write(0x07, 1)
    assert rig.read(0x07, 1) == b"\x01" and rig.chip.page == 1
    assert rig.read(0x00, 7) == bytes(7)  # the "chip id" on page 1: 0x00
    assert rig.read(0x50, 16) == rig.read(0x50, 16) != bytes(16)  # UNIQUE_ID
    assert rig.read(0x20, 0x30) == bytes(0x30)  # reserved
    rig.write(0x3D, IMUPLUS_MODE)  # OPR_MODE is a page-0 register: ignored on page 1
    rig.write(0x3F, 0x20)  # so is SYS_TRIGGER: no reset
    assert rig.chip.mode == CONFIG_MODE and rig.chip.resets == 0
    rig.write(0x07, 0)
    assert rig.read(0x00, 1) == b"\xa0" and rig.read(0x07, 1) == b"\x00"
    rig.write(0x07, 1)
    rig.bus.schedule_reset(at_s=rig.clock.now_s)
    rig.clock.sleep(BOOT_S)
    assert rig.read(0x00, 1) == b"\xa0"  # a reset selects page 0


def test_the_driver_alone_cannot_set_up_a_chip_left_on_page_1(rig):
    """The emulator reproduces the field failure: the driver reads the chip id without selecting page 0."""
    rig.write(0x07, 1)
    with pytest.raises(RuntimeError, match=r"bad chip id \(0x0 != 0xa0\)"):
        adafruit_bno055.BNO055_I2C(rig.bus, ADDRESS)


class NackAfterPageOne:
    """The emulated bus, but right after the driver selects page 1 the next ``count`` transactions NACK."""

    def __init__(self, bus, count: int) -> None:
        self.bus = bus
        self.count = count
        self.armed = True
        self.left_on_page_1 = 0

    def __getattr__(self, name):
        return getattr(self.bus, name)

    def writeto(self, address, buffer, **kwargs):
        self.bus.writeto(address, buffer, **kwargs)
        if self.armed and bytes(buffer[:2]) == b"\x07\x01":
            self.armed = False
            self.left_on_page_1 += 1
            self.bus.nack_next(self.count)


@pytest.mark.parametrize("nacks", [1, 6])
def test_a_nack_while_on_page_1_never_needs_a_power_cycle(rig, nacks):
    bus = NackAfterPageOne(rig.bus, nacks)
    imu = Bno055Imu(i2c=bus, clock=rig.clock)  # 1: a retried transfer; 6: a failed attempt (4 tries), then a new one from page 0
    assert bus.left_on_page_1 == 1
    assert imu.setup_attempts == (1 if nacks < 4 else 2)
    assert rig.chip.page == 0 and rig.chip.mode == IMUPLUS_MODE
    assert rig.tick(imu, 0.1).gravity_ms2 == pytest.approx(GRAVITY_MS2, abs=0.01)
    # and a chip found on page 1 (a crashed earlier run) is set up from page 0 too
    rig.write(0x07, 1)
    imu.reset()
    assert rig.chip.page == 0 and rig.tick(imu, 0.1) is not None


def test_100_of_100_set_ups_succeed_at_5_percent_nacks():
    succeeded = retried = 0
    for seed in range(100):
        rig = Rig()
        rig.bus = EmulatedI2CBus(clock=rig.clock, seed=seed)
        rig.bus.attach(rig.chip)
        rig.bus.set_nack_probability(0.05)
        with patch_driver_sleep(rig.clock):
            imu = rig.imu()  # raises ImuError if the set-up failed
            rig.bus.set_nack_probability(0.0)
            succeeded += rig.tick(imu, 0.05) is not None
            retried += imu.setup_retries > 0
    assert succeeded == 100
    assert retried > 50  # the NACKs really hit the set-up (~30 transfers each)


def test_a_set_up_on_a_bus_that_stalls_every_transfer_gives_up_within_its_budget(rig):
    rig.bus.timeout_duration_s = 1.0  # every transfer stretched 1 s, then ETIMEDOUT
    rig.bus.set_timeout_probability(1.0)
    started_s = rig.clock.now_s
    with pytest.raises(ImuError, match="setup failed"):
        rig.imu()
    # the budget + the transfer in flight + the retry wait: what WatchdogSec is checked against
    assert rig.clock.now_s - started_s <= SETUP_BUDGET_S + 1.0 + 0.1


def test_frozen_chip_repeats_its_data_bytes_through_resets(rig):
    walk = make_walk(20.0)
    rig = Rig(WalkSignal(walk))
    with patch_driver_sleep(rig.clock):
        imu = rig.imu()
        rig.chip.freeze(from_s=2.0, until_s=5.0)
        rig.tick(imu, 2.05 - rig.clock.now_s)
        frozen = [rig.tick(imu, 0.01) for _ in range(50)]
        assert len({(s.gravity_ms2, s.linear_acc_ms2) for s in frozen}) == 1
        imu.reset()  # a reset does not help a hung sensor
        assert rig.tick(imu, 0.05)[1:3] == frozen[0][1:3]
        rig.tick(imu, 5.0 - rig.clock.now_s)
        after = [rig.tick(imu, 0.01) for _ in range(5)]
        assert len({s.linear_acc_ms2 for s in after}) == 5


def test_data_is_not_valid_until_the_mode_switch_completes(rig):
    assert rig.gravity_lsb() == (0, 0, 0)  # CONFIG mode
    rig.write(0x3D, IMUPLUS_MODE)
    assert rig.gravity_lsb() == (0, 0, 0)
    rig.clock.sleep(TO_OPERATION_S * 0.9)
    assert rig.gravity_lsb() == (0, 0, 0)
    rig.clock.sleep(TO_OPERATION_S * 0.1)
    assert rig.gravity_lsb() == tuple(round(v * 100) for v in GRAVITY_MS2)
    rig.write(0x3D, CONFIG_MODE)
    assert rig.gravity_lsb() == (0, 0, 0)
    rig.write(0x55, 0x12)  # config-only register: ignored until CONFIG is reached (19 ms)
    rig.clock.sleep(TO_CONFIG_S)
    assert rig.read(0x55, 1) == b"\x00"
    rig.write(0x55, 0x12)
    assert rig.read(0x55, 1) == b"\x12"


def test_offsets_are_only_accessible_in_config_mode(rig):
    offsets = bytes(range(1, 23))
    rig.write(0x55, *offsets)
    assert rig.read(0x55, 22) == offsets
    rig.write(0x3D, IMUPLUS_MODE)
    rig.clock.sleep(TO_OPERATION_S)
    assert rig.read(0x55, 22) == bytes(22)  # reads as zero outside CONFIG
    rig.write(0x55, *bytes(22))  # ignored outside CONFIG
    assert rig.chip.offsets == offsets


def test_sys_trigger_reset_makes_the_chip_busy_then_default(rig):
    rig.write(0x3D, NDOF_MODE)
    rig.clock.sleep(5.0)
    rig.write(0x3F, 0x20)
    for dt_s in (0.0, 0.3, BOOT_S - 0.001):
        rig.clock.sleep_until(5.0 + dt_s)
        with pytest.raises(OSError) as info:
            rig.read(0x00, 1)
        assert info.value.errno == 121
    rig.clock.sleep_until(5.0 + BOOT_S)
    assert rig.read(0x00, 1) == b"\xa0"
    assert rig.read(0x3D, 1) == bytes([CONFIG_MODE])
    assert rig.read(0x35, 1) == b"\x00"  # calibration lost
    assert rig.read(0x41, 2) == bytes([0x24, 0x00])
    assert rig.gravity_lsb() == (0, 0, 0)


def calib_fields(byte: int) -> dict[str, int]:
    return {"sys": byte >> 6 & 3, "gyr": byte >> 4 & 3, "acc": byte >> 2 & 3, "mag": byte & 3}


def test_calibration_rises_with_fusion_time_and_imuplus_keeps_sys_and_mag_at_zero(rig):
    assert rig.chip.calibration_status() == 0
    rig.write(0x3D, IMUPLUS_MODE)
    rig.clock.sleep(TO_OPERATION_S + GYRO_CALIBRATION_S[-1])
    assert calib_fields(rig.read(0x35, 1)[0]) == {"sys": 0, "gyr": 3, "acc": 0, "mag": 0}
    rig.clock.sleep(ACCEL_CALIBRATION_S[-1])
    assert calib_fields(rig.read(0x35, 1)[0]) == {"sys": 0, "gyr": 3, "acc": 3, "mag": 0}


def test_calibration_does_not_advance_in_config_mode_and_ndof_reaches_sys_3(rig):
    rig.write(0x3D, NDOF_MODE)
    rig.clock.sleep(TO_OPERATION_S + 1.0)
    rig.write(0x3D, CONFIG_MODE)
    rig.clock.sleep(100.0)
    assert calib_fields(rig.chip.calibration_status())["acc"] == 0
    rig.write(0x3D, NDOF_MODE)
    rig.clock.sleep(TO_OPERATION_S + ACCEL_CALIBRATION_S[-1])
    assert rig.chip.calibration_status() == 0xFF
    rig.write(0x3D, CONFIG_MODE)
    rig.clock.sleep(TO_CONFIG_S)
    assert rig.read(0x55, 22) == DEFAULT_LEARNED_OFFSETS


def test_restored_offsets_make_calibration_come_back_quickly(rig):
    rig.write(0x55, *DEFAULT_LEARNED_OFFSETS)
    rig.write(0x3D, IMUPLUS_MODE)
    rig.clock.sleep(TO_OPERATION_S + ACCEL_CALIBRATION_S[-1] / 5)
    assert calib_fields(rig.chip.calibration_status())["acc"] == 3


def test_walk_signal_indexes_by_virtual_time_and_ends():
    walk = make_walk(2.0)
    signal = WalkSignal(walk)
    assert signal.index(-1.0) == 0
    assert signal.index(0.504) == 50
    assert signal(1.0)[0] == pytest.approx(tuple(walk.gravity_ms2[100]))
    assert signal.index(1.99) == 199
    with pytest.raises(EndOfStream):
        signal.index(2.0)
    late = WalkSignal(walk, start_s=10.0)
    assert late.index(10.5) == 50


def test_end_of_walk_propagates_through_the_bus(rig):
    rig = Rig(WalkSignal(make_walk(1.0)))
    rig.write(0x3D, IMUPLUS_MODE)
    rig.clock.sleep_until(1.5)
    with pytest.raises(EndOfStream):
        rig.gravity_lsb()


def test_patch_driver_sleep_advances_the_clock_and_restores():
    import time

    clock = VirtualClock()
    with patch_driver_sleep(clock):
        adafruit_bno055.time.sleep(0.7)
        assert adafruit_bno055.time.monotonic is time.monotonic
    assert clock.now_s == pytest.approx(0.7)
    assert adafruit_bno055.time is time


# -- Bno055Imu ----------------------------------------------------------------------------


def test_imu_setup_leaves_the_chip_in_the_fusion_mode(rig):
    imu = rig.imu()
    assert rig.chip.mode == IMUPLUS_MODE
    assert rig.imu(fusion_mode="NDOF") and rig.chip.mode == NDOF_MODE
    with pytest.raises(ConfigError):
        rig.imu(fusion_mode="COMPASS")
    imu.close()
    with pytest.raises(ImuError):
        imu.read()


def test_read_is_one_transaction_of_at_most_20_wire_bytes(rig):
    imu = rig.imu()
    rig.tick(imu, 0.1)
    before = rig.bus.stats.snapshot()
    sample = rig.tick(imu, 1.0)
    delta = rig.bus.stats - before
    assert delta.transactions == 100
    assert delta.wire_bytes / delta.transactions <= 20
    assert sample.t_s == rig.clock.now_s
    assert sample.gravity_ms2 == pytest.approx(GRAVITY_MS2, abs=0.01)
    assert sample.linear_acc_ms2 == pytest.approx(LINEAR_MS2, abs=0.01)
    assert sample.gyro_rads == (0.0, 0.0, 0.0)


def test_read_remaps_sensor_frame_to_body_frame(rig):
    mount = Mount(forward="-y", up="+x")  # sensor standing on its side on the belt
    imu = rig.imu(mount=mount)
    sample = rig.tick(imu, 0.05)
    m = mount.sensor_to_body()
    assert sample.gravity_ms2 == pytest.approx(tuple(m @ GRAVITY_MS2), abs=0.01)
    assert sample.linear_acc_ms2 == pytest.approx(tuple(m @ LINEAR_MS2), abs=0.01)
    assert sample.gravity_ms2 == pytest.approx((0.8, -9.70, 1.2), abs=0.01)


@pytest.mark.parametrize("pattern", ["ff", "random"])
def test_garbage_reads_raise_imu_error(rig, pattern):
    imu = rig.imu()
    rig.tick(imu, 0.05)
    for _ in range(50):
        rig.bus.corrupt_next(1, pattern=pattern)
        with pytest.raises(ImuError):
            rig.tick(imu, 0.01)
    assert rig.tick(imu, 0.01).gravity_ms2 == pytest.approx(GRAVITY_MS2, abs=0.01)


def test_bus_errors_raise_imu_error(rig):
    imu = rig.imu()
    rig.bus.nack_next(1)
    with pytest.raises(ImuError, match="read failed") as info:
        rig.tick(imu, 0.01)
    assert isinstance(info.value, OSError) and info.value.__cause__.errno == 121
    rig.bus.timeout_next(1)
    with pytest.raises(ImuError):
        rig.tick(imu, 0.01)
    assert rig.tick(imu, 0.01).calibration >= 0  # the bus lock was released


def test_end_of_stream_is_not_an_imu_error():
    rig = Rig(WalkSignal(make_walk(3.0)))
    with patch_driver_sleep(rig.clock):
        imu = rig.imu()
        with pytest.raises(EndOfStream):
            rig.tick(imu, 3.0)


def test_setup_fails_as_imu_error_without_a_chip_or_with_a_wrong_one(rig):
    bus = EmulatedI2CBus(clock=rig.clock)
    with pytest.raises(ImuError, match="setup failed"):
        Bno055Imu(i2c=bus, clock=rig.clock)
    rig.chip._page0[0x00] = 0x55  # not a BNO055
    with pytest.raises(ImuError, match="chip id"):
        rig.imu()


def test_imuplus_readiness_is_min_of_gyro_and_accel(rig):
    imu = rig.imu()
    sample = rig.tick(imu, GYRO_CALIBRATION_S[-1] + 0.1)
    fields = calib_fields(rig.chip.calibration_status())
    assert fields["gyr"] == 3 and fields["sys"] == 0
    assert sample.calibration == fields["acc"] < 3
    sample = rig.tick(imu, ACCEL_CALIBRATION_S[-1])
    assert calib_fields(rig.chip.calibration_status())["sys"] == 0
    assert sample.calibration == 3


def test_ndof_readiness_is_the_system_status(rig):
    imu = rig.imu(fusion_mode="NDOF")
    sample = rig.tick(imu, 2.0)
    assert sample.calibration == calib_fields(rig.chip.calibration_status())["sys"] < 3
    assert rig.tick(imu, ACCEL_CALIBRATION_S[-1]).calibration == 3


def test_the_offset_capture_is_spread_over_ticks_none_waiting_for_the_chip(rig, tmp_path):
    """The capture's CONFIG mode and back (the chip's 19 + 7 ms) in steps: no read() holds its tick for a
    mode switch or does more than the burst and one transaction of its own; fusion is off ~30 ms once."""
    imu = rig.imu(state_dir=tmp_path)
    rig.tick(imu, ACCEL_CALIBRATION_S[-1] - 0.5)
    paused, slowest_s, most_transactions = 0, 0.0, 0
    for _ in range(round(2.0 * RATE_HZ)):
        rig.clock.sleep(1 / RATE_HZ)
        before_s, before = rig.clock.monotonic(), rig.bus.stats.transactions
        try:
            imu.read()
        except SensorPaused:
            paused += 1
        slowest_s = max(slowest_s, rig.clock.monotonic() - before_s)
        most_transactions = max(most_transactions, rig.bus.stats.transactions - before)
    assert imu.calibration_offsets == DEFAULT_LEARNED_OFFSETS == rig.chip.offsets  # read in CONFIG mode, not zeros
    assert rig.chip.mode == IMUPLUS_MODE
    assert 3 <= paused <= 5  # ~30 ms of 10 ms ticks: the chip's own mode switches, not a tick's wait
    assert most_transactions <= 2  # the tick that starts it: its burst, then CONFIG mode
    assert slowest_s < 0.005  # transfers only (the one-tick capture slept 30 ms)
    imu.close()


def test_offsets_are_saved_atomically_once_when_first_ready(rig, tmp_path, mocker):
    replace = mocker.spy(os, "replace")
    imu = rig.imu(state_dir=tmp_path / "state")
    saved = tmp_path / "state" / CALIBRATION_FILE
    rig.tick(imu, ACCEL_CALIBRATION_S[-1] - 0.5)
    assert not saved.exists()
    rig.tick(imu, 2.0)
    assert imu.offsets_saver.wait_saved(10.0)
    assert saved.read_bytes() == DEFAULT_LEARNED_OFFSETS == rig.chip.offsets
    assert replace.call_count == 1
    tmp, final = replace.call_args.args
    assert os.path.dirname(tmp) == os.path.dirname(final) and final == saved
    assert sorted(p.name for p in saved.parent.iterdir()) == [CALIBRATION_FILE]
    assert rig.chip.mode == IMUPLUS_MODE  # fusion resumed after the CONFIG-mode read
    # a chip reset, recovery and full readiness again do not write the file again
    rig.bus.schedule_reset(at_s=rig.clock.now_s + 0.005)
    with pytest.raises(ImuError):
        rig.tick(imu, 0.01)
    with pytest.raises(ImuError, match="setup failed"):
        imu.reset()  # still booting
    rig.clock.sleep(BOOT_S)
    imu.reset()
    rig.tick(imu, 10.0)
    imu.close()
    assert replace.call_count == 1


def recover(rig, imu, fault_window_s: float) -> None:
    """read() fails through the fault window, keeps failing after it, until reset()."""
    errors = 0
    for _ in range(round((fault_window_s + BOOT_S + 0.5) * RATE_HZ)):
        rig.clock.sleep(1 / RATE_HZ)
        with pytest.raises(ImuError):
            imu.read()
        errors += 1
    assert errors > 0
    imu.reset()


@pytest.mark.parametrize("fault", ["reset", "unplug"])
def test_recovers_from_chip_reset_and_unplug_with_offsets_restored(rig, tmp_path, fault):
    imu = rig.imu(state_dir=tmp_path)
    rig.tick(imu, ACCEL_CALIBRATION_S[-1] + 1.5)
    assert imu.offsets_saver.wait_saved(10.0)
    saved = (tmp_path / CALIBRATION_FILE).read_bytes()
    fault_at_s = rig.clock.now_s + 0.005
    if fault == "reset":
        rig.bus.schedule_reset(at_s=fault_at_s)
        window_s = 0.0
    else:
        window_s = 3.0
        rig.bus.schedule_unplug(at_s=fault_at_s, duration_s=window_s)
    recover(rig, imu, window_s)
    assert rig.chip.offsets_restored and rig.chip.offsets == saved
    sample = rig.tick(imu, 0.05)
    assert sample.gravity_ms2 == pytest.approx(GRAVITY_MS2, abs=0.01)
    assert sample.calibration < 3  # lost with the reset...
    assert rig.tick(imu, 1.0).calibration == 3  # ...and back within a second thanks to the offsets


PLAUSIBLE_OFFSETS = struct.pack("<11h", -25, 40, -12, -180, 60, 350, 3, -2, 1, 1000, 650)  # not the chip's own


def test_saved_offsets_are_written_back_at_startup(tmp_path):
    offsets = PLAUSIBLE_OFFSETS
    (tmp_path / CALIBRATION_FILE).write_bytes(offsets)
    rig = Rig()
    with patch_driver_sleep(rig.clock):
        imu = rig.imu(state_dir=tmp_path)
        assert rig.chip.offsets == offsets and rig.chip.offsets_restored
        assert imu.calibration_offsets == offsets
        assert rig.tick(imu, 1.0).calibration == 3


def test_offsets_plausibility():
    assert offsets_problem(DEFAULT_LEARNED_OFFSETS) is None
    assert offsets_problem(PLAUSIBLE_OFFSETS) is None
    assert "all zero" in offsets_problem(bytes(22))
    assert "0xFF" in offsets_problem(b"\xff" * 22)
    assert "22" in offsets_problem(bytes(21))
    garbage = np.random.default_rng(0).integers(0, 256, size=(1000, 22), dtype=np.uint8)
    assert sum(offsets_problem(row.tobytes()) is None for row in garbage) == 0


@pytest.mark.parametrize("learned", [bytes(22), b"\xff" * 22], ids=["zeros", "ff"])
def test_implausible_offsets_read_back_are_not_saved(tmp_path, learned):
    rig = Rig(learned_offsets=learned)
    with patch_driver_sleep(rig.clock):
        imu = rig.imu(state_dir=tmp_path)
        rig.tick(imu, ACCEL_CALIBRATION_S[-1] + 3.0)
    assert not (tmp_path / CALIBRATION_FILE).exists()
    assert imu.calibration_offsets is None
    assert rig.chip.mode == IMUPLUS_MODE  # fusion resumed after each look


def test_a_corrupted_offsets_read_is_not_saved(tmp_path, mocker):
    rig = Rig()
    with patch_driver_sleep(rig.clock):
        imu = rig.imu(state_dir=tmp_path)
        original = imu._read
        reads = []

        def corrupt_first_offsets_read(register, size, bus=None):
            data = original(register, size, bus)
            if register == 0x55:
                reads.append(data)
                if len(reads) == 1:
                    return bytes([data[0] ^ 0x01]) + data[1:]  # one flipped bit: still "plausible"
            return data

        mocker.patch.object(imu, "_read", corrupt_first_offsets_read)
        rig.tick(imu, ACCEL_CALIBRATION_S[-1] + 3.0)
        imu.close()
    assert len(reads) >= 4  # the disagreeing pair was not kept; the next look saved the real offsets
    assert (tmp_path / CALIBRATION_FILE).read_bytes() == DEFAULT_LEARNED_OFFSETS


def test_a_garbage_offsets_file_is_not_written_to_the_chip(tmp_path):
    (tmp_path / CALIBRATION_FILE).write_bytes(bytes(22))
    rig = Rig()
    with patch_driver_sleep(rig.clock):
        rig.imu(state_dir=tmp_path)
        assert not rig.chip.offsets_restored


def test_a_truncated_offsets_file_is_ignored(tmp_path):
    (tmp_path / CALIBRATION_FILE).write_bytes(b"\x01\x02")
    rig = Rig()
    with patch_driver_sleep(rig.clock):
        rig.imu(state_dir=tmp_path)
        assert not rig.chip.offsets_restored


def test_gravity_check_rejects_implausible_magnitudes():
    gravity_ms2 = [(0.0, 0.0, 7.9)]
    rig = Rig(lambda t_s: (gravity_ms2[0], (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))
    with patch_driver_sleep(rig.clock):
        imu = rig.imu()
        with pytest.raises(ImuError, match="gravity magnitude 7.90"):
            rig.tick(imu, 0.01)
        tilted = math.sqrt(9.81**2 / 2)
        gravity_ms2[0] = (tilted, 0.0, -tilted)
        assert rig.tick(imu, 0.01).gravity_ms2 == pytest.approx((tilted, 0.0, -tilted), abs=0.01)
        gravity_ms2[0] = (0.0, 11.4, 0.0)
        with pytest.raises(ImuError):
            rig.tick(imu, 0.01)


def test_a_planted_link_at_the_offsets_file_is_neither_read_nor_written_through(tmp_path):
    """The state directory belongs to the service user: a link there must not make the driver
    read another file as offsets, nor write the offsets over the file it points to."""
    target = tmp_path / "elsewhere"
    target.write_bytes(PLAUSIBLE_OFFSETS)
    state = tmp_path / "state"
    state.mkdir()
    (state / CALIBRATION_FILE).symlink_to(target)
    rig = Rig()
    with patch_driver_sleep(rig.clock):
        imu = rig.imu(state_dir=state)
        assert not rig.chip.offsets_restored  # the link was not read
        rig.tick(imu, ACCEL_CALIBRATION_S[-1] + 3.0)
        imu.close()
    assert target.read_bytes() == PLAUSIBLE_OFFSETS  # nothing written through the link
    saved = state / CALIBRATION_FILE
    assert not saved.is_symlink() and saved.read_bytes() == DEFAULT_LEARNED_OFFSETS  # the rename replaced the link itself


# -- saving the offsets: never in the tick, never lost ------------------------------------


def tick_until_captured(rig, imu, limit_s: float = ACCEL_CALIBRATION_S[-1] + 5.0) -> None:
    for _ in range(round(limit_s * RATE_HZ)):
        rig.clock.sleep(1 / RATE_HZ)
        try:
            imu.read()
        except SensorPaused:
            continue
        if imu.calibration_offsets is not None:
            return
    raise AssertionError("the offsets were never captured")


def test_the_tick_that_captures_the_offsets_does_not_wait_for_the_file_system(rig, tmp_path, monkeypatch):
    """An SD card that takes its time over the fsync: the capture's tick returns and the loop reads on
    while the write is still in progress; the file appears once the card is done."""
    card_done = threading.Event()
    writes = []
    real_write = bno055.write_atomic

    def slow_card(path, data, **kwargs):
        writes.append(threading.current_thread().name)
        card_done.wait(10.0)  # (the old in-tick write would block here, then find the file already written)
        real_write(path, data, **kwargs)

    monkeypatch.setattr(bno055, "write_atomic", slow_card)
    imu = rig.imu(state_dir=tmp_path)
    saved = tmp_path / CALIBRATION_FILE
    tick_until_captured(rig, imu)
    assert rig.tick(imu, 0.5).calibration == 3  # the loop goes on reading
    assert not saved.exists() and imu.offsets_saver.unsaved == DEFAULT_LEARNED_OFFSETS
    card_done.set()
    assert imu.offsets_saver.wait_saved(10.0)
    assert saved.read_bytes() == DEFAULT_LEARNED_OFFSETS
    assert writes == ["walkcoach-bno055-offsets"]
    imu.close()


def test_a_failing_file_system_is_logged_and_retried_until_the_offsets_are_saved(rig, tmp_path, caplog):
    state = tmp_path / "state"
    state.write_text("a file where the state directory should be")  # every write fails (mkdir: file exists)
    imu = rig.imu(state_dir=state)
    imu.offsets_saver = OffsetsSaver(state / CALIBRATION_FILE, logging.getLogger("test.bno055"), retry_first_s=0.02,
                                     retry_max_s=0.05)
    with caplog.at_level(logging.INFO, logger="test.bno055"):
        tick_until_captured(rig, imu)
        deadline = time.monotonic() + 10.0
        while imu.offsets_saver.failures < 3:  # retried, with backoff
            assert time.monotonic() < deadline, "the saver stopped retrying"
            time.sleep(0.01)
        assert imu.offsets_saver.unsaved == DEFAULT_LEARNED_OFFSETS
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and all(DEFAULT_LEARNED_OFFSETS.hex() in r.getMessage() and "retrying" in r.getMessage()
                              for r in errors)
        assert not any(r.exc_info for r in caplog.records)  # logged, no traceback
        state.unlink()  # the file system is fixed
        assert imu.offsets_saver.wait_saved(10.0)
    assert (state / CALIBRATION_FILE).read_bytes() == DEFAULT_LEARNED_OFFSETS
    assert "after" in caplog.records[-1].getMessage() and "failed write" in caplog.records[-1].getMessage()
    imu.close()


def test_a_shutdown_writes_the_offsets_still_waiting_for_a_retry(rig, tmp_path):
    state = tmp_path / "state"
    state.write_text("not a directory")
    imu = rig.imu(state_dir=state)
    imu.offsets_saver = OffsetsSaver(state / CALIBRATION_FILE, logging.getLogger("test.bno055"), retry_first_s=600.0)
    tick_until_captured(rig, imu)
    deadline = time.monotonic() + 10.0
    while imu.offsets_saver.failures < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    state.unlink()  # fixed, but the next retry is ten minutes away: the service stops first
    imu.close()
    assert (state / CALIBRATION_FILE).read_bytes() == DEFAULT_LEARNED_OFFSETS


def test_offsets_that_cannot_be_saved_even_at_shutdown_are_logged_not_raised(rig, tmp_path, caplog):
    state = tmp_path / "state"
    state.write_text("not a directory")
    imu = rig.imu(state_dir=state)
    tick_until_captured(rig, imu)
    with caplog.at_level(logging.ERROR):
        imu.close()  # no exception
    last = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR][-1]
    assert DEFAULT_LEARNED_OFFSETS.hex() in last and "not saved" in last
    assert state.read_text() == "not a directory"
