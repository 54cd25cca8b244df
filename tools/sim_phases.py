"""Where `walkcoach sim --speed max --json` spends its process: `.venv/bin/python -m tools.sim_phases [SIM ARGS]`.

Runs the sim command in this process (default scenario unless SIM ARGS say otherwise) and prints, to
stderr, the CPU time of each phase: interpreter start-up to this script, walkcoach's CLI imports, the
simulator's imports (numpy, the walker), gpiozero's mock pins, argument parsing and config, the walk's
generation, the pins/coach/loop set-up, the loop itself, and the summary. The JSON goes to stdout.

CPU times wander by tens of per cent on a shared machine; instruction counts do not. Each phase
boundary calls ``os.getppid()`` (nothing else here does), so under callgrind every phase is one dump:

    valgrind --tool=callgrind --dump-before=os_getppid --callgrind-out-file=/tmp/ph.%p \\
        .venv/bin/python -m tools.sim_phases >/dev/null
    grep -h '^summary:' /tmp/ph.<pid>.*   # in dump order: .1 = start-up ... .9 = summary, the last = exit

Run it with ``-m`` from the tree's root, as above (the editable install maps walkcoach's packages).
"""

from __future__ import annotations

import os
import sys
import time

PHASES = (
    "interpreter start-up, site, this script",
    "walkcoach CLI imports (device code, config, coach)",
    "simulator imports (numpy, the walker)",
    "gpiozero mock pins import",
    "argument parsing, config, settings",
    "walk generation",
    "pins, outputs, coach and loop set-up",
    "the loop (reads, coach, button, cues)",
    "summary and JSON",
)


class _Phases:
    def __init__(self) -> None:
        self.cpu_s: list[float] = []
        self._last_s = 0.0  # process CPU time counts from the process's start

    def mark(self) -> None:
        os.getppid()  # callgrind's dump point (see the module docstring)
        now_s = time.process_time()
        self.cpu_s.append(now_s - self._last_s)
        self._last_s = now_s

    def report(self, out=sys.stderr) -> None:
        for name, cpu_s in zip(PHASES, self.cpu_s, strict=False):
            print(f"{cpu_s * 1000:8.1f} ms  {name}", file=out)
        print(f"{sum(self.cpu_s) * 1000:8.1f} ms  CPU in all (before exit)", file=out)


def main(argv: list[str]) -> int:
    phases = _Phases()
    phases.mark()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI sets it, before numpy is imported
    import walkcoach.device.cli.cli as cli

    phases.mark()
    import walkcoach.sim.backend as backend

    phases.mark()
    import gpiozero.pins.mock  # noqa: F401

    phases.mark()
    from walkcoach.device.shell.loop import CoachLoop

    real_simulate, real_run = backend.simulate, CoachLoop.run

    def simulate(*args, **kwargs):
        phases.mark()
        walk = real_simulate(*args, **kwargs)
        phases.mark()
        return walk

    def run(self, **kwargs):
        phases.mark()
        try:
            return real_run(self, **kwargs)
        finally:
            phases.mark()

    backend.simulate, CoachLoop.run = simulate, run  # type: ignore[method-assign]
    try:
        sys.argv = ["walkcoach", "sim", "--speed", "max", "--json", *argv]
        rc = cli.main()
    finally:
        backend.simulate, CoachLoop.run = real_simulate, real_run  # type: ignore[method-assign]
    phases.mark()
    phases.report()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
