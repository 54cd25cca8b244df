"""`walkcoach bench`: what the belt costs, measured on this machine.

Figures:

- the pure coach per sample; the whole tick through the emulated chip and the
  real driver (no service); simulator speed on both paths, timed around the loop;
- the device path as the belt runs it (``device_tick_*``): ``walkcoach run
  --service`` in this process with its store, status file and sd_notify, the
  real ``SMBusI2C`` over a real ``smbus2.SMBus`` whose kernel calls alone are
  faked (``sim.fake_kernel``, answered by the emulated chip), on a virtual
  clock: mean, median, p99, worst, and the once-a-second ticks (each tick doing
  a piece of the once-a-second work: the watchdog ping, the coach snapshot for
  the store, the status slot, the saved session) - their median and the worst,
  every tick counted. Beside them, where the worst ticks'
  time went: the loop thread's CPU time in them (a tick far longer than its CPU
  time waited: for a CPU, or for the GIL), the thread's run-queue wait over the
  run, the garbage collections during the loop and the longest, and the longest
  tick of the BNO055's one-off offset capture (CONFIG mode and back, one step a
  tick, the chip's mode switches between them) with the worst once-a-second tick
  beside it;
- the same at the belt's own pace for ``PACED_S`` wall seconds (``belt_tick_*``): a
  tick every 10 ms, so the store's thread works between ticks as on the belt;
- the bare emulated-chip tick (no service, no threads) at the belt's pace
  (``chip_paced_*``): what any tick costs on this machine after a 10 ms sleep;
- ``walkcoach sim --speed max`` as a whole process (start-up included);
- the running belt's resident memory: a ``walkcoach run --service --backend pi``
  process on the faked bus (its chip answered from this process over a pipe,
  so none of the emulator is in the belt's memory), VmRSS and VmHWM while it runs;
- I2C traffic per tick and the bus time it means at the configured rate; peak
  memory and start-up time of `walkcoach run --backend sim`.

Nothing here asserts a budget (machines are noisy).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.runner import make_coach, run_simulation
from walkcoach.hal.i2c import bus_time_s

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
        samples = backend.imu.all_samples(backend.walk.t_s.tolist())
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

    ``mark()`` during a tick tags it (``marked``: indices into ``durations_ns``); ``tag(name)``
    names it (``tagged``: the longest of the ticks given that name). With ``cpu``, also the loop thread's CPU time in each tick
    (``cpu_ns``, read outside the timed window): a tick much longer than its CPU time
    waited, for the CPU (the machine) or the GIL (another thread)."""

    def __init__(self, clock, *, cpu: bool = False) -> None:
        self._clock = clock
        self.durations_ns: list[int] = []
        self.cpu_ns: list[int] = []
        self.marked: list[int] = []
        self.tagged: dict[str, int] = {}
        self._mark = False
        self.after_marked: Callable[[], object] | None = None  # called between ticks, after a marked one (outside the timed window)
        self._tag: str | None = None
        self._cpu = cpu
        self._work_started_ns: int | None = None
        self._cpu_started_ns = 0

    def mark(self) -> None:
        self._mark = True

    def tag(self, name: str) -> None:
        self._tag = name

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def sleep_until(self, t_s: float) -> None:
        now_ns = time.perf_counter_ns()
        if self._work_started_ns is not None:
            self.durations_ns.append(now_ns - self._work_started_ns)
            if self._cpu:
                self.cpu_ns.append(time.thread_time_ns() - self._cpu_started_ns)
            if self._mark:
                self.marked.append(len(self.durations_ns) - 1)
                self._mark = False
                if self.after_marked is not None:
                    self.after_marked()
            if self._tag is not None:  # a name over several ticks (the offset capture's steps): the longest
                index, before = len(self.durations_ns) - 1, self.tagged.get(self._tag)
                if before is None or self.durations_ns[index] > self.durations_ns[before]:
                    self.tagged[self._tag] = index
                self._tag = None
        self._clock.sleep_until(t_s)
        if self._cpu:
            self._cpu_started_ns = time.thread_time_ns()
        self._work_started_ns = time.perf_counter_ns()

    def sleep(self, duration_s: float) -> None:
        self._clock.sleep(duration_s)


def bench_tick(settings: DeviceSettings, seed: int = 0):
    """The whole tick through the emulated chip (the run, median, p99, mean in us); also gives that path's speed
    and I2C figures. The mean beside the median: the coach's heavier ticks (a step's checks, a bout's end) are in
    every path, so the device path's mean over this median is never below this mean over it."""
    timers: list[_TickTimer] = []

    def instrument(loop) -> None:
        timer = _TickTimer(loop.clock)
        loop.clock = timer
        timers.append(timer)

    run = run_simulation(settings, scenario=BENCH_SCENARIO, seed=seed, via_chip=True, on_loop=instrument)
    durations = timers[0].durations_ns[100:]
    tick_median_us, tick_p99_us = _percentiles_us(durations)
    return run, tick_median_us, tick_p99_us, statistics.fmean(durations) / 1000.0


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
CHIP_PACED_S = 10.0  # wall seconds of the bare emulated-chip tick at the belt's pace
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

    pings = [0]

    class WatchdogMark(Notifier):
        """Sends to a socket of ours as to systemd's (the ping's sendto is in the tick, as on the belt);
        counts the pings. The socket is emptied between ticks."""

        def watchdog(self) -> bool:
            pings[0] += 1
            return super().watchdog()

    class BenchService(Service):
        def _second_work(self, now_s: float) -> None:
            """Tags each tick doing a piece of the once-a-second work (the ping, the snapshot, the status, the save)."""
            if timer_box:
                timer_box[0].mark()
            super()._second_work(now_s)

        def open_backend(self):
            settings = self.config.settings
            backend = hal.open_backend(
                "pi-fake-kernel", scenario=scenario, seed=seed, rate_hz=settings.loop.rate_hz,
                imu_settings=settings.imu, pins=settings.pins, state_dir=self.config.store.state_dir,
                pace="realtime" if paced_s else "max",
            )
            timer = _TickTimer(backend.clock, cpu=True)
            timer.after_marked = drain_notifications
            backend.clock = timer
            timer_box.append(timer)
            _tag_offset_capture(backend.imu, timer)
            self.backend = backend
            return backend

    import socket

    with tempfile.TemporaryDirectory(prefix="walkcoach-bench-") as root, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        notify_path = str(Path(root) / "notify")
        systemd.bind(notify_path)
        systemd.setblocking(False)
        notifications = [0]

        def drain_notifications() -> None:
            try:
                while True:
                    systemd.recv(4096)
                    notifications[0] += 1
            except BlockingIOError:
                pass

        config = _bench_config(Path(root))
        service = BenchService(config, backend="pi", scenario=scenario, seed=seed, speed="max",
                               notifier=WatchdogMark(notify_path, environ={}))

        def stop() -> None:
            service.stop_requested = True
            if service.loop is not None:
                service.loop.request_stop()

        stopper = threading.Timer(paced_s, stop) if paced_s else None
        collections = _CollectionTimer(lambda: bool(timer_box) and len(timer_box[0].durations_ns) >= WARM_UP_TICKS)
        started = time.perf_counter()
        if stopper is not None:
            stopper.start()
        queue_wait_before_ns = _run_queue_wait_ns()
        try:
            with collections:
                rc = service.run()
        finally:
            if stopper is not None:
                stopper.cancel()
        queue_wait_ns = _run_queue_wait_ns() - queue_wait_before_ns
        elapsed_s = time.perf_counter() - started
        drain_notifications()
    if rc != 0 or not timer_box:
        raise RuntimeError(f"the benchmark's service run failed (exit {rc})")
    timer = timer_box[0]
    figures = _tick_figures(timer)
    figures["watchdog_pings"] = pings[0]  # with the warm-up's (the first tick pings at once)
    figures["notifications"] = notifications[0]  # what our stand-in for systemd received: pings, READY, STATUS
    figures["run_s"] = round(elapsed_s, 2)
    figures["run_queue_wait_ms"] = round(queue_wait_ns / 1e6, 1) if queue_wait_ns >= 0 else None
    figures["gc_collections"] = collections.count
    figures["gc_worst_us"] = round(collections.worst_ns / 1000.0, 1)
    return {f"{prefix}_{name}": value for name, value in figures.items()}


def _tick_figures(timer: _TickTimer) -> dict:
    """Mean, median, p99, worst of the ticks after the warm-up; the once-a-second ones (``marked``);
    the loop thread's CPU time in the worst of each; the tick of the chip's one-off offset capture."""
    durations = timer.durations_ns[WARM_UP_TICKS:]
    cpu = timer.cpu_ns[WARM_UP_TICKS:] if timer.cpu_ns else None
    seconds = [i for i in timer.marked if i >= WARM_UP_TICKS]
    median_us, p99_us = _percentiles_us(durations)
    worst = max(range(len(durations)), key=durations.__getitem__)
    figures = {
        "tick_us_mean": round(statistics.fmean(durations) / 1000.0, 2),
        "tick_us_median": round(median_us, 2),
        "tick_us_p99": round(p99_us, 2),
        "tick_us_worst": round(durations[worst] / 1000.0, 1),
        "ticks_over_100us": sum(1 for d in durations if d > 100_000),
        "tick_us_second_median": None,
        "tick_us_second_worst": None,
        "ticks": len(durations),
        "second_ticks": len(seconds),
    }
    if cpu:
        figures["tick_us_worst_cpu"] = round(cpu[worst] / 1000.0, 1)
        figures["tick_us_cpu_median"] = round(statistics.median(cpu) / 1000.0, 2)
    if seconds:
        second_worst = max(seconds, key=timer.durations_ns.__getitem__)
        figures["tick_us_second_median"] = round(statistics.median(timer.durations_ns[i] for i in seconds) / 1000.0, 1)
        figures["tick_us_second_worst"] = round(timer.durations_ns[second_worst] / 1000.0, 1)
        capture = timer.tagged.get("offset capture")
        if cpu:
            figures["tick_us_second_worst_cpu"] = round(timer.cpu_ns[second_worst] / 1000.0, 1)
            # the most CPU any of them took beside the capture (long in wall time, short in CPU: it waited)
            cpus = [timer.cpu_ns[i] for i in seconds if i != capture]
            figures["tick_us_second_cpu_worst"] = round(max(cpus) / 1000.0, 1) if cpus else None
        others = [timer.durations_ns[i] for i in seconds if i != capture]
        figures["tick_us_second_worst_beside_offset_capture"] = round(max(others) / 1000.0, 1) if others else None
    capture = timer.tagged.get("offset capture")
    figures["tick_us_offset_capture"] = round(timer.durations_ns[capture] / 1000.0, 1) if capture is not None else None
    if cpu:  # its CPU beside its wall time: on a loaded machine the wall time is mostly waits for a CPU
        figures["tick_us_offset_capture_cpu"] = round(timer.cpu_ns[capture] / 1000.0, 1) if capture is not None else None
    others = [d for i, d in enumerate(durations) if i + WARM_UP_TICKS != capture]
    figures["tick_us_worst_beside_offset_capture"] = round(max(others) / 1000.0, 1) if others else None
    return figures


def _tag_offset_capture(imu, timer: _TickTimer) -> None:
    """Name the ticks in which the BNO055 driver reads its calibration offsets back (once per process: CONFIG
    mode and back, one step per tick, the chip's own 19 + 7 ms mode switches between them); the longest counts."""
    if not hasattr(imu, "_capture_offsets"):
        imu = getattr(imu, "imu", None)  # the simulator's ChipImu wraps the driver
    begin, step = getattr(imu, "_capture_offsets", None), getattr(imu, "_capture_step", None)
    if begin is None or step is None:
        return

    def tagged_begin() -> None:
        timer.tag("offset capture")
        begin()

    def tagged_step() -> bool:
        timer.tag("offset capture")
        return step()

    imu._capture_offsets = tagged_begin
    imu._capture_step = tagged_step


class _CollectionTimer:
    """The garbage collector's collections while it is entered (any thread) and ``counting()``, and the longest one."""

    def __init__(self, counting=lambda: True) -> None:
        self.count = 0
        self.worst_ns = 0
        self._counting = counting
        self._started_ns = 0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
        elif self._counting():
            self.count += 1
            self.worst_ns = max(self.worst_ns, time.perf_counter_ns() - self._started_ns)

    def __enter__(self) -> _CollectionTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)


def _run_queue_wait_ns() -> int:
    """This thread's time spent runnable but not running (``/proc/thread-self/schedstat``), or -1."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def bench_chip_paced(settings: DeviceSettings, seconds: float = 10.0, seed: int = 0) -> dict:
    """The emulated-chip tick alone (no service, store, status or threads) at the belt's pace for
    ``seconds``: what a tick costs on this machine after a 10 ms sleep, whatever the service does."""
    import threading

    timers: list[_TickTimer] = []

    def instrument(loop) -> None:
        timer = _TickTimer(loop.clock, cpu=True)
        loop.clock = timer
        timers.append(timer)
        _tag_offset_capture(loop.imu, timer)
        threading.Timer(seconds, loop.request_stop).start()

    run_simulation(settings, scenario=PACED_SCENARIO, seed=seed, via_chip=True, speed="realtime", on_loop=instrument)
    figures = _tick_figures(timers[0])
    return {f"chip_paced_{name}": figures[name] for name in
            ("tick_us_mean", "tick_us_median", "tick_us_p99", "tick_us_worst", "tick_us_worst_cpu", "tick_us_cpu_median",
             "tick_us_offset_capture", "tick_us_offset_capture_cpu", "tick_us_worst_beside_offset_capture", "ticks_over_100us", "ticks")}


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


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages while the bench ran (a shared machine's timings wander with them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


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
    chip, tick_median, tick_p99, tick_mean = bench_tick(settings)
    ticks = max(1, chip.loop.stats.ticks)
    transactions = chip.i2c_stats.transactions / ticks
    wire_bytes = chip.i2c_stats.wire_bytes / ticks
    say("peak memory and start-up of run --backend sim")
    peak_rss_mb, first_sample_s = bench_process()
    say("device path at full speed")
    device = bench_device_path()
    say(f"device path at the belt's pace ({PACED_S:g} s)")
    paced = bench_device_path(PACED_SCENARIO, paced_s=PACED_S, prefix="belt")
    say(f"the emulated-chip tick alone at the belt's pace ({CHIP_PACED_S:g} s)")
    chip_paced = bench_chip_paced(settings, CHIP_PACED_S)
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
        "tick_us_mean": round(tick_mean, 2),
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
        **chip_paced,
        "load_average": _load_average(),
        "device_tick_mean_over_chip_median": round(device["device_tick_us_mean"] / tick_median, 2) if tick_median else None,
        "chip_tick_mean_over_chip_median": round(tick_mean / tick_median, 2) if tick_median else None,
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
        f"whole tick through the emulated chip: median {result['tick_us_median']} us, p99 {result['tick_us_p99']} us, "
        f"mean {result['tick_us_mean']} us ({result['chip_tick_mean_over_chip_median']}x its median)",
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
        "  " + _worst_words(result, "device"),
        f"the same at the belt's pace ({result['belt_run_s']} s, a tick every 10 ms): tick mean {result['belt_tick_us_mean']} us, "
        f"median {result['belt_tick_us_median']} us, p99 {result['belt_tick_us_p99']} us; once-a-second ticks median "
        f"{result['belt_tick_us_second_median']} us, worst {result['belt_tick_us_second_worst']} us "
        f"({result['belt_second_ticks']} of them)",
        "  " + _worst_words(result, "belt"),
        f"the emulated-chip tick alone at the belt's pace (no service, no threads; {result['chip_paced_ticks']} ticks): "
        f"mean {result['chip_paced_tick_us_mean']} us, median {result['chip_paced_tick_us_median']} us "
        f"(CPU {result['chip_paced_tick_us_cpu_median']} us), p99 {result['chip_paced_tick_us_p99']} us, worst "
        f"{result['chip_paced_tick_us_worst']} us (CPU {result['chip_paced_tick_us_worst_cpu']} us); "
        f"{result['chip_paced_ticks_over_100us']} ticks over 100 us"
        + (f"; the chip's offset capture {result['chip_paced_tick_us_offset_capture']} us, the worst tick beside it "
           f"{result['chip_paced_tick_us_worst_beside_offset_capture']} us"
           if result.get("chip_paced_tick_us_offset_capture") is not None else ""),
        f"load average while it ran: {result['load_average']}",
        f"walkcoach sim --speed max as a whole process: {result['sim_process_speed_x']}x real time "
        f"({result['sim_process_s']} s wall, start-up included); by its CPU time ({result['sim_process_cpu_s']} s) "
        f"{result['sim_process_cpu_speed_x']}x",
        f"running belt (run --service --backend pi on the faked bus, {result['belt_scenario']}): "
        f"VmRSS {result['belt_rss_mb']} MB, VmHWM {result['belt_hwm_mb']} MB"
        + (" (numpy mapped!)" if result["belt_maps_numpy"] else ", no numpy"),
    ]
    return "\n".join(lines)


def _worst_words(result: dict, prefix: str) -> str:
    """Where the worst ticks' time went: the loop thread's CPU in them, its run-queue wait, the collector."""
    def get(name):
        return result.get(f"{prefix}_{name}")

    capture = get("tick_us_offset_capture")
    return (f"worst tick {get('tick_us_worst')} us (CPU {get('tick_us_worst_cpu')} us); worst once-a-second tick's CPU "
            f"{get('tick_us_second_worst_cpu')} us; {get('ticks_over_100us')} ticks over 100 us; "
            + (f"the chip's one-off offset capture {capture} us, the worst once-a-second tick beside it "
               f"{get('tick_us_second_worst_beside_offset_capture')} us; " if capture is not None else "")
            + f"the most CPU a once-a-second tick took beside the capture {get('tick_us_second_cpu_worst')} us; "
            f"the loop thread waited {get('run_queue_wait_ms')} ms for a CPU; {get('gc_collections')} collections, "
            f"longest {get('gc_worst_us')} us")


def _stage_printer():
    """On a terminal, each stage on stderr as it starts (the whole bench takes a minute or more)."""
    if not sys.stderr.isatty():
        return None
    stages = iter(range(1, 100))
    return lambda text: print(f"bench [{next(stages)}/9] {text} ...", file=sys.stderr, flush=True)


def main_bench(as_json: bool) -> int:
    result = run_bench(progress=_stage_printer())
    print(json.dumps(result) if as_json else format_bench(result))
    return 0
