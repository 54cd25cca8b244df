"""What the running service is doing, for `walkcoach status` and `walkcoach calibrate`.

The service (``device.service``) owns the bus and the pins; other commands talk to it
through two files in its runtime directory (``[service] runtime_dir``, the systemd
``RuntimeDirectory=``, ``/run/walkcoach``):

- ``status.json``: written atomically (temp file + rename) about once a second by the
  service from :class:`StatusTracker`, on :class:`StatusWriter`'s thread (never inside the
  10 ms tick); a final one with ``"state": "stopped"`` on exit. Mode 0640: the pain
  reports in it are health data, readable by root and the service's group only.
  `walkcoach status` reads it; no file, a file older than :data:`STALE_AFTER_S`, a
  stopped state or a dead PID all mean "walkcoach is not running" (exit status 3,
  like ``systemctl status`` for a stopped unit).
- ``calibrate.request``: created by :func:`request_calibration`; the service's status
  thread looks for it once a second (one ``lstat``, off the tick: inotify would need
  ctypes or a dependency to answer a once-a-second question), deletes it and the loop
  asks the coach to capture the upright at the next still moment (the same as holding
  the button). Anything there but a regular file (a directory, a symlink) is logged and
  removed or ignored, never taken as a request and never a reason to stop.

Every file here is opened without following symlinks (:mod:`hal.state_files`).

``walkcoach calibrate`` with no service running captures nothing itself: it says so and
explains the two ways the upright is taken anyway (stand still after the service starts,
or hold the button). Opening the bus from a second process while the service may be
starting would fight over the sensor, and a capture is only useful to a running coach.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TextIO

from walkcoach.device.core.events import Event, EventKind
from walkcoach.hal.state_files import UnsafeFile, open_nofollow, read_regular, write_atomic

if TYPE_CHECKING:
    from walkcoach.device.core.coach import Coach, CoachSnapshot
    from walkcoach.device.shell.loop import CoachLoop
    from walkcoach.device.shell.store import Store

log = logging.getLogger("walkcoach.status")

STATUS_FILE_NAME = "status.json"
CALIBRATE_REQUEST_NAME = "calibrate.request"
PID_FILE_NAME = "walkcoach.pid"  # same as device.config.PID_FILE_NAME
STALE_AFTER_S = 10.0
NOT_RUNNING_EXIT = 3
STATUS_VERSION = 1
STATUS_FILE_MODE = 0o640  # pain reports are health data: the service's group only
UNKNOWN_EXIT = 4  # LSB: "program or service status is unknown" (the status file cannot be read)


class Captured(NamedTuple):
    """What the tick hands the status thread: cheap to take, everything read from the loop."""

    now_s: float
    wall_s: float
    snap: CoachSnapshot | None
    sensor_ok: bool
    sensor_error: str
    samples: int
    read_errors: int


class StatusTracker:
    """An event sink that remembers what `walkcoach status` shows; ``snapshot_dict`` adds the live state.

    ``bind(coach, loop)`` before the loop runs; the service sets ``config_path``,
    ``reload_errors``, ``restart_needed`` and ``state`` as they change.
    """

    def __init__(self, *, backend: str = "", config_path: Path | str | None = None) -> None:
        self.backend = backend
        self.config_path = str(config_path) if config_path else None
        self.state = "starting"
        self.started_wall = time.time()
        self.pid = os.getpid()
        self.coach: Coach | None = None
        self.loop: CoachLoop | None = None
        self.last_cue: dict | None = None
        self.last_fault: dict | None = None
        self.upright_captured_t_s: float | None = None
        self.upright_why = ""
        self.calibration_requested_t_s: float | None = None
        self.reload_errors: list[str] = []
        self.restart_needed: list[str] = []
        self.last_reload: dict | None = None
        self.outputs: dict | None = None
        self.pain_reports_t_s: list[float] = []
        self.store: Store | None = None  # the history store, for its health
        self.config_source = "file"  # "file" | "last_good" | "defaults": what the service coaches with
        self.config_problems: list[str] = []  # why the file at boot was not used
        self.restored: dict | None = None  # the session carried over from the last run

    def bind(self, coach: Coach, loop: CoachLoop) -> None:
        self.coach = coach
        self.loop = loop

    def __call__(self, event: Event) -> None:
        if event.cue is not None:
            self.last_cue = {"cue": event.cue.value, "t_s": round(event.t_s, 2), "why": event.why}
        kind = event.kind
        if kind is EventKind.UPRIGHT_CAPTURED:
            self.upright_captured_t_s = event.t_s
            self.upright_why = event.why
        elif kind is EventKind.FAULT:
            self.last_fault = {"t_s": round(event.t_s, 2), "why": event.why}
        elif kind is EventKind.PAIN_REPORTED:
            self.pain_reports_t_s.append(round(event.t_s, 2))

    def capture(self, now_s: float) -> Captured:
        """On the loop thread, once a second: the coach's snapshot and the loop's figures."""
        loop = self.loop
        snap = self.coach.snapshot(now_s) if self.coach is not None else None
        if loop is None:
            return Captured(now_s, time.time(), snap, True, "", 0, 0)
        stats = loop.stats
        return Captured(now_s, time.time(), snap, bool(loop.sensor_ok), loop.last_fault, stats.samples, stats.read_errors)

    def snapshot_dict(self, now_s: float) -> dict:
        """Everything `walkcoach status` shows, JSON-ready, at loop time ``now_s``."""
        return self.build(self.capture(now_s))

    def build(self, c: Captured) -> dict:
        """The status dict from a :meth:`capture` (on the status thread)."""
        now_s, snap = c.now_s, c.snap
        last_cue = dict(self.last_cue, ago_s=round(now_s - self.last_cue["t_s"], 1)) if self.last_cue else None
        store = self.store
        return {
            "version": STATUS_VERSION,
            "state": self.state,
            "pid": self.pid,
            "backend": self.backend,
            "updated_wall": round(c.wall_s, 3),
            "started_wall": round(self.started_wall, 3),
            "t_s": round(now_s, 2),
            "walking": bool(snap.walking) if snap else False,
            "walk_s": round(snap.walk_s, 1) if snap else 0.0,
            "cap_s": round(snap.cap_s, 1) if snap else 0.0,
            "session_started": bool(snap.session_started) if snap else False,
            "lean_deg": round(snap.lean_deg, 1) if snap and snap.upright_captured else None,
            "leaning": bool(snap.leaning) if snap else False,
            "steps": snap.steps if snap else 0,
            "cadence_spm": round(snap.cadence_spm, 1) if snap else 0.0,
            "pain_reports": snap.pain_reports if snap else 0,
            "last_cue": last_cue,
            "sensor_ok": c.sensor_ok,
            "sensor_error": (c.sensor_error or None) if not c.sensor_ok else None,
            "last_fault": self.last_fault,
            "calibration": {
                "captured": bool(snap.upright_captured) if snap else False,
                "captured_t_s": round(self.upright_captured_t_s, 2) if self.upright_captured_t_s is not None else None,
                "how": self.upright_why or None,
                "requested_t_s": round(self.calibration_requested_t_s, 2) if self.calibration_requested_t_s is not None else None,
            },
            "config_path": self.config_path,
            "config_source": self.config_source,
            "config_problems": list(self.config_problems),
            "reload_errors": list(self.reload_errors),
            "restart_needed": list(self.restart_needed),
            "last_reload": self.last_reload,
            "store": store.health() if store is not None else None,
            "restored": self.restored,
            "clock": store.clock() if store is not None else None,
            "outputs": self.outputs,
            "samples": c.samples,
            "read_errors": c.read_errors,
        }


def status_line(status: dict) -> str:
    """One line for `systemctl status` (sd_notify STATUS=): "walking 3.2/10 min, lean 4°"."""
    if not status.get("sensor_ok", True):
        return f"sensor fault: {status.get('sensor_error') or 'no valid samples'}"
    walk = f"{status['walk_s'] / 60:.1f}/{status['cap_s'] / 60:.0f} min"
    text = f"walking {walk}" if status["walking"] else f"not walking, walked {walk}"
    lean = status.get("lean_deg")
    text += f", lean {lean:.0f}°" if lean is not None else ", no upright yet (stand still)"
    if status.get("reload_errors"):
        text += "; config reload failed"
    source = status.get("config_source")
    if source in ("last_good", "defaults"):
        text += "; CONFIG INVALID, coaching with " + ("the last good config" if source == "last_good" else "the defaults")
    store = status.get("store")
    if store and store.get("state") != "ok":
        text += "; history " + _store_words(store)
    if store and store.get("dropped"):
        text += f"; {store['dropped']} event(s) not stored (queue full)"
    return text


def _store_words(store: dict) -> str:
    state = store.get("state")
    why = f" ({store['why']})" if store.get("why") else ""
    if state == "retrying":
        since = store.get("since_wall")
        when = time.strftime(" since %H:%M:%S", time.localtime(since)) if since else ""
        return f"store retrying{when}{why}, {store.get('queued', 0)} item(s) waiting"
    if state == "unavailable":
        return f"store unavailable{why}"
    return str(state)


def write_status(runtime_dir: Path | str, status: dict) -> None:
    """Write ``status.json`` atomically, created 0640 (never wider), never through a symlink."""
    data = (json.dumps(status, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    write_atomic(Path(runtime_dir) / STATUS_FILE_NAME, data, mode=STATUS_FILE_MODE)


def _read_status(runtime_dir: Path | str) -> tuple[dict | None, str | None]:
    """(status, None), or (None, why it could not be read) with why None when there is simply no file."""
    path = Path(runtime_dir) / STATUS_FILE_NAME
    try:
        data = json.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        return None, None
    except PermissionError:
        return None, f"cannot read {path}: permission denied (it holds health data: use sudo, or join the service's group)"
    except UnsafeFile as exc:
        return None, exc.strerror
    except (OSError, ValueError):
        return None, None
    return (data, None) if isinstance(data, dict) else (None, None)


def read_status(runtime_dir: Path | str) -> dict | None:
    """The last status the service wrote, or None (no file, unreadable, not JSON, a symlink).

    Whether it is current is :func:`running_status`'s question.
    """
    return _read_status(runtime_dir)[0]


def running_status(runtime_dir: Path | str, *, now_wall: float | None = None, status: dict | None = None) -> dict | None:
    """The status if a service is running and wrote it in the last :data:`STALE_AFTER_S`; else None."""
    status = read_status(runtime_dir) if status is None else status
    if status is None or status.get("state") == "stopped":
        return None
    now_wall = time.time() if now_wall is None else now_wall
    try:
        age_s = now_wall - float(status["updated_wall"])
    except (KeyError, TypeError, ValueError):
        return None
    if age_s > STALE_AFTER_S:
        return None
    pid = status.get("pid")
    if isinstance(pid, int) and not pid_alive(pid):
        return None
    return status


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(0.0, seconds)), 60)
    return f"{minutes}:{secs:02d}"


def format_status(status: dict) -> str:
    """The status as a few lines for a person."""
    lines = [f"walkcoach {status.get('state', '?')} (PID {status.get('pid')}, {status.get('backend') or '?'} backend)"]
    walk = f"{status['walk_s'] / 60:.1f} of {status['cap_s'] / 60:.0f} min"
    lines.append(f"  walk:        {'walking now, ' if status['walking'] else ''}{walk} this session, {status['steps']} steps"
                 + (f", {status['cadence_spm']:.0f} steps/min" if status.get("walking") and status.get("cadence_spm") else ""))
    lean = status.get("lean_deg")
    lines.append(f"  lean:        {f'{lean:.0f}°' if lean is not None else 'unknown (no upright reference yet)'}"
                 + (" (leaning)" if status.get("leaning") else ""))
    cal = status.get("calibration") or {}
    if cal.get("captured"):
        how = f" ({cal['how']})" if cal.get("how") else ""
        at = f" at {_clock(cal['captured_t_s'])}" if cal.get("captured_t_s") is not None else ""
        lines.append(f"  upright:     captured{at}{how}")
    else:
        lines.append("  upright:     not captured yet: stand upright and still for a moment")
    if cal.get("requested_t_s") is not None and (cal.get("captured_t_s") is None or cal["captured_t_s"] < cal["requested_t_s"]):
        lines.append(f"  calibrate:   requested at {_clock(cal['requested_t_s'])}: stand upright and still")
    cue = status.get("last_cue")
    lines.append(f"  last cue:    {cue['cue']} {cue.get('ago_s', 0):.0f} s ago ({cue['why']})" if cue else "  last cue:    none yet")
    if status.get("sensor_ok", True):
        lines.append("  sensor:      ok")
    else:
        lines.append(f"  sensor:      FAULT: {status.get('sensor_error') or 'no valid samples'}")
    fault = status.get("last_fault")
    if fault:
        lines.append(f"  last fault:  at {_clock(fault['t_s'])}: {fault['why']}")
    lines.append(f"  pain:        {status.get('pain_reports', 0)} report(s) this session")
    restored = status.get("restored")
    if restored:
        lines.append(f"  carried over: {restored.get('walk_s', 0) / 60:.1f} min walked before a restart "
                     f"{restored.get('downtime_s', 0):.0f} s ago")
    store = status.get("store")
    if store is not None:
        lines.append("  history:     " + ("ok" if store.get("state") == "ok" else _store_words(store).upper())
                     + (f"; {store['dropped']} event(s) not stored (queue full)" if store.get("dropped") else ""))
    clock = status.get("clock")
    if clock and not clock.get("trusted", True):
        lines.append(f"  clock:       not trusted yet ({clock.get('why')}); sessions are dated once it is")
    source = status.get("config_source")
    if source in ("last_good", "defaults"):
        lines.append("  config:      INVALID at start: coaching with "
                     + (f"the last good copy ({status.get('config_path')})" if source == "last_good"
                        else "the defaults (no good copy saved yet)"))
        for line in status.get("config_problems") or []:
            lines.append(f"    {line}")
    else:
        lines.append(f"  config:      {status.get('config_path') or 'none (all defaults)'}")
    reload = status.get("last_reload")
    if reload:
        lines.append(f"  last reload: {'ok' if reload.get('ok') else 'FAILED, previous config kept'}"
                     + (f": {', '.join(reload['changed'])}" if reload.get("changed") else ""))
    for line in status.get("reload_errors") or []:
        lines.append(f"    {line}")
    if status.get("restart_needed"):
        lines.append(f"  needs a restart to apply: {', '.join(status['restart_needed'])}")
    return "\n".join(lines)


def format_file_problems(problems: list[str], running: bool) -> str:
    """The config file's problems under the status: the service runs on what it loaded before."""
    keeps = "the running service keeps the config it loaded" if running else "the service will not start with it"
    return "\n".join([f"  config file: {len(problems)} problem(s) on disk ({keeps}):"] + [f"    {line}" for line in problems])


def run_status(runtime_dir: Path | str, *, as_json: bool = False, out: TextIO, err: TextIO,
               file_problems: list[str] | None = None) -> int:
    """`walkcoach status [--json]`: 0 and the status, or 3 and "walkcoach is not running".

    ``file_problems``: the config file on disk is invalid; shown with what the service runs on.
    """
    raw, problem = _read_status(runtime_dir)
    if problem is not None:
        print(f"walkcoach: {problem}", file=err)
        return UNKNOWN_EXIT
    status = running_status(runtime_dir, status=raw) if raw is not None else None
    if status is None:
        print("walkcoach is not running", file=err)
        if file_problems:
            print(format_file_problems(file_problems, running=False), file=err)
        return NOT_RUNNING_EXIT
    if as_json:
        if file_problems is not None:
            status = dict(status, config_file_problems=list(file_problems))
        print(json.dumps(status, ensure_ascii=False), file=out)
    else:
        text = format_status(status)
        if file_problems:
            text += "\n" + format_file_problems(file_problems, running=True)
        print(text, file=out)
    return 0


# -- the pid file and asking the service to calibrate ------------------------------------------


def read_pid(runtime_dir: Path | str) -> int | None:
    try:
        pid = int(read_regular(Path(runtime_dir) / PID_FILE_NAME, 64).decode().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 1 else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's (the service user's)
    return True


def is_walkcoach_service(pid: int) -> bool:
    """Is ``pid`` a running `walkcoach run` (not a recycled PID of something else)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc access: trust the pid file if the process is there
        return pid_alive(pid)
    argv = [os.path.basename(arg) for arg in cmdline.split(b"\0")]
    if b"walkcoach.device.shell.service" in argv:
        return True
    return (b"walkcoach" in argv or b"walkcoach.device.cli.cli" in argv) and b"run" in argv


def service_pid(runtime_dir: Path | str) -> int | None:
    """The PID of the running service, from its pid file, or None."""
    pid = read_pid(runtime_dir)
    return pid if pid is not None and pid_alive(pid) else None


def request_calibration(runtime_dir: Path | str) -> bool:
    """Ask the running service to capture the upright; False (nothing written) when none runs.

    Raises UnsafeFile if a symlink (or a non-file) sits where the request goes."""
    if service_pid(runtime_dir) is None:
        return False
    fd = open_nofollow(Path(runtime_dir) / CALIBRATE_REQUEST_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{time.time():.3f}\n")
    return True


class CalibrateRequestWatch:
    """The service's side of ``calibrate.request``: :meth:`check` is one ``lstat``.

    True (and the file gone) for a regular file. A directory, a symlink or a FIFO there is
    not a request: it is logged once and removed when that is safe (a link is removed
    itself, never followed; an empty directory is removed; a full one is left alone).
    Never raises."""

    def __init__(self, runtime_dir: Path | str) -> None:
        self.path = Path(runtime_dir) / CALIBRATE_REQUEST_NAME
        self._warned: tuple[int, int, int] | None = None

    def check(self) -> bool:
        path = self.path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._warn_once(None, f"cannot look at {path}: {exc.strerror or exc}")
            return False
        if stat.S_ISREG(info.st_mode):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._warn_once(info, f"cannot remove {path}: {exc.strerror or exc}; calibrate requests are ignored")
                return False
            return True
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        try:
            os.rmdir(path) if stat.S_ISDIR(info.st_mode) else os.unlink(path)
            removed = "removed"
        except OSError as exc:
            removed = f"left there ({exc.strerror or exc})"
        self._warn_once(info, f"{path} is {kind}, not a calibrate request: ignored and {removed}")
        return False

    def _warn_once(self, info, message: str) -> None:
        key = (info.st_dev, info.st_ino, info.st_ctime_ns) if info is not None else (0, 0, 0)  # inodes are reused
        if key != self._warned:
            self._warned = key
            log.warning("%s", message)


def take_calibration_request(runtime_dir: Path | str) -> bool:
    """True (and the request file gone) if a calibration was requested (see CalibrateRequestWatch)."""
    return CalibrateRequestWatch(runtime_dir).check()


class StatusWriter:
    """``status.json``, systemd's ``STATUS=`` line and the calibrate request, on their own thread.

    The tick calls :meth:`post` once a second (a :meth:`StatusTracker.capture` put in a
    slot: a few microseconds, no lock, no thread woken: waking one from the tick hands it
    the GIL there and then, ~80 us); the thread wakes on its own every ``period_s``, and if
    there is a new capture builds the dict, writes the file, sends the status line, runs
    the jobs posted (the saved session) and looks for ``calibrate.request``. A request found bumps
    :attr:`calibrate_requests`, which the loop compares with the count it has taken (an
    int compare per tick): the coach itself is only ever touched by the loop thread."""

    def __init__(self, tracker: StatusTracker, runtime_dir: Path | str, *, notify_status: Callable[[str], object] | None = None,
                 period_s: float = 0.25) -> None:
        self.tracker = tracker
        self.runtime_dir = Path(runtime_dir)
        self.notify_status = notify_status
        self.watch = CalibrateRequestWatch(runtime_dir)
        self.calibrate_requests = 0
        self.writes = 0
        self._latest: Captured | None = None
        self._jobs: list[Callable[[], object]] = []
        self._period_s = period_s
        self._wake = threading.Event()  # set only by close()
        self._stop = False
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="walkcoach-status", daemon=True)
        self._thread.start()

    def post(self, now_s: float) -> None:
        self._latest = self.tracker.capture(now_s)

    def post_job(self, job: Callable[[], object]) -> None:
        """Run ``job`` on the status thread (the saved session's write) at its next wake-up."""
        self._jobs.append(job)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._period_s)
            if self._stop:
                return
            captured, self._latest = self._latest, None
            if captured is not None:
                self.write(captured)
            while self._jobs:
                job = self._jobs.pop(0)
                try:
                    job()
                except Exception as exc:  # noqa: BLE001 - one failed job must not end the status thread
                    self._log_error(f"status thread job failed: {type(exc).__name__}: {exc}")
            if self.watch.check():
                self.calibrate_requests += 1

    def write(self, captured: Captured) -> dict | None:
        try:
            status = self.tracker.build(captured)
        except Exception as exc:  # noqa: BLE001 - a status bug must not stop the status for good
            self._log_error(f"cannot build the status: {type(exc).__name__}: {exc}")
            return None
        try:
            write_status(self.runtime_dir, status)
        except OSError as exc:
            self._log_error(f"cannot write the status file in {self.runtime_dir}: {exc.strerror or exc}")
        else:
            self.writes += 1
            self._last_error = None
        if self.notify_status is not None:
            self.notify_status(status_line(status))
        return status

    def _log_error(self, message: str) -> None:
        if message != self._last_error:
            self._last_error = message
            log.warning("%s", message)

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout_s)


def run_calibrate(runtime_dir: Path | str, *, out: TextIO, err: TextIO, wait_s: float = 3.0) -> int:
    """`walkcoach calibrate`: 0 when the running service took the request, 1 when no service runs.

    Without a running service nothing is captured (see the module docstring).
    """
    try:
        asked = request_calibration(runtime_dir)
    except UnsafeFile as exc:
        print(f"walkcoach: {exc.strerror}", file=err)
        return 2
    except PermissionError:
        print(f"walkcoach: not allowed to write in {runtime_dir} (try sudo)", file=err)
        return 2
    if not asked:
        print("walkcoach is not running: nothing captured. Start it (sudo systemctl start walkcoach), then stand "
              "upright and still for a few seconds, or hold the button 3 s.", file=err)
        return 1
    request = Path(runtime_dir) / CALIBRATE_REQUEST_NAME
    deadline = time.monotonic() + wait_s
    while request.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if request.exists():
        print("asked walkcoach to calibrate; it has not picked the request up yet (is it stuck? see "
              "`walkcoach status`)", file=err)
        return 1
    print("walkcoach will capture your upright now: stand upright and still for a few seconds", file=out)
    return 0
