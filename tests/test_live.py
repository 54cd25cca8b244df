"""A person at a terminal: the live line, Ctrl-C's summary so far, and the simulated button."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from walkcoach.device.cli.cli import main
from walkcoach.device.cli.live import attach_live_view, live_line
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.runner import run_simulation

ROOT = Path(__file__).resolve().parents[1]


def test_the_live_line_follows_the_coach_through_a_walk():
    out = io.StringIO()
    wall = iter(range(10**9))  # each redraw check is "a second later": every tick may draw
    views = []

    def on_loop(loop):
        view = attach_live_view(loop, out)
        view.wall_clock = lambda: next(wall)
        views.append(view)

    run = run_simulation(DeviceSettings(), scenario="leaning-walk", seed=1, on_loop=on_loop)
    frames = [f.removesuffix("\x1b[K") for f in out.getvalue().split("\r") if f]
    assert frames[0].startswith("not walking  0:00/10:00 walk  0 steps  -/min  no upright yet")
    walking = [f for f in frames if f.startswith("walking ")]
    assert walking and all("/min" in f and "lean " in f for f in walking)
    steps_shown = [int(f.split(" steps")[0].rsplit(" ", 1)[1]) for f in frames]
    assert steps_shown == sorted(steps_shown) and steps_shown[-1] <= run.summary.steps  # counts only grow
    assert steps_shown[-1] >= run.summary.steps - 12  # and reach the walk's steps (the last bout closes at the end)
    assert any("(leaning)" in f for f in frames) and any("last cue: straighten_up" in f for f in frames)
    views[0].close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_live_line_from_a_status_file_dict():
    status = {"walking": True, "walk_s": 75.0, "cap_s": 600.0, "steps": 130, "cadence_spm": 108.4, "lean_deg": 4.2,
              "leaning": False, "pain_reports": 1}
    assert live_line(status, (10.0, "pain_ack"), 22.4) == (
        "walking  1:15/10:00 walk  130 steps  108/min  lean 4°  pain 1  last cue: pain_ack 12 s ago")


def test_press_and_hold_in_the_simulator_reach_every_pain_rule(capsys):
    assert main(["sim", "--scenario", "upright-walk", "--json", "--press", "1:00,2:30", "--hold", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    cues = [(c["kind"], c["why"]) for c in result["cues"]]
    assert ("pain_ack", "pain report 1 this session") in cues and ("pain_ack", "pain report 2 this session") in cues
    assert ("stop", "pain got worse again: stop for today") in cues
    first_pain = next(c for c in result["cues"] if c["kind"] == "pain_ack")
    assert 60.0 <= first_pain["t_s"] < 60.5
    readies = [c for c in result["cues"] if c["kind"] == "ready"]
    # the hold at 20 s came while walking: the capture waits for the next still moment, the pause at ~6:20
    assert len(readies) == 2 and 375.0 < readies[1]["t_s"] < 395.0


def test_the_pain_walk_scenario_shortens_the_cap_then_stops(capsys):
    assert main(["sim", "--scenario", "pain-walk", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    kinds = [(c["kind"], round(c["t_s"] / 60, 1)) for c in result["cues"]]
    pain = [t for k, t in kinds if k == "pain_ack"]
    assert len(pain) == 2
    warning = [c for c in result["cues"] if c["kind"] == "cap_warning"]
    assert warning and warning[0]["why"].endswith("left of 5")  # the 10-min cap shortened by 5
    assert any(c["why"] == "pain got worse again: stop for today" for c in result["cues"])


def test_the_recalibrate_scenario_captures_the_upright_again_after_the_hold(capsys):
    assert main(["sim", "--scenario", "recalibrate", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    readies = [c["t_s"] for c in result["cues"] if c["kind"] == "ready"]
    assert len(readies) == 2 and 96.5 + 3.0 <= readies[1] < 107.0


def test_ctrl_c_in_a_realtime_sim_prints_the_summary_so_far():
    """At a terminal (a pty): the live line refreshes; Ctrl-C ends with the summary, no traceback."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "walkcoach", "sim", "--speed", "realtime", "--scenario", "standing"],
                               cwd=ROOT, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"last cue: ready" not in seen:  # the upright is captured about 3 s in
            assert time.monotonic() < deadline and process.poll() is None, seen
            if select.select([leader], [], [], 0.5)[0]:
                seen += os.read(leader, 4096)
        process.send_signal(signal.SIGINT)
        while process.poll() is None or select.select([leader], [], [], 0.2)[0]:
            assert time.monotonic() < deadline
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=10) == 130
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert "\rnot walking  0:00/10:00 walk  0 steps" in text
    assert "interrupted at 0." in text and "min recorded, walked 0.0 min" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text


def test_the_status_watcher_draws_the_running_services_line(tmp_path):
    from walkcoach.device.cli.live import StatusWatcher
    from walkcoach.device.shell.status import StatusTracker, write_status

    tracker = StatusTracker(backend="pi")
    tracker.state = "running"
    status = dict(tracker.snapshot_dict(30.0), walking=True, walk_s=95.0, cap_s=900.0, steps=170, cadence_spm=107.0,
                  lean_deg=3.0, last_cue={"cue": "ready", "t_s": 20.0, "why": "upright reference captured"})
    write_status(tmp_path, status)
    out = io.StringIO()
    watcher = StatusWatcher(tmp_path, out, every_s=0.02).start()
    try:
        deadline = time.monotonic() + 10
        while "walking" not in out.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert out.getvalue().startswith("\rwalking  1:35/15:00 walk  170 steps  107/min  lean 3°  last cue: ready 10 s ago")
    assert out.getvalue().count("\rwalking") == 1  # redrawn only when the file says something new
