"""The fault-handling figures of issue 11 (set-up under NACKs, frozen and stalling sensors, the watchdog).

Not part of CI (minutes of simulation); the 30-seed soak is the README's loop over
`walkcoach run --faults`. From the repository root:

    PYTHONPATH=. .venv/bin/python tools/fault_figures.py setup      # 100 starts at 5 % and 20 % NACKs
    PYTHONPATH=. .venv/bin/python tools/fault_figures.py frozen     # frozen 30 s, walker seeds 0-9
    PYTHONPATH=. .venv/bin/python tools/fault_figures.py timeouts   # 1 s stalls at 1 % for 30 s, bus seeds 0-29
    PYTHONPATH=. .venv/bin/python tools/fault_figures.py watchdog   # longest wait for WATCHDOG=1 (tests' harness)
"""
import logging
import pathlib
import sys
import tempfile

from tests.test_faults import _walk_outside
from walkcoach.device.core.events import Cue
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.runner import run_simulation
from walkcoach.hal.mount import Mount
from walkcoach.sim.chip_path import FaultPlan, open_chip_imu
from walkcoach.sim.clock import VirtualClock
from walkcoach.sim.walker import simulate

logging.disable(logging.WARNING)  # the figures, not the runs' warnings

what = sys.argv[1]
if what == "setup":
    walk = simulate("standing", 0)
    for rate in (0.05, 0.20):
        ok = retried = attempts2 = 0
        for seed in range(100):
            clock = VirtualClock()
            imu, bus = open_chip_imu(walk, clock, mount=Mount(), faults=FaultPlan(setup_nack_probability=rate, seed=seed))
            try:
                clock.sleep(0.01)
                imu.read()
                ok += 1
            except Exception:
                pass
            retried += imu.imu.setup_retries
            attempts2 += imu.imu.setup_attempts > 1
            imu.close()
        print(f"setup_nack_rate {rate:.0%}: {ok}/100 starts with a working sensor on the first set-up; "
              f"{retried} retried transfers, {attempts2} starts needed a second attempt")
elif what in ("frozen", "timeouts"):
    lat, errs = [], []
    for seed in range(30 if what == "timeouts" else 10):
        if what == "frozen":
            plan, walker_seed = FaultPlan(frozen=((600.0, 30.0),)), seed
        else:
            plan = FaultPlan(seed=seed, timeout_probability=0.01, timeout_duration_s=1.0, timeout_window_s=(600.0, 630.0))
            walker_seed = 0
        run = run_simulation(DeviceSettings(), scenario="long-walk", seed=walker_seed, via_chip=True, faults=plan)
        cues = [t for t, k, _ in run.summary.cues if k == Cue.FAULT]
        bouts = [{"start_s": b.start_s, "end_s": b.end_s} for b in run.summary.bouts]
        c, t = _walk_outside(bouts, run.walk.truth.walking, run.walk.t_s, (600.0, 630.0))
        lat.append(cues[0] - 600.0)
        errs.append((c - t) / t * 100)
        whole = (run.summary.walk_s - run.walk.truth.walk_s) / run.walk.truth.walk_s * 100
        print(f"seed {seed}: cue after {cues[0]-600:.2f} s, {len(cues)} cue(s), walk outside the fault {errs[-1]:+.2f} %, "
              f"whole run {whole:+.2f} %", flush=True)
    print(f"{what}: cue latency max {max(lat):.2f} s, median {sorted(lat)[len(lat)//2]:.2f} s; "
          f"walk outside the fault {min(errs):+.2f}..{max(errs):+.2f} %")
elif what == "watchdog":
    from tests.test_service import run_service_in_virtual_time
    for unplugs, scenario in ((((300.0, 10.0), (500.0, 60.0), (800.0, 300.0)), "long-walk"), (((0.0, 120.0),), "upright-walk")):
        tmp = pathlib.Path(tempfile.mkdtemp())
        service, worst_s = run_service_in_virtual_time(tmp, FaultPlan(unplugs=unplugs, seed=1), scenario=scenario)
        print(f"{scenario} unplugs {unplugs}: longest wait for WATCHDOG=1 {worst_s:.2f} s (loop time), "
              f"{service.loop.stats.outages} outage(s), {service.loop.stats.faults} fault cue(s), {service.loop.stats.resets} re-init(s)")
