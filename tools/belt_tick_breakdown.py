"""Where the belt's slowest ticks went: `.venv/bin/python -m tools.belt_tick_breakdown [SECONDS] [--max-speed]`.

Runs the bench's device path (the real service over the faked kernel call; `walkcoach bench`'s
``bench_device_path``) at the belt's pace for SECONDS (default 20) or over ``full-session`` at max
speed, and prints the 20 slowest ticks after the warm-up with, for each: its wall time, the loop
thread's CPU time in it, the thread's run-queue wait in it (``/proc/thread-self/schedstat``: runnable,
not running) and the CPU time the process's other threads (store, status) used meanwhile. A tick
much longer than its CPU time waited: for a CPU if the run-queue wait fills the gap, for the GIL if the
other threads' CPU does. The readings are taken outside each tick's timed window.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from walkcoach.device.cli import bench


class _Readings:
    """Wraps the backend's clock under the bench's tick timer: readings at each tick's end and start."""

    def __init__(self, clock, ticks: list[tuple]) -> None:
        self._clock = clock
        self._ticks = ticks
        self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        self._started: tuple | None = None

    def _read(self) -> tuple[int, int, int]:
        os.lseek(self._fd, 0, 0)
        run_queue_ns = int(os.read(self._fd, 128).split()[1])
        return time.thread_time_ns(), time.process_time_ns(), run_queue_ns

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def sleep(self, duration_s: float) -> None:
        self._clock.sleep(duration_s)

    def sleep_until(self, t_s: float) -> None:
        ended = self._read()
        if self._started is not None:
            thread_ns, process_ns, queue_ns = (e - s for e, s in zip(ended, self._started, strict=True))
            self._ticks.append((thread_ns, queue_ns, process_ns - thread_ns))
        self._clock.sleep_until(t_s)
        self._started = self._read()


def main(argv: list[str]) -> int:
    max_speed = "--max-speed" in argv
    numbers = [a for a in argv if not a.startswith("--")]
    seconds = float(numbers[0]) if numbers else 20.0
    readings: list[tuple] = []
    timers: list = []
    timer_init = bench._TickTimer.__init__

    def init(self, clock, **kwargs) -> None:
        timer_init(self, _Readings(clock, readings), **kwargs)
        timers.append(self)

    bench._TickTimer.__init__ = init
    try:
        if max_speed:
            figures = bench.bench_device_path()
        else:
            figures = bench.bench_device_path(bench.PACED_SCENARIO, paced_s=seconds, prefix="belt")
    finally:
        bench._TickTimer.__init__ = timer_init
    timer = timers[0]
    durations = timer.durations_ns
    marked = set(timer.marked)
    capture = timer.tagged.get("offset capture")
    first = bench.WARM_UP_TICKS
    slowest = sorted(range(first, len(durations)), key=durations.__getitem__, reverse=True)[:20]
    print(f"{len(durations) - first} ticks, load average {os.getloadavg()[0]:.1f}; "
          f"median wall {statistics.median(durations[first:]) / 1000:.1f} us, "
          f"median CPU {statistics.median(r[0] for r in readings[first:]) / 1000:.1f} us")
    print("  tick    wall_us     cpu_us  run_queue_us  other_threads_cpu_us")
    for i in slowest:
        cpu_ns, queue_ns, others_ns = readings[i] if i < len(readings) else (0, 0, 0)
        what = " once-a-second" if i in marked else ""
        what += " offset capture" if i == capture else ""
        print(f"{i:6d} {durations[i] / 1000:10.1f} {cpu_ns / 1000:10.1f} {queue_ns / 1000:13.1f} {others_ns / 1000:21.1f}{what}")
    print({k: v for k, v in figures.items() if "second" in k or "run_queue" in k})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
