"""The live line: what the coach sees, on one refreshing terminal line.

``walkcoach sim --speed realtime`` (and ``run`` at a terminal) shows it only when
stdout is a terminal: nothing changes for ``--json`` or a pipe. It is redrawn at
most :data:`REDRAW_EVERY_S` of wall time, from the coach's snapshot and the last
cue seen as an event sink::

    walking  1:12/10:00 walk  412 steps  108/min  lean 4°  last cue: straighten_up 12 s ago
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from walkcoach.device.core.events import Event

REDRAW_EVERY_S = 0.25


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    return f"{minutes}:{secs:02d}"


def live_line(snapshot, last_cue: tuple[float, str] | None, now_s: float) -> str:
    """One line from a CoachSnapshot (or a status dict's same fields)."""
    get = snapshot.get if isinstance(snapshot, dict) else lambda name, default=None: getattr(snapshot, name, default)
    walking = get("walking", False)
    parts = ["walking" if walking else "not walking",
             f"{_clock(get('walk_s', 0.0))}/{_clock(get('cap_s', 0.0))} walk",
             f"{get('steps', 0)} steps"]
    cadence = get("cadence_spm", 0.0) or 0.0
    parts.append(f"{cadence:.0f}/min" if walking and cadence > 0 else "-/min")
    lean = get("lean_deg")
    captured = get("upright_captured", lean is not None)
    parts.append(f"lean {round(lean) or 0}°" + (" (leaning)" if get("leaning", False) else "")  # never "-0°"
                 if captured and lean is not None else "no upright yet")
    if get("pain_reports", 0):
        parts.append(f"pain {get('pain_reports')}")
    if last_cue is not None:
        parts.append(f"last cue: {last_cue[1]} {max(0.0, now_s - last_cue[0]):.0f} s ago")
    return "  ".join(parts)


class LiveView:
    """An event sink (for the last cue) plus a tick hook that redraws the line on ``out``."""

    def __init__(self, coach, out: TextIO | None = None, *, wall_clock=time.monotonic) -> None:
        self.coach = coach
        self.out = out or sys.stdout
        self.wall_clock = wall_clock
        self.last_cue: tuple[float, str] | None = None
        self._next_wall = 0.0
        self._drawn = False

    def __call__(self, event: Event) -> None:
        if event.cue is not None:
            self.last_cue = (event.t_s, event.cue.value)

    def tick(self, now_s: float) -> None:
        wall = self.wall_clock()
        if wall < self._next_wall:
            return
        self._next_wall = wall + REDRAW_EVERY_S
        self.draw(live_line(self.coach.snapshot(now_s), self.last_cue, now_s))

    def draw(self, line: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        self.out.write("\r" + line[: max(10, width - 1)] + "\x1b[K")
        self.out.flush()
        self._drawn = True

    def close(self) -> None:
        """End the line, so what follows starts on a fresh one."""
        if self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False


def attach_live_view(loop, out: TextIO | None = None) -> LiveView:
    """Show the live line for a ``CoachLoop`` before it runs (chained after any ``on_tick`` there)."""
    view = LiveView(loop.coach, out)
    loop.sinks.append(view)
    previous = loop.on_tick
    if previous is None:
        loop.on_tick = view.tick
    else:
        def on_tick(now_s: float) -> None:
            previous(now_s)
            view.tick(now_s)

        loop.on_tick = on_tick
    return view


class StatusWatcher:
    """`walkcoach run` at a terminal: the service writes its status file about once a second;
    a thread redraws the live line from it (the service's own loop is left alone)."""

    def __init__(self, runtime_dir, out: TextIO | None = None, *, every_s: float = 0.5) -> None:
        import threading

        self.runtime_dir = runtime_dir
        self.view = LiveView(None, out)
        self.every_s = every_s
        self._last_line = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="walkcoach-live", daemon=True)

    def start(self) -> StatusWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from walkcoach.device.shell.status import read_status

        while not self._stop.wait(self.every_s):
            status = read_status(self.runtime_dir)
            if not status or status.get("state") != "running":
                continue
            cue = status.get("last_cue")
            last_cue = (float(cue["t_s"]), str(cue["cue"])) if isinstance(cue, dict) and "t_s" in cue else None
            try:
                line = live_line(status, last_cue, float(status.get("t_s", 0.0)))
                if line != self._last_line:  # the file changes once a second
                    self._last_line = line
                    self.view.draw(line)
            except (KeyError, TypeError, ValueError, OSError):
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.view.close()
