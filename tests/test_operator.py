"""The command line as an operator meets it: a broken config file on disk, restart-only keys,
values starting with "-", a missing config, exit statuses, closed pipes, the directories."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from walkcoach.device.cli import cli
from walkcoach.device.core.summary import format_clock
from walkcoach.device.shell.status import StatusTracker, write_status

ROOT = Path(__file__).resolve().parents[1]
BAD = "[lean]\nthreshold_deg = 99\nhold_s = \"long\"\n"


CLEARED_ENV = ("WALKCOACH_CONFIG", "WALKCOACH_STATE_DIR", "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "JOURNAL_STREAM")


def run_cli(*argv, env=None):
    """`walkcoach ARGS` in this process (cli.main, as the entry point calls it): (exit status, stdout, stderr)."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        for name in CLEARED_ENV:
            os.environ.pop(name, None)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(argv))
            except SystemExit as exc:  # --version, --help
                code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()


def fresh_status(runtime_dir: Path) -> dict:
    """A status file as a running service writes it (this test process stands in for its PID)."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    tracker = StatusTracker(backend="sim", config_path="/etc/walkcoach/config.toml")
    tracker.state = "running"
    status = tracker.snapshot_dict(12.0)
    write_status(runtime_dir, status)
    return status


def test_status_with_a_broken_config_on_disk_shows_the_service_and_the_files_problems(tmp_path, capsys):
    run_dir = tmp_path / "run"
    fresh_status(run_dir)
    config = tmp_path / "config.toml"
    config.write_text(f'[service]\nruntime_dir = "{run_dir}"\n' + BAD)
    assert cli.main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("walkcoach running (PID ")
    assert "config:      /etc/walkcoach/config.toml" in out  # the one the service runs on
    assert "config file: 2 problem(s) on disk (the running service keeps the config it loaded)" in out
    assert f"{config}:4: lean.threshold_deg = 99: out of range" in out
    assert cli.main(["--config", str(config), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "running" and len(data["config_file_problems"]) == 2


def test_history_and_calibrate_still_work_with_a_broken_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nstate_dir = "{tmp_path / "state"}"\n[service]\nruntime_dir = "{tmp_path / "run"}"\n' + BAD)
    code, out, err = run_cli("--config", str(config), "history")
    assert code == 0 and out.startswith("no sessions in the last 14 day(s)") and str(tmp_path / "state") in out
    assert "the config file has 2 problem(s)" in err and "Traceback" not in err
    code, out, err = run_cli("--config", str(config), "calibrate")
    assert code == 1 and "walkcoach is not running: nothing captured" in err and "2 problem(s)" in err
    code, out, err = run_cli("--config", str(config), "sim", "--scenario", "standing")  # not an operator's read: refused
    assert code == 2 and "out of range" in err


def _stand_in_service(tmp_path: Path, run_dir: Path) -> subprocess.Popen:
    script = tmp_path / "walkcoach"
    script.write_text("import signal, time\nsignal.signal(signal.SIGHUP, lambda *a: None)\nprint('up', flush=True)\ntime.sleep(30)\n")
    process = subprocess.Popen([sys.executable, str(script), "run", "--service"], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "up\n"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "walkcoach.pid").write_text(f"{process.pid}\n")
    return process


def test_config_set_says_when_a_restart_only_key_applies(tmp_path):
    run_dir = tmp_path / "run"
    config = tmp_path / "config.toml"
    config.write_text(f'[service]\nruntime_dir = "{run_dir}"\n')
    process = _stand_in_service(tmp_path, run_dir)
    try:
        code, out, _ = run_cli("--config", str(config), "config", "set", "loop.rate_hz", "50")
        assert code == 0 and "loop.rate_hz is read only at start: it applies at the next restart" in out
        assert "applies now" not in out
        code, out, _ = run_cli("--config", str(config), "config", "set", "pins.led", "GPIO5")
        assert "pins.led is read only at start" in out
        code, out, _ = run_cli("--config", str(config), "config", "set", "lean.threshold_deg", "18")
        assert code == 0 and out.splitlines()[-1].endswith("to reload: the change applies now")
        code, out, _ = run_cli("--config", str(config), "--runtime-dir", str(tmp_path / "other"), "config", "set",
                               "lean.threshold_deg", "19")
        assert code == 0 and out.splitlines()[-1] == "walkcoach is not running: the change applies at next start"
    finally:
        process.kill()
        process.wait()


def test_config_set_takes_values_that_start_with_a_dash(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    code, out, err = run_cli("--config", str(config), "config", "set", "mount.forward", "-x")
    assert (code, err) == (0, "") and out.startswith('mount.forward = "-x" written')
    code, out, err = run_cli("--config", str(config), "config", "set", "mount.up", "--", "+z")  # the old way still works
    assert code == 0
    code, out, _ = run_cli("--config", str(config), "config", "get", "mount.forward")
    assert out.strip() == "-x"
    code, _, err = run_cli("--config", str(config), "config", "set", "mount.forward", "-x", "-y")
    assert code == 2 and "takes one VALUE" in err


def test_config_validate_of_a_missing_file_says_the_defaults_apply(tmp_path):
    missing = tmp_path / "nowhere.toml"
    if not Path("/etc/walkcoach/config.toml").exists():  # the installed path, which may be missing
        code, out, err = run_cli("config", "validate")
        assert (code, err) == (0, "")
        assert out.strip() == "/etc/walkcoach/config.toml: no such file; the defaults apply (`walkcoach config show` lists them)"
    code, out, err = run_cli("config", "validate", str(missing))
    assert code == 1 and err.strip() == f"{missing}: no such file" and "ok" not in out


def test_version_and_verbose_after_the_subcommand(tmp_path):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("walkcoach 0.")
    code, out, _ = run_cli("plan", "-v", "--state-dir", str(tmp_path))
    assert code == 0 and out.startswith("today's cap: ")
    code, out, _ = run_cli("--state-dir", str(tmp_path / "elsewhere"), "history", "-v")
    assert code == 0 and str(tmp_path / "elsewhere") in out


def test_a_closed_pipe_after_the_last_write_ends_quietly_too(tmp_path):
    """The output is still in our buffer when the reader goes: the final flush must not complain."""
    script = ("import os, sys\nfrom walkcoach.device.cli import cli\nr, w = os.pipe()\nos.dup2(w, 1)\nos.close(r)\nos.close(w)\n"
              "sys.exit(cli.main(['--state-dir', sys.argv[1], 'plan']))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a buffered stdout, as at a user's shell
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (cli.EX_CLOSED_PIPE, "")


def test_a_closed_pipe_ends_quietly_with_141(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "walkcoach", "sim", "--list"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader has gone before a word was written (`| head -0`)
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == cli.EX_CLOSED_PIPE
    assert "Traceback" not in err and err == ""


def test_the_service_outside_systemd_does_not_create_system_directories(tmp_path):
    if Path("/run/walkcoach").exists():
        pytest.skip("a walkcoach runtime directory exists on this machine")
    code, _, err = run_cli("run", "--backend", "sim", "--service", "--scenario", "standing", "--state-dir", str(tmp_path))
    assert code == 2 and "/run/walkcoach does not exist: systemd creates it" in err and "--runtime-dir" in err
    assert not Path("/run/walkcoach").exists()


def test_state_and_runtime_directories_from_systemds_environment(tmp_path):
    state, run_dir = tmp_path / "state", tmp_path / "run"
    state.mkdir()
    fresh_status(run_dir)
    code, out, _ = run_cli("history", env={"STATE_DIRECTORY": str(state)})
    assert code == 0 and str(state / "history.sqlite3") in out
    code, out, _ = run_cli("status", env={"RUNTIME_DIRECTORY": str(run_dir)})
    assert code == 0 and out.startswith("walkcoach running")
    code, _, err = run_cli("status", "--runtime-dir", str(tmp_path / "none"), env={"RUNTIME_DIRECTORY": str(run_dir)})
    assert code == 3 and err.strip() == "walkcoach is not running"  # the flag wins


@pytest.mark.parametrize("t_s, shown", [(0.0, "  0:00.0"), (59.94, "  0:59.9"), (59.96, "  1:00.0"), (119.99, "  2:00.0"),
                                        (61.25, "  1:01.2"), (-3.0, "  0:00.0")])
def test_format_clock_never_shows_60_seconds(t_s, shown):
    assert format_clock(t_s) == shown


# -- a non-root operator reads the service's history -------------------------------------------
OPERATOR_GID = 100  # the group "users" stands in for the group walkcoach
as_operator_possible = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to act as another user")


def _as_user(argv, *, gid: int | None):
    """Run `python -m walkcoach ARGV` as nobody, with ``gid`` as its only group (None: nobody's own)."""
    group = [f"--regid={gid}"] if gid is not None else ["--regid=65534"]
    done = subprocess.run(["setpriv", "--reuid=65534", *group, "--clear-groups", sys.executable, "-m", "walkcoach", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"})
    return done.returncode, done.stdout, done.stderr


@as_operator_possible
def test_an_operator_in_the_group_reads_history_while_the_service_writes_and_after(tmp_path):
    from walkcoach.device.core.events import Bout, Event, EventKind
    from walkcoach.device.shell.store import Store

    base = Path(tempfile.mkdtemp(prefix="wc-op-"))  # pytest's tmp_path is private to root
    try:
        os.chmod(base, 0o755)
        state = base / "state"
        state.mkdir()
        os.chown(state, 0, OPERATOR_GID)
        os.chmod(state, 0o2750)  # like StateDirectory=, with the files taking the group
        old_umask = os.umask(0o027)  # the unit's UMask
        try:
            store = Store.open(state, mono_at_open=0.0, wall_at_open=time.time() - 600, planned_cap_s=600.0)
            store(Event(5.0, EventKind.WALK_STARTED))
            store(Event(300.0, EventKind.WALK_ENDED, bout=Bout(5.0, 300.0, 520, 106.0, 0.03)))
            assert store.flush()
            assert (state / "history.sqlite3-wal").exists()
            code, out, err = _as_user(["history", "--state-dir", str(state), "--json"], gid=OPERATOR_GID)
            assert (code, err) == (0, ""), err
            [row] = json.loads(out)
            assert row["steps"] == 520 and row["closed_by"] is None  # the walk in progress
            store.close()
        finally:
            os.umask(old_umask)
        assert not (state / "history.sqlite3-wal").exists()  # the service stopped: checkpointed away
        for command in (["history", "--json"], ["plan"]):
            code, out, err = _as_user([*command, "--state-dir", str(state)], gid=OPERATOR_GID)
            assert (code, err) == (0, ""), err
        code, out, err = _as_user(["report", "--state-dir", str(state), "--out", str(base / "nope.html")], gid=OPERATOR_GID)
        assert code == 2 and "cannot write" in err and "Traceback" not in err  # reading worked; base is root's
        assert sorted(p.name for p in state.iterdir()) == ["history.sqlite3"]  # the reader created nothing

        code, out, err = _as_user(["history", "--state-dir", str(state)], gid=None)  # not in the group
        assert code == 2 and "permission denied" in err and "usermod -aG walkcoach" in err and "Traceback" not in err
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- recording from the running service -----------------------------------------------------------
def test_record_asks_the_running_service_and_coaching_goes_on(tmp_path):
    from tests.test_service import ServiceProcess
    from walkcoach.device.offline.replay import read_recording

    svc = ServiceProcess(tmp_path)
    try:
        before = svc.wait_running()
        out_file = tmp_path / "session.csv"
        code, out, err = run_cli("--config", str(svc.config), "record", str(out_file), "--seconds", "2")
        assert code == 0, err
        assert out.startswith(f"wrote {out_file}: ") and "recording 2 s from the running service" in err
        recording = read_recording(out_file)
        assert recording.kind == "walkcoach-v1" and recording.meta["backend"] == "sim" and float(recording.meta["cap_s"]) == 600.0
        assert 1.5 <= recording.duration_s <= 3.5  # started and stopped on the service's once-a-second poll
        after = svc.status()
        assert after["state"] == "running" and after["samples"] > before["samples"]
        assert sorted(p.name for p in svc.runtime.iterdir() if p.name.startswith("record")) == []  # nothing left behind
        code, _, err = run_cli("--config", str(svc.config), "record", str(tmp_path / "x.csv"), "--seconds", "0")
        assert code == 2 and "--seconds must be more than 0" in err
    finally:
        svc.close()
    code, _, err = run_cli("--config", str(svc.config), "record", str(tmp_path / "y.csv"), "--seconds", "1")
    assert code == 1 and "walkcoach is not running: nothing recorded" in err
