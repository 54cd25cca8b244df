"""`walkcoach bench`: what the belt costs, measured on this machine.

Figures:

- the pure coach per sample; the whole tick through the emulated chip and the
  real driver (no service); simulator speed on both paths, timed around the loop;
- the device path as the belt runs it (``device_tick_*``): ``walkcoach run
  --service`` in this process with its store, status file and sd_notify, the
  real ``SMBusI2C`` over a real ``smbus2.SMBus`` whose kernel calls alone are
  faked (``sim.fake_kernel``, answered by the emulated chip), on a virtual
  clock: mean, median, p99, and the once-a-second ticks (the ones that ping the
  watchdog: status file, calibrate request) - their median and the worst;
- the same at the belt's own pace for ``PACED_S`` wall seconds (``belt_tick_*``): a
  tick every 10 ms, so the store's thread works between ticks as on the belt;
- ``walkcoach sim --speed max`` as a whole process (start-up included);
- the running belt's resident memory: a ``walkcoach run --service --backend pi``
  process on the faked bus (its chip answered from this process over a pipe,
  so none of the emulator is in the belt's memory), VmRSS and VmHWM while it runs;
- I2C traffic per tick and the bus time it means at the configured rate; peak
  memory and start-up time of `walkcoach run --backend sim`.

Nothing here asserts a budget (machines are noisy).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.runner import make_coach, run_simulation
from walkcoach.hal.i2c import bus_time_s
from walkcoach.hal.types import ImuSample

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

    from walkcoach import hal

    backend = hal.open_backend("sim", scenario=BENCH_SCENARIO, seed=seed, rate_hz=settings.loop.rate_hz)
    try:
        walk = backend.walk
        gravity = backend.imu._gravity
        linear = backend.imu._linear
        samples = [ImuSample(t, g, a, (0.0, 0.0, 0.0), 3) for t, g, a in zip(walk.t_s.tolist(), gravity, linear, strict=True)]
    finally:
        backend.close()
    coach = make_coach(settings, dt.date.today())
    update = coach.update
    clock_ns = time.perf_counter_ns
    durations: list[int] = []
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
    """Wraps the sim's clock: the real time between two waits is one tick's work.

    ``mark()`` during a tick tags it (``marked``: indices into ``durations_ns``)."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self.durations_ns: list[int] = []
        self.marked: list[int] = []
        self._mark = False
        self._work_started_ns: int | None = None

    def mark(self) -> None:
        self._mark = True

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def sleep_until(self, t_s: float) -> None:
        now_ns = time.perf_counter_ns()
        if self._work_started_ns is not None:
            self.durations_ns.append(now_ns - self._work_started_ns)
            if self._mark:
                self.marked.append(len(self.durations_ns) - 1)
                self._mark = False
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
        "import sys; from walkcoach.device.cli.cli import main; rc = main(sys.argv[1:]); "
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
        "import sys, datetime; import walkcoach.device.cli.cli, walkcoach.device.shell.service, walkcoach.hal.pi_backend, "
        "walkcoach.hal.bno055, walkcoach.hal.gpio, "
        "gpiozero, adafruit_bno055; from walkcoach.device.shell.runner import make_coach; "
        "from walkcoach.device.core.settings import DeviceSettings; "
        "make_coach(DeviceSettings(), datetime.date.today()); "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], "
        "'numpy' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"device footprint probe failed: {proc.stderr.strip()[-300:]}")
    return float(proc.stdout.split()[0]) / 1024.0


WARM_UP_TICKS = 100  # the driver's set-up and the first calibration reads


def _bench_config(root: Path, settings_text: str = ""):
    from walkcoach.device.config.config import load_config

    path = root / "bench.toml"
    path.write_text(
        f"[store]\nstate_dir = {json.dumps(str(root / 'state'))}\n"
        f"[service]\nruntime_dir = {json.dumps(str(root / 'run'))}\n" + settings_text
    )
    return load_config(path)


PACED_S = 20.0  # wall seconds of the device path at the belt's own pace
PACED_SCENARIO = "upright-walk"


def bench_device_path(scenario: str = BENCH_SCENARIO, seed: int = 0, *, paced_s: float | None = None, prefix: str = "device") -> dict:
    """The service's loop over the pi backend's parts with only smbus2's kernel calls faked (module docstring).

    At max speed on a virtual clock (the whole scenario), or with ``paced_s`` for that many
    wall seconds at the belt's own pace: a tick every 10 ms, so the store's thread and the
    rest run between ticks, as on the belt, and caches are as cold as after a sleep."""
    import threading

    from walkcoach import hal
    from walkcoach.device.shell.sdnotify import Notifier
    from walkcoach.device.shell.service import Service

    timer_box: list[_TickTimer] = []

    class WatchdogMark(Notifier):
        """No socket (nothing is sent); each watchdog ping tags the tick it happens in."""

        def watchdog(self) -> bool:
            if timer_box:
                timer_box[0].mark()
            return super().watchdog()

    class BenchService(Service):
        def open_backend(self):
            settings = self.config.settings
            backend = hal.open_backend(
                "pi-fake-kernel", scenario=scenario, seed=seed, rate_hz=settings.loop.rate_hz,
                imu_settings=settings.imu, pins=settings.pins, state_dir=self.config.store.state_dir,
                pace="realtime" if paced_s else "max",
            )
            timer = _TickTimer(backend.clock)
            backend.clock = timer
            timer_box.append(timer)
            self.backend = backend
            return backend

    with tempfile.TemporaryDirectory(prefix="walkcoach-bench-") as root:
        config = _bench_config(Path(root))
        service = BenchService(config, backend="pi", scenario=scenario, seed=seed, speed="max",
                               notifier=WatchdogMark(environ={}))

        def stop() -> None:
            service.stop_requested = True
            if service.loop is not None:
                service.loop.request_stop()

        stopper = threading.Timer(paced_s, stop) if paced_s else None
        started = time.perf_counter()
        if stopper is not None:
            stopper.start()
        try:
            rc = service.run()
        finally:
            if stopper is not None:
                stopper.cancel()
        elapsed_s = time.perf_counter() - started
    if rc != 0 or not timer_box:
        raise RuntimeError(f"the benchmark's service run failed (exit {rc})")
    timer = timer_box[0]
    durations = timer.durations_ns[WARM_UP_TICKS:]
    seconds = [timer.durations_ns[i] for i in timer.marked if i >= WARM_UP_TICKS]
    median_us, p99_us = _percentiles_us(durations)
    figures = {
        "tick_us_mean": round(statistics.fmean(durations) / 1000.0, 2),
        "tick_us_median": round(median_us, 2),
        "tick_us_p99": round(p99_us, 2),
        "tick_us_second_median": round(statistics.median(seconds) / 1000.0, 1) if seconds else None,
        "tick_us_second_worst": round(max(seconds) / 1000.0, 1) if seconds else None,
        "ticks": len(durations),
        "second_ticks": len(seconds),
        "watchdog_pings": len(timer.marked),  # with the warm-up's (the first tick pings at once)
        "run_s": round(elapsed_s, 2),
    }
    return {f"{prefix}_{name}": value for name, value in figures.items()}


def bench_sim_process() -> tuple[float, float, float, float]:
    """`walkcoach sim --speed max` (default scenario) as a whole process, start-up included:
    (speed x real time by wall time, wall seconds, CPU seconds, simulated seconds). On a shared machine the
    wall time also holds the time other processes had the CPU; the CPU time does not."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "walkcoach", "sim", "--speed", "max", "--json"], capture_output=True, text=True, timeout=300
    )
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"walkcoach sim failed: {proc.stderr.strip()[-500:]}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    duration_s = json.loads(proc.stdout)["duration_s"]
    return duration_s / wall_s, wall_s, cpu_s, duration_s


def _proc_status_kb(pid: int, *fields: str) -> dict[str, float]:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name = line.split(":", 1)[0]
            if name in fields:
                values[name] = float(line.split()[1])
    return values


BELT_RUN_S = 8.0  # wall seconds of coaching before the belt's memory is read
BELT_SCENARIO = "upright-walk"


def bench_belt_memory(run_s: float = BELT_RUN_S) -> dict:
    """VmRSS/VmHWM (MB) of a running `walkcoach run --service --backend pi` on the faked bus, after ``run_s``."""
    import secrets
    import signal
    import threading
    from multiprocessing.connection import Listener

    from walkcoach import hal

    fake = hal.backend_module("pi-fake-kernel")
    authkey = secrets.token_bytes(16)
    with tempfile.TemporaryDirectory(prefix="walkcoach-belt-") as root, Listener(family="AF_UNIX", authkey=authkey) as listener:
        config = _bench_config(Path(root))
        stop = threading.Event()
        settings = DeviceSettings()
        server = threading.Thread(
            target=fake.serve_chip, args=(listener, BELT_SCENARIO, 0, settings.loop.rate_hz), kwargs={"stop": stop}, daemon=True
        )
        server.start()
        code = (
            "import sys; from walkcoach.sim.fake_kernel import run_belt_client; "
            f"sys.exit(run_belt_client({listener.address!r}, bytes.fromhex({authkey.hex()!r}), sys.argv[1:]))"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "--config", str(config.path), "run", "--service", "--backend", "pi"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            status_file = Path(root) / "run"
            deadline = time.monotonic() + 60.0
            while time.monotonic() < deadline and proc.poll() is None:
                if any(status_file.glob("status*")):
                    break
                time.sleep(0.1)
            time.sleep(run_s)
            if proc.poll() is not None:
                raise RuntimeError(f"the belt process ended early: {proc.stderr.read()[-500:] if proc.stderr else ''}")
            kb = _proc_status_kb(proc.pid, "VmRSS", "VmHWM")
            modules = _belt_has_numpy(proc.pid)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            stop.set()
            server.join(timeout=5)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(f"the belt process exited {proc.returncode}: {err.strip()[-500:]}")
    return {
        "belt_rss_mb": round(kb.get("VmRSS", 0.0) / 1024.0, 1),
        "belt_hwm_mb": round(kb.get("VmHWM", 0.0) / 1024.0, 1),
        "belt_maps_numpy": modules,
    }


def _belt_has_numpy(pid: int) -> bool:
    """Whether numpy is mapped into the process (it must not be on the belt)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any("numpy" in line for line in f)
    except OSError:
        return False


def run_bench(settings: DeviceSettings | None = None, progress=None) -> dict:
    """Every figure of ``walkcoach bench``; ``progress(text)`` is told each stage as it starts."""
    settings = settings or DeviceSettings()
    say = progress or (lambda text: None)
    say("coach update per sample")
    core_median, core_p99 = bench_core(settings)
    say("simulator, direct path")
    direct = run_simulation(settings, scenario=BENCH_SCENARIO, seed=0)
    say("tick through the emulated chip")
    chip, tick_median, tick_p99 = bench_tick(settings)
    ticks = max(1, chip.loop.stats.ticks)
    transactions = chip.i2c_stats.transactions / ticks
    wire_bytes = chip.i2c_stats.wire_bytes / ticks
    say("peak memory and start-up of run --backend sim")
    peak_rss_mb, first_sample_s = bench_process()
    say("device path at full speed")
    device = bench_device_path()
    say(f"device path at the belt's pace ({PACED_S:g} s)")
    paced = bench_device_path(PACED_SCENARIO, paced_s=PACED_S, prefix="belt")
    say("simulator as a whole process")
    sim_process_x, sim_process_s, sim_process_cpu_s, sim_duration_s = bench_sim_process()
    say("running belt's memory")
    belt = bench_belt_memory()
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
        **device,
        **paced,
        "device_tick_mean_over_chip_median": round(device["device_tick_us_mean"] / tick_median, 2) if tick_median else None,
        "sim_process_speed_x": round(sim_process_x, 1),
        "sim_process_s": round(sim_process_s, 2),
        "sim_process_cpu_s": round(sim_process_cpu_s, 2),
        "sim_process_cpu_speed_x": round(sim_duration_s / sim_process_cpu_s, 1) if sim_process_cpu_s > 0 else None,
        **belt,
        "belt_scenario": BELT_SCENARIO,
        "rate_hz": settings.loop.rate_hz,
    }
    tick_s = 1.0 / settings.loop.rate_hz  # the configured tick, not a literal 10 ms
    for label, hz in (("10khz", 10_000), ("100khz", 100_000), ("400khz", 400_000)):
        result[f"i2c_bus_share_{label}"] = round(bus_time_s(wire_bytes, transactions, hz) / tick_s, 4)
    return result


def format_bench(result: dict) -> str:
    lines = [
        f"machine: {result['machine']}",
        f"coach update per sample: median {result['core_us_median']} us, p99 {result['core_us_p99']} us",
        f"whole tick through the emulated chip: median {result['tick_us_median']} us, p99 {result['tick_us_p99']} us",
        f"simulator ({result['scenario']}): {result['sim_speed_direct_x']}x real time direct, "
        f"{result['sim_speed_chip_x']}x through the chip",
        f"I2C per tick: {result['i2c_transactions_per_tick']} transactions, {result['i2c_wire_bytes_per_tick']} bytes; "
        f"bus share of the {1000.0 / result['rate_hz']:g} ms tick {result['i2c_bus_share_10khz']:.0%} at 10 kHz, "
        f"{result['i2c_bus_share_100khz']:.1%} at 100 kHz, {result['i2c_bus_share_400khz']:.1%} at 400 kHz",
        f"walkcoach run --backend sim ({result['memory_scenario']}): peak RSS {result['peak_rss_mb']} MB, "
        f"first coached sample {result['start_to_first_sample_s']} s after start",
        f"what the belt itself loads (pi path, no simulator): {result['device_footprint_mb']} MB",
        f"device path (service, store, status file, SMBusI2C over a faked kernel call): tick mean "
        f"{result['device_tick_us_mean']} us ({result['device_tick_mean_over_chip_median']}x the chip tick median), "
        f"median {result['device_tick_us_median']} us, p99 {result['device_tick_us_p99']} us; once-a-second ticks "
        f"median {result['device_tick_us_second_median']} us, worst {result['device_tick_us_second_worst']} us "
        f"({result['device_second_ticks']} of them)",
        f"the same at the belt's pace ({result['belt_run_s']} s, a tick every 10 ms): tick mean {result['belt_tick_us_mean']} us, "
        f"median {result['belt_tick_us_median']} us, p99 {result['belt_tick_us_p99']} us; once-a-second ticks median "
        f"{result['belt_tick_us_second_median']} us, worst {result['belt_tick_us_second_worst']} us "
        f"({result['belt_second_ticks']} of them)",
        f"walkcoach sim --speed max as a whole process: {result['sim_process_speed_x']}x real time "
        f"({result['sim_process_s']} s wall, start-up included); by its CPU time ({result['sim_process_cpu_s']} s) "
        f"{result['sim_process_cpu_speed_x']}x",
        f"running belt (run --service --backend pi on the faked bus, {result['belt_scenario']}): "
        f"VmRSS {result['belt_rss_mb']} MB, VmHWM {result['belt_hwm_mb']} MB"
        + (" (numpy mapped!)" if result["belt_maps_numpy"] else ", no numpy"),
    ]
    return "\n".join(lines)


def _stage_printer():
    """On a terminal, each stage on stderr as it starts (the whole bench takes a minute or more)."""
    if not sys.stderr.isatty():
        return None
    stages = iter(range(1, 100))
    return lambda text: print(f"bench [{next(stages)}/8] {text} ...", file=sys.stderr, flush=True)


def main_bench(as_json: bool) -> int:
    result = run_bench(progress=_stage_printer())
    print(json.dumps(result) if as_json else format_bench(result))
    return 0
