"""The bench's device path: the real SMBusI2C over smbus2 with only the kernel call faked, and the belt process."""

import pytest

from walkcoach import hal
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.hal.errors import SensorPaused
from walkcoach.hal.i2c import I2CStats


def read_or_paused(imu):
    """A sample, or None in a tick of the BNO055's offset capture (no fusion data in CONFIG mode)."""
    try:
        return imu.read()
    except SensorPaused:
        return None


def test_the_pi_backend_over_a_faked_kernel_reads_what_the_emulated_bus_reads():
    settings = DeviceSettings()
    fake = hal.open_backend("pi-fake-kernel", scenario="bend-and-go", seed=0, imu_settings=settings.imu, pins=settings.pins)
    chip = hal.open_backend("sim", scenario="bend-and-go", seed=0, via_chip=True)
    try:
        assert type(fake.bus).__name__ == "SMBusI2C" and type(fake.bus._bus).__module__.startswith("smbus2")
        for backend in (fake, chip):
            backend.clock.sleep_until(30.0)
        paused = 0
        for _ in range(200):
            now_s = fake.clock.monotonic() + 0.01
            fake.clock.sleep_until(now_s)
            chip.clock.sleep_until(now_s)
            a, b = read_or_paused(fake.imu), read_or_paused(chip.imu)
            assert (a is None) == (b is None)  # the offset capture's paused ticks are the same in both
            if a is not None and b is not None:
                assert a.gravity_ms2 == b.gravity_ms2 and a.linear_acc_ms2 == b.linear_acc_ms2
            paused += a is None
        assert fake.bus.stats.errors == 0 and fake.bus.stats.transactions > 200 and paused < 10
    finally:  # last opened, first closed: each put back the driver's sleep it found
        chip.close()
        fake.close()
    import fcntl
    import time

    import adafruit_bno055
    import smbus2.smbus2 as impl

    assert impl.ioctl is fcntl.ioctl and adafruit_bno055.time is time  # closing puts the kernel call and the sleep back


def test_bus_share_is_of_the_configured_tick():
    from walkcoach.device.cli.cli import _i2c_per_tick

    stats = I2CStats(transactions=100, wire_bytes=1700)  # one 17-byte burst read per tick
    assert _i2c_per_tick(stats, 100, 0.02)["bus_share_10khz"] == pytest.approx(0.78)  # 156 bits at 10 kHz of 20 ms
    assert _i2c_per_tick(stats, 100, 0.01)["bus_share_10khz"] == pytest.approx(1.56)


def test_device_path_bench_times_every_tick_and_finds_the_once_a_second_ones():
    from walkcoach.device.cli.bench import WARM_UP_TICKS, bench_device_path

    result = bench_device_path(scenario="standing")
    assert result["device_ticks"] == pytest.approx(5 * 60 * 100 - WARM_UP_TICKS, abs=200)
    assert result["device_watchdog_pings"] >= 1  # the service ran with its once-a-second work, and the tick was tagged
    assert result["device_notifications"] >= result["device_watchdog_pings"]  # each ping sent to "systemd", as on the belt
    if result["device_second_ticks"]:  # after the warm-up: only if the run took more than a wall second
        assert result["device_tick_us_second_worst"] >= result["device_tick_us_second_median"] > 0


def test_the_running_belt_maps_no_numpy():
    from walkcoach.device.cli.bench import bench_belt_memory

    result = bench_belt_memory(run_s=1.0)
    assert result["belt_maps_numpy"] is False
    assert 5.0 < result["belt_rss_mb"] <= result["belt_hwm_mb"]


def test_bench_says_each_stage_before_it_runs(monkeypatch):
    """The bench takes a minute or more: a person at a terminal is told each stage as it starts."""
    from types import SimpleNamespace

    from walkcoach.device.cli import bench

    ran: list[str] = []
    said: list[str] = []

    def stage(name, value):
        def run(*args, **kwargs):
            ran.append(name)
            assert said and len(said) == len(ran), f"{name} ran before its stage was said"
            return value

        return run

    stats = SimpleNamespace(transactions=10, wire_bytes=170)
    chip = SimpleNamespace(loop=SimpleNamespace(stats=SimpleNamespace(ticks=10)), i2c_stats=stats, speed_x=1.0)
    device = {"device_tick_us_mean": 2.0}
    monkeypatch.setattr(bench, "bench_core", stage("core", (1.0, 2.0)))
    monkeypatch.setattr(bench, "run_simulation", stage("sim", SimpleNamespace(speed_x=1.0)))
    monkeypatch.setattr(bench, "bench_tick", stage("tick", (chip, 1.0, 2.0, 1.5)))
    monkeypatch.setattr(bench, "bench_process", stage("process", (50.0, 0.3)))
    monkeypatch.setattr(bench, "bench_device_path", stage("device", device))
    monkeypatch.setattr(bench, "bench_chip_paced", stage("chip paced", {}))
    monkeypatch.setattr(bench, "bench_sim_process", stage("sim process", (500.0, 1.0, 1.0, 500.0)))
    monkeypatch.setattr(bench, "bench_belt_memory", stage("belt", {}))
    monkeypatch.setattr(bench, "bench_device_footprint", lambda: 24.0)
    bench.run_bench(progress=said.append)
    assert len(said) == len(ran) == 9


def test_the_core_timing_feeds_the_coach_what_the_simulated_imu_reads(monkeypatch):
    from walkcoach.device.cli import bench

    backend = hal.open_backend("sim", scenario="standing", seed=0, rate_hz=100.0)
    try:
        t_s = backend.walk.t_s.tolist()
        at_once = backend.imu.all_samples(t_s)[:300]
        one_by_one = []
        for t in t_s[:300]:
            backend.clock.sleep_until(t)
            one_by_one.append(backend.imu.read())
    finally:
        backend.close()
    assert at_once == one_by_one
    monkeypatch.setattr(bench, "BENCH_SCENARIO", "standing")
    median_us, p99_us = bench.bench_core(DeviceSettings())
    assert 0.0 < median_us <= p99_us
