"""`walkcoach run --service` as a real process on the simulated belt: signals, reload, status, calibrate.

Each test starts ``walkcoach run --backend sim --service`` (as ``python -m walkcoach``) at real-time speed
with its runtime and state directories in tmp_path, talks to it only the way systemd and the CLI do (signals, the status file,
the calibrate request file, an sd_notify socket), and polls with timeouts.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from walkcoach.device.config.config import load_config
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell import status as status_mod
from walkcoach.device.shell.loop import RESET_BACKOFF_MAX_S
from walkcoach.device.shell.sdnotify import Notifier
from walkcoach.device.shell.service import JournalFormatter, Service, changed_keys, needs_restart
from walkcoach.device.shell.store import load_sessions, open_for_reading, read_cues

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 15.0


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class NotifySocket:
    """A stand-in for systemd's $NOTIFY_SOCKET: collects the datagrams."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="wcn")  # short: AF_UNIX paths are limited to ~107 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def fields(self) -> list[str]:
        return [line for message in self.drain() for line in message.split("\n")]

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class ServiceProcess:
    """``config_text`` None: a restart on the directories and config file a previous one used."""

    def __init__(self, tmp_path: Path, config_text: str | None = "", *, scenario: str = "upright-walk") -> None:
        self.tmp = tmp_path
        self.runtime = tmp_path / "run"  # not created: the service makes it
        self.state = tmp_path / "state"
        self.state.mkdir(exist_ok=config_text is None)
        self.config = tmp_path / "config.toml"
        if config_text is not None:
            self.write_config(config_text)
        self.log_path = tmp_path / f"service.{time.monotonic_ns()}.log"
        self.notify = NotifySocket()
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "WATCHDOG_PID", "WALKCOACH_CONFIG")}
        env["NOTIFY_SOCKET"] = self.notify.path
        env["JOURNAL_STREAM"] = "8:12345"  # as under systemd: the log lines carry journald's <N> priorities
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "walkcoach", "--config", str(self.config), "run", "--backend", "sim",
             "--service", "--speed", "realtime", "--scenario", scenario],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def write_config(self, extra: str) -> None:
        text = f'[store]\nstate_dir = "{self.state}"\n\n[service]\nruntime_dir = "{self.runtime}"\n\n{extra}'
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def status(self) -> dict | None:
        return status_mod.read_status(self.runtime)

    def wait_status(self, predicate, timeout_s: float, what: str) -> dict:
        def check():
            self.notify.drain()  # like systemd: a full notify socket would block the service's sendto
            self.assert_alive()
            s = self.status()
            return s if s is not None and predicate(s) else None

        try:
            return wait_for(check, timeout_s, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast status: {self.status()}\nlog:\n{self.log}") from None

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log}")

    def wait_running(self) -> dict:
        return self.wait_status(lambda s: s["state"] == "running" and s["samples"] > 0, START_TIMEOUT_S, "the first status")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout_s: float = 5.0) -> int:
        self.signal(signal.SIGTERM)
        return wait_for(lambda: self.notify.drain() is not None and self.proc.poll() is not None, timeout_s,
                        "the service to exit") and self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()
        self.notify.close()


@pytest.fixture
def service(tmp_path):
    started = []

    def start(config_text: str = "", **kwargs) -> ServiceProcess:
        proc = ServiceProcess(tmp_path, config_text, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()


def assert_clean_stop(svc: ServiceProcess) -> dict:
    """SIGTERM: exit 0 in a few seconds, pid file gone, final status says stopped with every output off."""
    assert svc.stop(timeout_s=5.0) == 0, svc.log
    assert not (svc.runtime / "walkcoach.pid").exists()
    final = svc.status()
    assert final["state"] == "stopped"
    assert final["outputs"] and set(final["outputs"].values()) == {0}, final["outputs"]
    assert "outputs off" in svc.log
    assert "STOPPING=1" in svc.notify.fields()
    assert status_mod.running_status(svc.runtime) is None
    assert not status_mod.request_calibration(svc.runtime)
    return final


# -- real processes ----------------------------------------------------------------------------


def test_sighup_with_a_good_config_applies_it_and_keeps_the_walk(service):
    svc = service()
    svc.wait_running()
    assert "READY=1" in svc.notify.fields()
    before = svc.wait_status(lambda s: s["walking"] and s["walk_s"] > 0.5, 15.0, "walking to start")
    svc.write_config('[lean]\nthreshold_deg = 12.0\n\n[pins]\nled = "GPIO5"\n')
    svc.signal(signal.SIGHUP)
    after = svc.wait_status(lambda s: s["last_reload"] is not None, 5.0, "the reload")
    assert after["last_reload"]["ok"] is True
    assert after["last_reload"]["changed"] == ["lean.threshold_deg", "pins.led"]
    assert after["restart_needed"] == ["pins.led"]
    assert after["reload_errors"] == []
    assert after["config_path"] == str(svc.config)
    assert after["walk_s"] >= before["walk_s"]  # the session and walk time are kept, not reset
    svc.wait_status(lambda s: s["walk_s"] > after["walk_s"], 5.0, "walk time to keep growing")
    assert "config reloaded" in svc.log and "lean.threshold_deg = 12.0" in svc.log
    assert '<4>walkcoach.service: needs a restart: pins.led = "GPIO5"' in svc.log
    fields = svc.notify.fields()
    reloading = fields.index("RELOADING=1")
    assert "READY=1" in fields[reloading:]
    assert "WATCHDOG=1" in fields
    assert any(f.startswith("STATUS=walking ") and "/10 min, lean " in f for f in fields)
    assert_clean_stop(svc)


def test_sighup_with_a_bad_config_keeps_running_on_the_old_one(service):
    svc = service("[lean]\nthreshold_deg = 20.0\n")
    first = svc.wait_running()
    svc.write_config("[lean]\nthreshold_deg = 99\nhold_s = \"long\"\n")
    svc.signal(signal.SIGHUP)
    bad = svc.wait_status(lambda s: s["reload_errors"], 5.0, "the reload errors in the status")
    assert bad["last_reload"]["ok"] is False
    assert len(bad["reload_errors"]) == 2
    assert all(line.startswith(f"{svc.config}:") for line in bad["reload_errors"])
    assert any("lean.threshold_deg = 99" in line for line in bad["reload_errors"])
    assert "<3>walkcoach.service: config reload failed" in svc.log
    # still coaching, still reporting
    svc.wait_status(lambda s: s["samples"] > bad["samples"] and s["updated_wall"] > bad["updated_wall"], 5.0, "more samples")
    assert svc.proc.poll() is None
    text = status_mod.format_status(svc.status())
    assert "FAILED, previous config kept" in text and "lean.threshold_deg = 99" in text
    # fixing the file clears the errors
    svc.write_config("[lean]\nthreshold_deg = 18.0\n")
    svc.signal(signal.SIGHUP)
    fixed = svc.wait_status(lambda s: not s["reload_errors"], 5.0, "the errors to clear")
    assert fixed["last_reload"] == {"ok": True, "wall": fixed["last_reload"]["wall"], "changed": ["lean.threshold_deg"]}
    assert fixed["samples"] >= first["samples"]
    assert_clean_stop(svc)


def test_calibrate_request_is_consumed_by_the_running_service(service, capsys):
    svc = service()
    svc.wait_running()
    assert status_mod.run_status(svc.runtime, out=sys.stdout, err=sys.stderr) == 0
    assert "walkcoach running (PID" in capsys.readouterr().out
    assert status_mod.run_calibrate(svc.runtime, out=sys.stdout, err=sys.stderr, wait_s=5.0) == 0
    assert "stand upright and still" in capsys.readouterr().out
    assert not (svc.runtime / status_mod.CALIBRATE_REQUEST_NAME).exists()
    after = svc.wait_status(lambda s: s["calibration"]["requested_t_s"] is not None, 5.0, "the request in the status")
    assert after["calibration"]["requested_t_s"] > 0
    assert "calibrate requested" in svc.log
    assert status_mod.run_status(svc.runtime, as_json=True, out=sys.stdout, err=sys.stderr) == 0
    assert json.loads(capsys.readouterr().out)["pid"] == svc.proc.pid
    assert_clean_stop(svc)
    assert status_mod.run_status(svc.runtime, out=sys.stdout, err=sys.stderr) == status_mod.NOT_RUNNING_EXIT
    assert "walkcoach is not running" in capsys.readouterr().err


def test_a_second_service_is_refused_while_one_owns_the_sensor(service):
    svc = service()
    svc.wait_running()
    second = subprocess.run(
        [sys.executable, "-m", "walkcoach", "--config", str(svc.config), "run", "--backend", "sim", "--service",
         "--scenario", "standing", "--speed", "max"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert second.returncode == 1
    assert f"already runs as PID {svc.proc.pid}" in second.stderr
    svc.assert_alive()
    assert (svc.runtime / "walkcoach.pid").read_text().strip() == str(svc.proc.pid)
    assert_clean_stop(svc)


def test_sigterm_during_start_up_exits_cleanly(service):
    svc = service()
    # the handlers are installed before the pid file is written, and both before the chip set-up
    wait_for(lambda: (svc.runtime / "walkcoach.pid").exists() or svc.proc.poll() is not None, START_TIMEOUT_S, "the pid file")
    assert (svc.runtime / "walkcoach.pid").read_text().strip() == str(svc.proc.pid)
    assert svc.stop(timeout_s=5.0) == 0, svc.log
    assert not (svc.runtime / "walkcoach.pid").exists()
    assert "Traceback" not in svc.log


def test_end_of_a_simulated_scenario_exits_0(tmp_path):
    # "max" speed: the whole scenario runs in seconds, then the service ends by itself
    runtime = tmp_path / "run"
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nstate_dir = "{tmp_path}"\n[service]\nruntime_dir = "{runtime}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    done = subprocess.run(
        [sys.executable, "-m", "walkcoach", "--config", str(config), "run", "--backend", "sim", "--service",
         "--scenario", "standing", "--speed", "max"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "stopped (end of input); outputs off" in done.stderr
    assert status_mod.read_status(runtime)["state"] == "stopped"
    assert not (runtime / "walkcoach.pid").exists()


# -- the pieces, in process --------------------------------------------------------------------


def test_journal_formatter_prefixes_every_line_with_the_priority():
    fmt = JournalFormatter()

    def line(level, msg):
        return fmt.format(logging.LogRecord("walkcoach.x", level, __file__, 1, msg, None, None))

    assert line(logging.ERROR, "bad") == "<3>walkcoach.x: bad"
    assert line(logging.WARNING, "hmm") == "<4>walkcoach.x: hmm"
    assert line(logging.INFO, "ok") == "<6>walkcoach.x: ok"
    assert line(logging.DEBUG, "a\nb") == "<7>walkcoach.x: a\n<7>b"


def test_which_changes_need_a_restart(tmp_path):
    a = tmp_path / "a.toml"
    b = tmp_path / "b.toml"
    a.write_text("")
    b.write_text("[lean]\nthreshold_deg = 10.0\n[imu]\nfault_grace_s = 5.0\ni2c_bus = 3\n[loop]\nrate_hz = 50.0\n")
    changed = changed_keys(load_config(a), load_config(b))
    assert changed == ["lean.threshold_deg", "imu.i2c_bus", "imu.fault_grace_s", "loop.rate_hz"]
    assert [key for key in changed if needs_restart(key)] == ["imu.i2c_bus", "loop.rate_hz"]


def test_status_is_not_running_without_a_fresh_file(tmp_path, capsys):
    assert status_mod.read_status(tmp_path) is None
    assert status_mod.run_status(tmp_path, out=sys.stdout, err=sys.stderr) == 3
    assert capsys.readouterr().err.strip() == "walkcoach is not running"
    stale = {"state": "running", "pid": os.getpid(), "updated_wall": time.time() - 11, "walk_s": 0, "cap_s": 600}
    status_mod.write_status(tmp_path, stale)
    assert status_mod.read_status(tmp_path)["pid"] == os.getpid()
    assert status_mod.running_status(tmp_path) is None
    assert status_mod.running_status(tmp_path, now_wall=stale["updated_wall"] + 1) is not None
    assert oct((tmp_path / "status.json").stat().st_mode & 0o777) == "0o640"  # pain reports: the service's group only


def test_calibrate_without_a_service_writes_nothing(tmp_path, capsys):
    assert status_mod.request_calibration(tmp_path) is False
    (tmp_path / "walkcoach.pid").write_text("999999999\n")  # no such process
    assert status_mod.request_calibration(tmp_path) is False
    assert status_mod.run_calibrate(tmp_path, out=sys.stdout, err=sys.stderr) == 1
    assert "walkcoach is not running: nothing captured" in capsys.readouterr().err
    assert not (tmp_path / status_mod.CALIBRATE_REQUEST_NAME).exists()


def test_a_bad_config_at_start_coaches_with_the_last_good_copy_and_says_so(service):
    svc = service("[lean]\nthreshold_deg = 20.0\n")
    svc.wait_running()
    good_bytes = svc.config.read_bytes()
    assert_clean_stop(svc)
    copy = svc.state / "config.last-good.toml"
    assert copy.read_bytes() == good_bytes and oct(copy.stat().st_mode & 0o777) == "0o600"
    svc.write_config("[lean]\nthreshold_deg = 99\n")
    again = service(None)  # the same directories, a broken file
    first = again.wait_status(lambda s: s["pid"] == again.proc.pid and s["state"] == "running", START_TIMEOUT_S, "start")
    assert again.proc.poll() is None  # coaching, not exit 78
    assert first["config_source"] == "last_good" and first["config_path"] == str(copy)
    assert any("lean.threshold_deg = 99" in line for line in first["config_problems"])
    cued = again.wait_status(lambda s: s["last_cue"] is not None, 5.0, "the config_error cue")
    assert cued["last_cue"]["cue"] == "config_error"
    assert "cue config_error" in again.log and "is invalid: coaching with the last good copy" in again.log
    assert any(f.startswith("STATUS=") and "CONFIG INVALID" in f for f in again.notify.fields())
    text = status_mod.format_status(cued)
    assert "INVALID at start: coaching with the last good copy" in text and "lean.threshold_deg = 99" in text
    assert copy.read_bytes() == good_bytes  # a bad file never replaces the good copy
    # fixing the file and reloading brings the file back in force
    again.write_config("[lean]\nthreshold_deg = 18.0\n")
    again.signal(signal.SIGHUP)
    fixed = again.wait_status(lambda s: s["config_source"] == "file", 5.0, "the fixed config in force")
    assert fixed["config_problems"] == [] and fixed["config_path"] == str(again.config)
    assert copy.read_bytes() == again.config.read_bytes()
    assert_clean_stop(again)
    unit = (ROOT / "systemd" / "walkcoach.service").read_text()
    assert "RestartPreventExitStatus" not in unit  # nothing exits 78 any more


def test_a_bad_config_at_the_first_start_coaches_with_the_defaults(service):
    svc = service("[lean]\nthreshold_deg = 99\n")
    first = svc.wait_running()
    assert first["config_source"] == "defaults" and first["config_problems"]
    assert svc.runtime.is_dir() and (svc.state / "history.sqlite3").exists()  # the directories the bad file named
    svc.wait_status(lambda s: s["last_cue"] is not None and s["last_cue"]["cue"] == "config_error", 5.0, "the cue")
    assert "(no good copy saved yet)" in svc.log
    assert not (svc.state / "config.last-good.toml").exists()
    assert_clean_stop(svc)


# -- the watchdog, in virtual time -------------------------------------------------------------

UNIT = ROOT / "systemd" / "walkcoach.service"


def unit_watchdog_s() -> float:
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("WatchdogSec=")]
    assert len(lines) == 1
    return float(lines[0].split("=", 1)[1])


class FakeSystemd:
    """systemd's end of $NOTIFY_SOCKET for a service run in process on the simulator's virtual clock.

    Each datagram is received as soon as it is sent and stamped with the loop's clock: every
    blocking step (the chip's reset wait, stalled transfers, set-up retries) advances that clock,
    so it shows up as a gap between WATCHDOG=1 stamps just as wall time would on the Pi.
    ``check()`` fails the way systemd would kill the service: no WATCHDOG=1 within WatchdogSec.
    """

    def __init__(self) -> None:
        self.socket = NotifySocket()
        self.stamped: list[tuple[float, str]] = []
        self.service = None
        self._receiving = threading.Lock()

    def now_s(self) -> float:
        loop = self.service.loop if self.service is not None else None
        return loop.clock.monotonic() if loop is not None else 0.0

    def deliver(self, send) -> bool:
        """One notify: ``send()`` and the datagram it queued, stamped with the loop's clock read just before
        the send. Every sender (the loop's WATCHDOG=1, the status thread's STATUS=) goes through this lock,
        so the socket holds only this sender's datagram: a clock reading is never given to a datagram
        another thread sent while this one stalled (without the lock, a status thread preempted between
        its reading and its recv stamped the loop's later WATCHDOG=1 with a time minutes old, which
        check() saw as minutes without a ping)."""
        with self._receiving:
            t_s = self.now_s()
            sent = send()
            for message in self.socket.drain():
                self.stamped.extend((t_s, field) for field in message.split("\n"))
            self.socket.messages.clear()
        return sent

    def times(self, field: str) -> list[float]:
        return [t for t, f in self.stamped if f == field]

    def check(self, watchdog_s: float, end_s: float) -> float:
        """The longest time systemd would have waited for a ping; fails past ``watchdog_s``."""
        stamps_s = [t for t, _ in self.stamped]
        assert stamps_s == sorted(stamps_s), "notifications stamped out of order: the fake's bug, not the service's"
        ready = self.times("READY=1")
        assert ready, "no READY=1"
        pings = [t for t in self.times("WATCHDOG=1") if t >= ready[0]]
        assert pings, "no WATCHDOG=1 after READY=1"
        worst_s = max(b - a for a, b in zip([ready[0], *pings], [*pings, end_s], strict=True))
        assert worst_s <= watchdog_s, f"{worst_s:.1f} s without WATCHDOG=1 (WatchdogSec={watchdog_s:g})"
        return worst_s

    def close(self) -> None:
        self.socket.close()


class StampingNotifier(Notifier):
    def __init__(self, systemd: FakeSystemd) -> None:
        super().__init__(systemd.socket.path)
        self.systemd = systemd

    def notify(self, *fields: str) -> bool:
        return self.systemd.deliver(lambda: super(StampingNotifier, self).notify(*fields))


def run_service_in_virtual_time(tmp_path, faults, *, scenario="long-walk", during=None):
    """`walkcoach run --backend sim --service` in process at max speed; ``during(service, now_s)`` each tick."""
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[store]\nstate_dir = "{tmp_path / "state"}"\n[service]\nruntime_dir = "{tmp_path / "run"}"\n')
    systemd = FakeSystemd()
    service = Service(load_config(config_path), backend="sim", scenario=scenario, seed=0, speed="max",
                      notifier=StampingNotifier(systemd), faults=faults)
    systemd.service = service
    if during is not None:
        on_tick = service.on_tick

        def hooked(now_s: float) -> None:
            on_tick(now_s)
            during(service, now_s)

        service.on_tick = hooked
    try:
        assert service.run() == 0  # ran to the end of the scenario: never killed, never gave up
        worst_s = systemd.check(unit_watchdog_s(), service.loop.now_s)
    finally:
        systemd.close()
    return service, worst_s


def watch_outages(unplugs):
    """A ``during`` hook: the status file once in each outage, and the loop time of every fault cue."""
    seen = {"status": {}, "cues_s": [], "faults": 0}

    def during(service, now_s):
        for at_s, duration_s in unplugs:
            if at_s not in seen["status"] and at_s + 5.0 <= now_s < at_s + duration_s:
                for _ in range(10):  # the status thread may rename an older capture over it meanwhile
                    written = service._write_status(now_s)  # what `walkcoach status` reads mid-outage
                    seen["status"][at_s] = status_mod.read_status(service.runtime_dir)
                    if seen["status"][at_s] and seen["status"][at_s]["t_s"] == written["t_s"]:
                        break
        if service.loop.stats.faults > seen["faults"]:
            seen["faults"] = service.loop.stats.faults
            seen["cues_s"].append(now_s)

    return seen, during


def assert_one_cue_per_outage_and_repeats(cues_s, unplugs):
    """Cued at the grace, then every repeat_s until it answers: the chip boots 0.65 s after the cable
    is back and the next re-initialisation comes within the backoff (at most 5 s)."""
    repeat_s, grace_s = DeviceSettings().loop.fault_cue_repeat_s, DeviceSettings().imu.fault_grace_s
    for at_s, duration_s in unplugs:
        mine = [t for t in cues_s if at_s <= t <= at_s + duration_s + 0.65 + RESET_BACKOFF_MAX_S + 1.0]
        assert mine and mine[0] == pytest.approx(at_s + grace_s, abs=1.0), (at_s, mine)
        assert 1 + int((duration_s - grace_s) // repeat_s) <= len(mine) <= 1 + int((duration_s + 6.7 - grace_s) // repeat_s)
        assert all(abs(b - a - repeat_s) <= 1.0 for a, b in zip(mine, mine[1:], strict=False)), mine
    assert len(cues_s) == sum(1 for t in cues_s if any(a <= t <= a + d + 7.7 for a, d in unplugs))


def stored_session_and_fault_cues(state_dir):
    sessions = load_sessions(state_dir)
    conn = open_for_reading(state_dir)
    try:
        fault_cues = [c for c in read_cues(conn) if c.kind == "fault"]
    finally:
        conn.close()
    return sessions, fault_cues


def test_under_the_watchdog_unplugs_of_10_s_60_s_and_5_min_neither_restart_nor_split_the_session(tmp_path):
    from walkcoach.sim.chip_path import FaultPlan

    unplugs = ((300.0, 10.0), (500.0, 60.0), (800.0, 300.0))
    seen, during = watch_outages(unplugs)
    service, worst_s = run_service_in_virtual_time(tmp_path, FaultPlan(unplugs=unplugs, seed=1), during=during)
    for at_s, _ in unplugs:
        mid = seen["status"][at_s]
        assert mid["sensor_ok"] is False and mid["sensor_error"], mid
    loop = service.loop
    assert loop.sensor_ok and loop.stats.outages == len(unplugs)
    assert_one_cue_per_outage_and_repeats(seen["cues_s"], unplugs)
    sessions, fault_cues = stored_session_and_fault_cues(tmp_path / "state")
    assert len(sessions) == 1, sessions  # one session across every outage: not split by a restart
    assert sessions[0].closed_by == "shutdown" and sessions[0].cap_s == service.coach.session.cap_s
    assert len(fault_cues) == loop.stats.faults
    # walk time: the 10 s and 60 s holes are walked through (bridged up to 30 s... and beyond while steps
    # resume right after); the 5 min one is longer than any bridge and its walking is not counted
    truth_s = simulated_truth_walk_s("long-walk")
    assert truth_s - 300 - 70 - 0.02 * truth_s <= sessions[0].walk_s <= 1.02 * truth_s, sessions[0]
    assert worst_s <= unit_watchdog_s()


def test_under_the_watchdog_a_sensor_absent_for_2_min_at_boot_is_a_fault_not_a_restart(tmp_path):
    from walkcoach.sim.chip_path import FaultPlan

    unplugs = ((0.0, 120.0),)
    seen, during = watch_outages(unplugs)
    service, _ = run_service_in_virtual_time(tmp_path, FaultPlan(unplugs=unplugs), scenario="upright-walk", during=during)
    mid = seen["status"][0.0]
    assert mid["state"] == "running" and mid["sensor_ok"] is False, mid
    assert_one_cue_per_outage_and_repeats(seen["cues_s"], unplugs)
    assert service.loop.sensor_ok and service.loop.stats.samples > 0
    sessions, fault_cues = stored_session_and_fault_cues(tmp_path / "state")
    assert len(sessions) == 1 and sessions[0].walk_s > 0.5 * simulated_truth_walk_s("upright-walk"), sessions
    assert len(fault_cues) == service.loop.stats.faults


@functools.cache
def simulated_truth_walk_s(scenario: str) -> float:
    from walkcoach.sim.walker import simulate

    return simulate(scenario, 0).truth.walk_s


def test_ready_is_sent_at_start_even_without_a_sensor(tmp_path):
    from walkcoach.sim.chip_path import FaultPlan

    service, _ = run_service_in_virtual_time(tmp_path, FaultPlan(unplugs=((0.0, 1e9),)), scenario="standing")
    assert service.loop.stats.samples == 0 and not service.loop.sensor_ok
    assert service.loop.stats.faults >= 5  # 5 min without a sensor: cued at 2 s, then every minute
