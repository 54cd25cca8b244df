"""Time Service.on_tick (the shell's own work in each tick) on the simulated belt at real-time pace.

`.venv/bin/python -m tools.service_tick_cost [SECONDS]` prints the median and p99 on_tick, and the
on_tick of the once-a-second ticks (status, watchdog, the saved session): issue 12's "nothing slow
inside the tick". Store and recording hooks chained after on_tick are not included."""
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from walkcoach.device.config.config import load_config
from walkcoach.device.shell.service import Service

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
tmp = Path(tempfile.mkdtemp())
(tmp / "c.toml").write_text(f'[store]\nstate_dir = "{tmp}/state"\n[service]\nruntime_dir = "{tmp}/run"\n')
config = load_config(tmp / "c.toml")
svc = Service(config, backend="sim", scenario="upright-walk", seed=0, speed="realtime")
durations = []
status_ticks = []
orig = svc.on_tick
def timed(now_s):
    before = svc._next_status_wall
    t0 = time.perf_counter_ns()
    orig(now_s)
    d = time.perf_counter_ns() - t0
    durations.append(d)
    if svc._next_status_wall != before:
        status_ticks.append(d)
svc.on_tick = timed
signal.signal(signal.SIGALRM, lambda *a: svc.loop.request_stop())
signal.setitimer(signal.ITIMER_REAL, seconds)
# install_signals replaces SIGTERM/INT/HUP only; SIGALRM stays ours
svc.run()
d = sorted(durations[50:])
slow = sorted(status_ticks[1:])
print(f"ticks {len(d)}  on_tick median {statistics.median(d)/1000:.1f} us  p99 {d[int(len(d)*0.99)]/1000:.1f} us  "
      f"once-a-second ticks {len(slow)}: median {statistics.median(slow)/1000 if slow else 0:.0f} us, worst {max(d)/1000:.0f} us")
