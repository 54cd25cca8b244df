"""The history store: what it writes, that it survives kill -9, and that a broken database never stops coaching."""

import datetime as dt
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from walkcoach.device.core.coach import CoachSnapshot
from walkcoach.device.core.events import Bout, Cue, Event, EventKind
from walkcoach.device.core.settings import PlanSettings
from walkcoach.device.shell import status as status_mod
from walkcoach.device.shell.clock_trust import WallClock
from walkcoach.device.shell.store import DB_NAME, Store, StoreProgress, load_sessions, read_bouts, read_cues

ROOT = Path(__file__).resolve().parents[1]
WALL0 = dt.datetime(2025, 3, 3, 9, 0).astimezone().timestamp()


def snapshot(t_s, walk_s, steps, *, started=True, cap_s=600.0, pain=0):
    return CoachSnapshot(t_s, 2.0, False, True, walk_s, cap_s, steps, 110.0, True, started, pain)


def open_store(tmp_path, **kw):
    kw.setdefault("planned_cap_s", 600.0)
    return Store.open(tmp_path, mono_at_open=100.0, wall_at_open=WALL0, **kw)


def rows(tmp_path, sql):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_session_with_bouts_cues_and_pain_is_written(tmp_path):
    store = open_store(tmp_path)
    assert store.healthy and store.reason == ""
    bout = Bout(105.0, 165.0, 110, 110.0, 0.03)
    store(Event(104.0, EventKind.UPRIGHT_CAPTURED, Cue.READY, "upright reference captured"))  # before any session
    store(Event(108.0, EventKind.WALK_STARTED, why="walking"))
    store.progress(snapshot(110.0, 5.0, 10), store.wall_time(110.0))
    store(Event(130.0, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, "leaning 20° for 5 s"))
    store(Event(150.0, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, "pain report 1 this session"))
    store(Event(170.0, EventKind.WALK_ENDED, why="110 steps", bout=bout))
    store(Event(800.0, EventKind.SESSION_ENDED, why="walked 1.0 min"))
    assert store.flush()
    sessions = load_sessions(tmp_path)
    assert len(sessions) == 1
    s = sessions[0]
    assert s.closed_by == "session_end" and s.walk_s == pytest.approx(60.0) and s.steps == 110
    assert s.pain_reports == 1 and s.planned_cap_s == 600.0
    assert s.started.timestamp() == pytest.approx(WALL0 + 8.0, abs=1e-3)
    assert s.ended.timestamp() == pytest.approx(WALL0 + 65.0, abs=1e-3)  # the end of its last bout
    assert s.date == dt.date(2025, 3, 3)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    bouts, cues = read_bouts(conn), read_cues(conn)
    conn.close()
    assert [(b.steps, b.cadence_spm, b.step_length_m) for b in bouts] == [(110, 110.0, None)]
    assert bouts[0].duration_s == pytest.approx(60.0)
    assert [(c.kind, c.session_id) for c in cues] == [("ready", None), ("straighten_up", 1), ("pain_ack", 1)]
    assert rows(tmp_path, "SELECT count(*) FROM pain_reports WHERE session_id = 1") == [(1,)]
    store.close()


def test_bout_metrics_are_stored_when_the_bout_has_them(tmp_path):
    store = open_store(tmp_path)
    store(Event(120.0, EventKind.WALK_ENDED, bout=Bout(100.0, 120.0, 36, 108.0, 0.04, 0.66, 1.19, 4.5, float("nan"))))
    store.close()
    assert rows(tmp_path, "SELECT step_length_m, speed_ms, mean_lean_deg, peak_lean_deg FROM bouts") == [(0.66, 1.19, 4.5, None)]


def test_close_ends_the_open_session_as_shutdown(tmp_path):
    store = open_store(tmp_path)
    store(Event(110.0, EventKind.WALK_STARTED))
    store.progress(snapshot(140.0, 31.0, 55), store.wall_time(140.0))
    store.close()
    store.close()  # twice is fine
    [s] = load_sessions(tmp_path)
    assert s.closed_by == "shutdown" and s.walk_s == 31.0 and s.steps == 55
    assert s.ended.timestamp() == pytest.approx(WALL0 + 40.0, abs=1e-3)
    assert rows(tmp_path, "PRAGMA journal_mode") == [("wal",)]


def test_progress_without_a_session_or_after_the_coach_moved_on_is_ignored(tmp_path):
    store = open_store(tmp_path)
    store.progress(snapshot(101.0, 0.0, 0, started=False), WALL0 + 1.0)
    store(Event(110.0, EventKind.WALK_STARTED))
    store.progress(snapshot(120.0, 12.0, 20), WALL0 + 20.0)
    store(Event(900.0, EventKind.SESSION_ENDED))
    store.progress(snapshot(901.0, 0.0, 0, started=False), WALL0 + 801.0)  # the coach's new session, not started
    store.close()
    assert [(s.walk_s, s.steps, s.closed_by) for s in load_sessions(tmp_path)] == [(12.0, 20, "session_end")]


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from walkcoach.device.core.coach import CoachSnapshot
    from walkcoach.device.core.events import Event, EventKind
    from walkcoach.device.shell.store import Store

    store = Store.open(sys.argv[1], mono_at_open=time.monotonic(), planned_cap_s=900.0)
    assert store.healthy, store.reason
    t0 = time.monotonic()
    store(Event(t0, EventKind.WALK_STARTED, why="walking"))
    while True:
        time.sleep(0.1)
        now = time.monotonic()
        walk_s = 300.0 + (now - t0)  # mid-walk: five minutes in
        store.progress(CoachSnapshot(now, 3.0, False, True, walk_s, 900.0, int(walk_s * 1.8), 108.0, True, True, 0), time.time())
        print(f"{walk_s:.2f}", flush=True)
    """
)


def test_a_killed_writer_loses_at_most_30_s_and_the_session_is_recovered(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(CRASH_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    walked_s = 0.0
    try:
        deadline = time.monotonic() + 30.0
        while walked_s < 305.0 and time.monotonic() < deadline:  # about 5 s of real writing
            line = proc.stdout.readline()
            if not line:
                break
            walked_s = float(line)
        assert walked_s >= 305.0, "the writer did not get going"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    store = Store.open(tmp_path, mono_at_open=0.0)
    assert store.healthy and store.recovered_sessions == 1
    store.close()
    [s] = load_sessions(tmp_path)
    assert s.closed_by == "recovered_after_crash"
    assert walked_s - 30.0 <= s.walk_s <= walked_s
    print(f"walked {walked_s:.2f} s, recovered {s.walk_s:.2f} s")
    assert walked_s - s.walk_s < 3.5  # in fact no more than the commit interval (2 s) and a tick
    assert s.ended is not None and s.steps > 0
    assert rows(tmp_path, "PRAGMA integrity_check") == [("ok",)]


def test_a_corrupt_database_is_reported_and_coaching_goes_on(tmp_path, caplog):
    (tmp_path / DB_NAME).write_bytes(os.urandom(8192))
    with caplog.at_level(logging.ERROR, logger="walkcoach.store"):
        store = open_store(tmp_path)
    assert not store.healthy
    assert "not a database" in store.reason and str(tmp_path) in store.reason
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    store(Event(1.0, EventKind.WALK_STARTED))  # a no-op sink: no exception
    store.progress(snapshot(2.0, 1.0, 2), WALL0)
    assert store.flush() is False
    store.close()
    assert (tmp_path / DB_NAME).stat().st_size == 8192  # the damaged file is left for inspection


def test_a_truncated_database_is_reported(tmp_path):
    store = open_store(tmp_path)
    for k in range(200):
        store(Event(100.0 + k, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, "x" * 200))
    store.close()
    data = (tmp_path / DB_NAME).read_bytes()
    (tmp_path / DB_NAME).write_bytes(data[: len(data) // 2])
    again = open_store(tmp_path)
    assert not again.healthy and again.reason
    again.close()


def test_an_unwritable_place_is_reported_and_coaching_goes_on(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    with caplog.at_level(logging.ERROR, logger="walkcoach.store"):
        store = open_store(blocker / "state")
    assert not store.healthy and "cannot use" in store.reason
    store(Event(1.0, EventKind.WALK_STARTED))
    store.close()
    if os.geteuid() != 0:  # root writes anywhere: the permission case only means something for the service user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        store = open_store(locked)
        assert not store.healthy
        store.close()


def test_a_write_failure_while_running_disables_the_store_without_raising(tmp_path):
    store = open_store(tmp_path)
    assert store.flush()
    store._conn.close()  # the database goes away under the writer
    store(Event(110.0, EventKind.WALK_STARTED))
    assert store.flush() is False
    deadline = time.monotonic() + 5.0
    while store.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not store.healthy and "failed" in store.reason
    store(Event(120.0, EventKind.WALK_STARTED))  # still no exception
    store.close()


def test_the_sink_never_blocks_and_stores_every_event(tmp_path):
    """20 000 cues while another program holds the write lock: the loop's calls all return (the writer
    thread waits, not the loop), nothing is dropped, and once the lock is free every cue is stored.
    (How fast a call is, is `walkcoach bench`'s figure, not a test's.)"""
    open_store(tmp_path).close()
    other = _hold_lock(tmp_path)
    store = open_store(tmp_path, busy_timeout_s=0.05)
    try:
        for k in range(20000):
            store(Event(100.0 + k * 0.01, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, f"cue {k}"))
        assert store.health()["dropped"] == 0
    finally:
        other.execute("COMMIT")
        other.close()
    assert store.flush(60.0)
    store.close()
    assert rows(tmp_path, "SELECT count(*), count(DISTINCT why) FROM cues WHERE kind = 'straighten_up'") == [(20000, 20000)]


def test_wall_time_is_re_anchored_when_the_clock_jumps(tmp_path):
    store = open_store(tmp_path)
    store(Event(110.0, EventKind.WALK_STARTED))
    ntp_fix_s = 3600.0  # a Pi without a real-time clock learns the time an hour later than it thought
    store.progress(snapshot(120.0, 10.0, 18), WALL0 + 20.0 + ntp_fix_s)
    store(Event(130.0, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, "pain"))
    store.close()
    [(time_text,)] = rows(tmp_path, "SELECT time FROM pain_reports")
    assert dt.datetime.fromisoformat(time_text).timestamp() == pytest.approx(WALL0 + 30.0 + ntp_fix_s, abs=1e-3)


def test_the_store_gives_the_coach_a_stepped_back_cap_after_repeated_pain(tmp_path):
    plan = PlanSettings(start_date=dt.date(2025, 2, 10), start_min=10.0, weekly_increase_min=5.0, max_min=30.0)

    class FakeCoach:
        caps = []

        def snapshot(self, t_s):
            return snapshot(t_s, 0.0, 0, started=False)

        def set_planned_cap(self, cap_s):
            self.caps.append(cap_s)

    store = open_store(tmp_path, plan_settings=plan)
    assert store.plan_cap_s == 25 * 60.0  # three weeks in, no pain
    coach = FakeCoach()
    hook = StoreProgress(store, coach, wall_clock=None)
    for start in (110.0, 1000.0):  # two sessions with pain today
        store(Event(start, EventKind.WALK_STARTED))
        store(Event(start + 60.0, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, "pain"))
        store(Event(start + 700.0, EventKind.SESSION_ENDED))
    assert store.flush()
    hook(2000.0)
    assert coach.caps == [20 * 60.0]
    hook(2000.5)  # once a second at most, and only on a change
    hook(2002.0)
    assert coach.caps == [20 * 60.0]
    store.set_plan_settings(PlanSettings(start_date=plan.start_date, start_min=10.0, weekly_increase_min=10.0, max_min=60.0))
    assert store.flush()
    hook(2004.0)  # a config reload: 10 + 3 x 10 = 40 min, one increment back for the pain
    assert coach.caps == [20 * 60.0, 30 * 60.0]
    store.close()


def test_a_live_loop_writes_what_the_summary_saw(tmp_path):
    from walkcoach import hal
    from walkcoach.device.core.coach import Coach
    from walkcoach.device.core.feedback import CuePlayer
    from walkcoach.device.core.settings import CoachSettings
    from walkcoach.device.core.summary import RunSummary
    from walkcoach.device.shell.loop import CoachLoop

    backend = hal.open_backend("sim", scenario="full-session", seed=1, rate_hz=100.0)
    coach = Coach(CoachSettings(), rate_hz=100.0, cap_s=600.0)
    store = Store.open(tmp_path, mono_at_open=backend.clock.monotonic(), wall_at_open=WALL0, planned_cap_s=600.0)
    summary = RunSummary(hold_s=5.0)
    loop = CoachLoop(imu=backend.imu, coach=coach, player=CuePlayer(backend.outputs), clock=backend.clock,
                     rate_hz=100.0, sinks=[summary, store], on_tick=StoreProgress(store, coach, wall_clock=None))
    try:
        loop.run()
    finally:
        backend.close()
        store.close()
    [s] = load_sessions(tmp_path)
    assert s.walk_s == pytest.approx(summary.walk_s, abs=0.01) and s.steps == summary.steps
    assert s.closed_by == "shutdown"
    assert rows(tmp_path, "SELECT count(*) FROM bouts") == [(len(summary.bouts),)]
    assert rows(tmp_path, "SELECT count(*) FROM cues") == [(len(summary.cues),)]
    assert rows(tmp_path, "SELECT kind FROM cues WHERE kind = 'stop' LIMIT 1") == [("stop",)]


def test_walkcoach_run_killed_mid_walk_keeps_its_walk_and_its_recording(tmp_path):
    """`walkcoach run --backend sim --speed realtime --record` is SIGKILLed mid-walk; the next start
    recovers the session within 30 s of what the recording shows was walked."""
    from walkcoach.device.core.settings import DeviceSettings
    from walkcoach.device.offline.replay import read_recording, replay

    record, state, runtime = tmp_path / "walk.wcrec", tmp_path / "state", tmp_path / "run"
    config = tmp_path / "walkcoach.toml"
    config.write_text(f'[store]\nstate_dir = "{state}"\n\n[service]\nruntime_dir = "{runtime}"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "walkcoach", "--config", str(config), "run", "--backend", "sim", "--speed", "realtime",
         "--scenario", "upright-walk", "--record", str(record)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60.0
        recorded_s = 0.0
        while recorded_s < 16.0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if record.exists():
                lines = record.read_bytes().splitlines()
                if len(lines) > 3:
                    recorded_s = float(lines[-2].split(b",")[0])
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    rec = read_recording(record)
    walked_s = replay(rec, DeviceSettings()).summary.walk_s
    assert walked_s > 5.0
    store = Store.open(state, mono_at_open=0.0)
    assert store.healthy and store.recovered_sessions == 1
    store.close()
    [s] = load_sessions(state)
    assert s.closed_by == "recovered_after_crash"
    assert abs(s.walk_s - walked_s) <= 30.0
    assert rows(state, "PRAGMA integrity_check") == [("ok",)]


# -- a database locked by another program ------------------------------------------------------------


def _hold_lock(tmp_path) -> sqlite3.Connection:
    """Another program writing: it holds the write lock until it commits."""
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None, timeout=5.0)
    other.execute("BEGIN IMMEDIATE")
    return other


def _wait(predicate, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _walk(store, t0: float, bouts: int = 3) -> None:
    store(Event(t0, EventKind.WALK_STARTED))
    for k in range(bouts):
        start = t0 + 100.0 * k
        store(Event(start + 50.0, EventKind.WALK_ENDED, why="bout", bout=Bout(start, start + 40.0, 40, 100.0, 0.03)))
        store.progress(snapshot(start + 60.0, 40.0 * (k + 1), 40 * (k + 1)), store.wall_time(start + 60.0))
    store(Event(t0 + 20.0, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, "pain"))


def test_a_lock_held_at_open_is_retried_and_nothing_queued_meanwhile_is_lost(tmp_path):
    open_store(tmp_path).close()  # the database exists
    other = _hold_lock(tmp_path)
    store = open_store(tmp_path, busy_timeout_s=0.05)
    try:
        assert store.healthy and store.health()["state"] == "retrying"  # not given up for the run
        health = store.health()
        assert "locked" in health["why"] and health["since_wall"] is not None
        _walk(store, 110.0)
        time.sleep(1.5)  # well past the busy timeout: still retrying, still keeping everything
        assert store.health()["state"] == "retrying" and store.health()["queued"] >= 8
        text = status_mod.status_line({"sensor_ok": True, "walking": True, "walk_s": 60, "cap_s": 600, "lean_deg": 2,
                                       "store": store.health()})
        assert "history store retrying since" in text and "locked" in text
        other.execute("COMMIT")
        assert store.flush(30.0)
        assert store.health()["state"] == "ok" and store.health()["why"] is None
    finally:
        other.close()
        store.close()
    [s] = load_sessions(tmp_path)
    assert s.walk_s == pytest.approx(120.0) and s.steps == 120 and s.pain_reports == 1
    assert rows(tmp_path, "SELECT count(*) FROM bouts") == [(3,)]


def test_items_are_dated_by_the_clock_of_the_tick_that_made_them_however_late_the_writer_gets_to_them(tmp_path):
    """NTP steps a synchronized clock by an hour while another program holds the history's lock: the walk
    made before the step is dated as the clock said at its ticks, not as it says when the writer applies it."""
    open_store(tmp_path).close()  # the database exists
    host = {"mono_s": 100.0, "offset_s": WALL0 - 100.0}
    clock = WallClock(wall=lambda: host["mono_s"] + host["offset_s"], monotonic=lambda: host["mono_s"],
                      boot_id="boot-under-test", sync_flag=lambda: True)
    other = _hold_lock(tmp_path)
    store = open_store(tmp_path, busy_timeout_s=0.05, clock=clock)  # loop time = host monotonic here
    try:
        assert store.health()["state"] == "retrying"  # nothing is applied until the lock is free
        host["mono_s"] = 110.0
        store(Event(110.0, EventKind.WALK_STARTED))
        store.progress(snapshot(110.0, 0.0, 0))
        host["mono_s"] = 170.0
        store(Event(170.0, EventKind.WALK_ENDED, why="bout", bout=Bout(110.0, 170.0, 60, 100.0, 0.03)))
        host["offset_s"] += 3600.0  # the step, before the writer has applied any of it
        host["mono_s"] = 180.0
        store.progress(snapshot(180.0, 60.0, 60))
        other.execute("COMMIT")
        assert store.flush(30.0)
    finally:
        other.close()
        store.close()
    [session] = load_sessions(tmp_path)
    assert session.started.timestamp() == pytest.approx(WALL0 + 10.0, abs=0.01)
    [bout] = read_bouts(sqlite3.connect(tmp_path / DB_NAME))
    assert (bout.started.timestamp(), bout.ended.timestamp()) == (pytest.approx(WALL0 + 10.0, abs=0.01),
                                                                  pytest.approx(WALL0 + 70.0, abs=0.01))
    assert session.ended is not None and session.ended.timestamp() == pytest.approx(WALL0 + 80.0 + 3600.0, abs=0.01)


def test_a_lock_taken_mid_walk_rolls_back_retries_and_keeps_every_event(tmp_path):
    store = open_store(tmp_path, busy_timeout_s=0.05, commit_every_s=0.05)
    other = None
    try:
        _walk(store, 110.0, bouts=2)
        store(Event(900.0, EventKind.SESSION_ENDED))
        assert store.flush()
        other = _hold_lock(tmp_path)
        _walk(store, 2000.0, bouts=4)  # a second session's worth, written while the lock is held
        _wait(lambda: store.health()["state"] == "retrying")
        store(Event(2900.0, EventKind.SESSION_ENDED))
        other.execute("COMMIT")
        assert store.flush(30.0) and store.health()["state"] == "ok"
    finally:
        if other is not None:
            other.close()
        store.close()
    sessions = load_sessions(tmp_path)
    assert [s.walk_s for s in sessions] == [pytest.approx(80.0), pytest.approx(160.0)]
    assert [s.pain_reports for s in sessions] == [1, 1]
    assert rows(tmp_path, "SELECT count(*) FROM bouts") == [(6,)]
    assert rows(tmp_path, "SELECT count(*) FROM pain_reports") == [(2,)]
    assert rows(tmp_path, "SELECT count(*) FROM cues WHERE kind = 'pain_ack'") == [(2,)]
    assert sessions[1].closed_by == "session_end"


def test_events_past_the_queue_limit_are_counted_and_reported(tmp_path, monkeypatch, caplog):
    import walkcoach.device.shell.store as store_mod

    open_store(tmp_path).close()
    other = _hold_lock(tmp_path)
    monkeypatch.setattr(store_mod, "MAX_QUEUED", 50)
    store = open_store(tmp_path, busy_timeout_s=0.05)
    try:
        with caplog.at_level(logging.ERROR, logger="walkcoach.store"):
            for k in range(80):
                store(Event(100.0 + k, EventKind.LEAN_STARTED))
        assert store.health()["dropped"] == 30
        assert sum("further events are counted, not stored" in r.message for r in caplog.records) == 1
        assert "30 event(s) not stored" in status_mod.format_status(_status_with(store.health()))
        assert "30 event(s) not stored" in status_mod.status_line(dict(_status_with(store.health()), sensor_ok=True,
                                                                           lean_deg=None))
    finally:
        other.execute("COMMIT")
        other.close()
        store.close()


def _status_with(store_health: dict) -> dict:
    return {"state": "running", "pid": 1, "backend": "sim", "walk_s": 0, "cap_s": 600, "walking": False, "steps": 0,
            "store": store_health}


def test_a_store_still_locked_at_shutdown_says_what_it_could_not_store(tmp_path, caplog):
    open_store(tmp_path).close()
    other = _hold_lock(tmp_path)
    store = open_store(tmp_path, busy_timeout_s=0.05)
    _walk(store, 110.0, bouts=1)
    with caplog.at_level(logging.ERROR, logger="walkcoach.store"):
        store.close(timeout_s=1.0)
    other.close()
    assert any("still locked at shutdown" in r.message and "not stored" in r.message for r in caplog.records)
