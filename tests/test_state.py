"""The service's files: the session carried over a restart, the calibrate request, symlinks, modes.

Real service processes on the simulated belt (as in test_service.py), plus the pieces in process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from walkcoach.device.core.coach import Coach
from walkcoach.device.core.events import Cue, EventKind
from walkcoach.device.core.settings import CoachSettings
from walkcoach.device.shell import status as status_mod
from walkcoach.device.shell.store import load_sessions
from walkcoach.hal.state_files import UnsafeFile, exclusive_lock, read_regular, write_atomic

from . import test_service
from .test_service import assert_clean_stop, wait_for

service = test_service.service  # the fixture, shared with test_service


def _wait_new(svc) -> dict:
    """The first status of this process (a killed one leaves its last status behind)."""
    return svc.wait_status(lambda s: s["pid"] == svc.proc.pid and s["state"] == "running" and s["samples"] > 0,
                           15.0, "the new service's first status")


def _saved(svc) -> dict | None:
    try:
        return json.loads((svc.state / "session.json").read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_a_restart_carries_the_session_walk_time_cap_and_upright_over(service, how):
    svc = service()
    svc.wait_status(lambda s: s["walking"] and s["walk_s"] > 3.0 and s["calibration"]["captured"], 40.0, "a walk")
    saved = wait_for(lambda: (lambda d: d if d and d["coach"]["walk_s"] > 3.0 else None)(_saved(svc)), 10.0, "a saved session")
    assert saved["coach"]["session_started"] and saved["coach"]["upright"] is not None
    assert saved["store_session_id"] is not None
    assert oct((svc.state / "session.json").stat().st_mode & 0o777) == "0o600"
    if how == "kill -9":
        svc.signal(signal.SIGKILL)
        svc.proc.wait(10)
    else:
        assert_clean_stop(svc)
        # and as a pain report would have left it (the button cannot be pressed from here): 5 min off
        # this session's cap, one report counted
        saved = _saved(svc)  # SIGTERM saves once more at exit
        saved["coach"].update(cap_s=saved["coach"]["planned_cap_s"] - 300.0, pain_reports=1)
        (svc.state / "session.json").write_text(json.dumps(saved))
    saved = _saved(svc)

    again = service(None)
    first = _wait_new(again)
    assert first["restored"] is not None, again.log
    assert first["session_started"]
    assert first["walk_s"] >= saved["coach"]["walk_s"] - 0.1  # nothing walked before the restart is lost
    assert first["cap_s"] == saved["coach"]["cap_s"]
    assert first["calibration"]["captured"] and first["calibration"]["how"] == "carried over from before the restart"
    assert first["restored"]["judged_by"] == "monotonic"
    assert first["pain_reports"] == saved["coach"]["pain_reports"]
    assert "carried the session over a restart" in again.log
    later = again.wait_status(lambda s: s["walk_s"] > first["walk_s"] + 1.0, 20.0, "walk time to grow on")
    assert later["cap_s"] == first["cap_s"]  # the plan's cap does not undo a pain shortening mid-session
    assert_clean_stop(again)
    sessions = load_sessions(svc.state)
    assert len(sessions) == 1, sessions  # one session, not one per run
    assert sessions[0].walk_s >= later["walk_s"] - 1.0 and sessions[0].closed_by == "shutdown"


def test_a_saved_session_older_than_the_session_end_pause_is_not_carried_over(service):
    svc = service("[gait]\nsession_end_pause_s = 60.0\n")
    svc.wait_status(lambda s: s["walking"] and s["walk_s"] > 2.0, 40.0, "a walk")
    assert_clean_stop(svc)
    saved = _saved(svc)
    saved["monotonic_s"] -= 61.0  # saved 61 s ago on this boot's monotonic clock
    (svc.state / "session.json").write_text(json.dumps(saved))
    again = service(None)
    first = _wait_new(again)
    assert first["restored"] is None and first["walk_s"] < saved["coach"]["walk_s"]
    assert "more than the 60 s session-end pause" in again.log
    assert_clean_stop(again)
    [old_session] = load_sessions(svc.state)
    assert old_session.closed_by == "shutdown"  # not re-opened: the next walk is a new session


def test_the_coach_carries_a_pain_shortened_cap_and_the_second_pain_report_over():
    settings = CoachSettings()
    coach = Coach(settings, rate_hz=100.0, cap_s=1200.0)
    coach.session.started = True
    coach.session.completed_walk_s = 300.0
    events = coach.report_pain(400.0)
    assert [e.kind for e in events] == [EventKind.PAIN_REPORTED]
    assert coach.session.cap_s == 900.0  # 20 min less 5
    state = json.loads(json.dumps(coach.saved_state(410.0)))  # through JSON, as on disk

    restarted = Coach(settings, rate_hz=100.0, cap_s=1200.0)
    restarted.restore_state(state, 5.0, 20.0)  # a new process whose clock starts again, 20 s later
    snap = restarted.snapshot(5.0)
    assert snap.cap_s == 900.0 and snap.walk_s == 300.0 and snap.pain_reports == 1 and snap.session_started
    second = restarted.report_pain(6.0)  # the same session: the second report is "stop for today"
    assert [e.cue for e in second] == [Cue.PAIN_ACK, Cue.STOP]
    with pytest.raises(ValueError):
        Coach(settings, rate_hz=100.0, cap_s=600.0).restore_state(dict(state, walk_s=float("nan")), 0.0, 0.0)


def test_a_calibrate_request_that_is_a_directory_is_logged_and_removed_not_fatal(service, capsys):
    svc = service()
    svc.wait_running()
    request = svc.runtime / status_mod.CALIBRATE_REQUEST_NAME
    request.mkdir()
    wait_for(lambda: not request.exists(), 5.0, "the directory to be removed")
    full = svc.tmp / "full"
    full.mkdir()
    (full / "x").write_text("")
    full.rename(request)  # a full one cannot be removed: ignored, logged once
    before = svc.wait_running()
    svc.wait_status(lambda s: s["samples"] > before["samples"] + 200, 10.0, "coaching on")
    assert svc.log.count("is a directory, not a calibrate request") == 2, svc.log
    assert svc.status()["calibration"]["requested_t_s"] is None
    (request / "x").unlink()
    wait_for(lambda: not request.exists(), 5.0, "the now empty directory to be removed")
    assert status_mod.run_calibrate(svc.runtime, out=sys.stdout, err=sys.stderr, wait_s=5.0) == 0  # a real request works
    assert "Traceback" not in svc.log
    assert_clean_stop(svc)


def test_planted_symlinks_in_the_runtime_directory_are_refused(service, tmp_path, capsys):
    svc = service()
    svc.wait_running()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    request = svc.runtime / status_mod.CALIBRATE_REQUEST_NAME
    os.symlink(victim, request)
    assert status_mod.run_calibrate(svc.runtime, out=sys.stdout, err=sys.stderr) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing" in err and "symbolic link" in err
    assert victim.read_text() == "precious\n"
    wait_for(lambda: not os.path.lexists(request), 5.0, "the service to remove the planted link")
    # the status thread logs after the unlink: under load the line can come a moment after the link is gone
    wait_for(lambda: "is a symbolic link, not a calibrate request" in svc.log, 5.0, "the log line")
    assert victim.read_text() == "precious\n"
    # status.json replaced by a link (renamed over it: an unlink then a symlink could meet the service's write between)
    status_file = svc.runtime / status_mod.STATUS_FILE_NAME
    planted = svc.runtime / "planted.link"
    os.symlink(victim, planted)
    os.replace(planted, status_file)
    wait_for(lambda: not status_file.is_symlink(), 5.0, "the status file to be a file again")
    assert victim.read_text() == "precious\n"
    assert oct(status_file.stat().st_mode & 0o777) == "0o640"
    assert_clean_stop(svc)


def test_status_json_is_readable_by_the_group_only_and_a_link_is_not_read(tmp_path, capsys):
    status_mod.write_status(tmp_path, {"state": "running", "pid": os.getpid(), "updated_wall": time.time()})
    assert oct((tmp_path / "status.json").stat().st_mode & 0o777) == "0o640"
    secret = tmp_path / "secret.json"
    secret.write_text('{"state": "running", "pid": 1, "updated_wall": 0}')
    os.unlink(tmp_path / "status.json")
    os.symlink(secret, tmp_path / "status.json")
    assert status_mod.read_status(tmp_path) is None
    assert status_mod.run_status(tmp_path, out=sys.stdout, err=sys.stderr) == status_mod.UNKNOWN_EXIT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err


def test_state_files_refuse_links_and_non_files_and_never_widen_the_mode(tmp_path):
    target = tmp_path / "t"
    target.write_text("x")
    os.symlink(target, tmp_path / "link")
    with pytest.raises(UnsafeFile, match="symbolic link"):
        read_regular(tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafeFile, match="not a regular file"):
        read_regular(tmp_path / "fifo")  # never blocks on a planted FIFO
    os.symlink(target, tmp_path / f".out.{os.getpid()}.tmp")  # a planted temp name is removed, not followed
    write_atomic(tmp_path / "out", b"new", mode=0o600)
    assert (tmp_path / "out").read_bytes() == b"new" and target.read_text() == "x"
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(UnsafeFile):
        with exclusive_lock(tmp_path / "link"):
            pass


def test_a_locked_history_shows_in_status_and_systemds_status_line_and_loses_nothing(service, capsys):
    import sqlite3

    svc = service()
    svc.wait_status(lambda s: s["walking"] and s["walk_s"] > 2.0 and s["store"]["state"] == "ok", 40.0, "a walk")
    other = sqlite3.connect(svc.state / "history.sqlite3", isolation_level=None, timeout=10.0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the lock longer than the store's 5 s busy timeout
        locked = svc.wait_status(lambda s: s["store"]["state"] == "retrying", 30.0, "the store to say it is retrying")
        assert "locked" in locked["store"]["why"] and locked["store"]["since_wall"] is not None
        assert status_mod.run_status(svc.runtime, out=sys.stdout, err=sys.stderr) == 0
        assert "history:     STORE RETRYING SINCE" in capsys.readouterr().out
        wait_for(lambda: any(f.startswith("STATUS=") and "history store retrying since" in f for f in svc.notify.fields()),
                 5.0, "systemd's status line to say so")  # sent right after the file is written
        walked_while_locked = locked["walk_s"]
    finally:
        other.execute("COMMIT")
        other.close()
    svc.wait_status(lambda s: s["store"]["state"] == "ok", 30.0, "the store to write again")
    final = assert_clean_stop(svc)
    [session] = load_sessions(svc.state)
    assert session.walk_s >= walked_while_locked and session.walk_s >= final["walk_s"] - 1.5


def test_history_refuses_a_planted_database_link(tmp_path):
    from walkcoach.device.shell.store import HistoryUnavailable, open_for_reading

    target = tmp_path / "elsewhere.sqlite3"
    target.write_bytes(b"")
    (tmp_path / "history.sqlite3").symlink_to(target)
    with pytest.raises(HistoryUnavailable, match="symbolic link"):
        open_for_reading(tmp_path)
