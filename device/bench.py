"""`walkcoach bench`: what the belt costs, measured on this machine.

Figures: the pure coach per sample, the whole tick through the emulated chip
and the real driver, simulator speed on both paths, I2C traffic per tick and the
bus time it means, peak memory and start-up time of `walkcoach run --backend sim`.
Medians and 99th percentiles; nothing here asserts a budget (machines are noisy).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

from hal.i2c import bus_time_s
from hal.types import ImuSample

from .runner import make_coach, run_simulation
from .settings import DeviceSettings

TICK_S = 0.01
BENCH_SCENARIO = "full-session"
MEMORY_SCENARIO = "leaning-walk"  # about five minutes of walking, leaning and standing


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.machine()}"


def _percentiles_us(durations_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(durations_ns)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) / 1000.0, p99 / 1000.0


def bench_core(settings: DeviceSettings, seed: int = 0) -> tuple[float, float]:
    """Coach.update alone, per sample, over the default scenario's samples."""
    import datetime as dt

    import hal

    backend = hal.open_backend("sim", scenario=BENCH_SCENARIO, seed=seed, rate_hz=settings.loop.rate_hz)
    try:
        walk = backend.walk
        gravity = backend.imu._gravity
        linear = backend.imu._linear
        samples = [ImuSample(t, g, a, (0.0, 0.0, 0.0), 3) for t, g, a in zip(walk.t_s.tolist(), gravity, linear)]
    finally:
        backend.close()
    coach = make_coach(settings, dt.date.today())
    update = coach.update
    clock_ns = time.perf_counter_ns
    durations = []
    append = durations.append
    for sample in samples:
        started = clock_ns()
        update(sample)
        append(clock_ns() - started)
    overhead_ns = min(_timer_overhead_ns(), min(durations))
    return _percentiles_us([d - overhead_ns for d in durations])


def _timer_overhead_ns() -> int:
    clock_ns = time.perf_counter_ns
    best = 10**9
    for _ in range(2000):
        a = clock_ns()
        b = clock_ns()
        best = min(best, b - a)
    return best


class _TickTimer:
    """Wraps the sim's clock: the real time between two waits is one tick's work."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self.durations_ns: list[int] = []
        self._work_started_ns: int | None = None

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def sleep_until(self, t_s: float) -> None:
        now_ns = time.perf_counter_ns()
        if self._work_started_ns is not None:
            self.durations_ns.append(now_ns - self._work_started_ns)
        self._clock.sleep_until(t_s)
        self._work_started_ns = time.perf_counter_ns()

    def sleep(self, duration_s: float) -> None:
        self._clock.sleep(duration_s)


def bench_tick(settings: DeviceSettings, seed: int = 0):
    """The whole tick through the emulated chip; also gives that path's speed and I2C figures."""
    timers: list[_TickTimer] = []

    def instrument(loop) -> None:
        timer = _TickTimer(loop.clock)
        loop.clock = timer
        timers.append(timer)

    run = run_simulation(settings, scenario=BENCH_SCENARIO, seed=seed, via_chip=True, on_loop=instrument)
    tick_median_us, tick_p99_us = _percentiles_us(timers[0].durations_ns[100:])
    return run, tick_median_us, tick_p99_us


def bench_process(scenario: str = MEMORY_SCENARIO) -> tuple[float, float]:
    """Peak RSS (MB) of `walkcoach run --backend sim` and its start-to-first-coached-sample time (s)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so the child would
    # report this (larger) benchmark process's peak instead of its own.
    code = (
        "import sys; from device.cli import main; rc = main(sys.argv[1:]); "
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]; "
        "print('peak_rss_kb', hwm[0] if hwm else 'nan', file=sys.stderr); sys.exit(rc)"
    )
    env = dict(os.environ, WALKCOACH_REPORT_FIRST_SAMPLE="1")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "--backend", "sim", "--scenario", scenario, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"walkcoach run --backend sim failed: {proc.stderr.strip()[-500:]}")
    peak_kb = first_s = None
    for line in proc.stderr.splitlines():
        if line.startswith("peak_rss_kb"):
            peak_kb = float(line.split()[1])
        elif line.startswith("first-coached-sample"):
            first_s = float(line.split()[1]) - started
    return (peak_kb or 0.0) / 1024.0, first_s if first_s is not None else float("nan")


def bench_device_footprint() -> float:
    """Resident memory (MB) of a process holding everything `run --backend pi` loads (no walker, no numpy)."""
    code = (
        "import sys, datetime; import device.cli, device.service, hal.pi_backend, hal.bno055, hal.gpio, "
        "gpiozero, adafruit_bno055; from device.runner import make_coach; from device.settings import DeviceSettings; "
        "make_coach(DeviceSettings(), datetime.date.today()); "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], "
        "'numpy' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"device footprint probe failed: {proc.stderr.strip()[-300:]}")
    return float(proc.stdout.split()[0]) / 1024.0


def run_bench(settings: DeviceSettings | None = None) -> dict:
    settings = settings or DeviceSettings()
    core_median, core_p99 = bench_core(settings)
    direct = run_simulation(settings, scenario=BENCH_SCENARIO, seed=0)
    chip, tick_median, tick_p99 = bench_tick(settings)
    ticks = max(1, chip.loop.stats.ticks)
    transactions = chip.i2c_stats.transactions / ticks
    wire_bytes = chip.i2c_stats.wire_bytes / ticks
    peak_rss_mb, first_sample_s = bench_process()
    result = {
        "machine": machine(),
        "core_us_median": round(core_median, 2),
        "core_us_p99": round(core_p99, 2),
        "tick_us_median": round(tick_median, 2),
        "tick_us_p99": round(tick_p99, 2),
        "sim_speed_direct_x": round(direct.speed_x, 1),
        "sim_speed_chip_x": round(chip.speed_x, 1),
        "i2c_transactions_per_tick": round(transactions, 4),
        "i2c_wire_bytes_per_tick": round(wire_bytes, 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "start_to_first_sample_s": round(first_sample_s, 3),
        "device_footprint_mb": round(bench_device_footprint(), 1),
        "scenario": BENCH_SCENARIO,
        "memory_scenario": MEMORY_SCENARIO,
    }
    for label, hz in (("10khz", 10_000), ("100khz", 100_000), ("400khz", 400_000)):
        result[f"i2c_bus_share_{label}"] = round(bus_time_s(wire_bytes, transactions, hz) / TICK_S, 4)
    return result


def format_bench(result: dict) -> str:
    lines = [
        f"machine: {result['machine']}",
        f"coach update per sample: median {result['core_us_median']} us, p99 {result['core_us_p99']} us",
        f"whole tick through the emulated chip: median {result['tick_us_median']} us, p99 {result['tick_us_p99']} us",
        f"simulator ({result['scenario']}): {result['sim_speed_direct_x']}x real time direct, "
        f"{result['sim_speed_chip_x']}x through the chip",
        f"I2C per tick: {result['i2c_transactions_per_tick']} transactions, {result['i2c_wire_bytes_per_tick']} bytes; "
        f"bus share of the 10 ms tick {result['i2c_bus_share_10khz']:.0%} at 10 kHz, "
        f"{result['i2c_bus_share_100khz']:.1%} at 100 kHz, {result['i2c_bus_share_400khz']:.1%} at 400 kHz",
        f"walkcoach run --backend sim ({result['memory_scenario']}): peak RSS {result['peak_rss_mb']} MB, "
        f"first coached sample {result['start_to_first_sample_s']} s after start",
        f"what the belt itself loads (pi path, no simulator): {result['device_footprint_mb']} MB",
    ]
    return "\n".join(lines)


def main_bench(as_json: bool) -> int:
    result = run_bench()
    print(json.dumps(result) if as_json else format_bench(result))
    return 0
