"""What the running service is doing, for `walkcoach status` and `walkcoach calibrate`.

The service (``device.service``) owns the bus and the pins; other commands talk to it
through two files in its runtime directory (``[service] runtime_dir``, the systemd
``RuntimeDirectory=``, ``/run/walkcoach``):

- ``status.json``: written atomically (temp file + rename) about once a second by the
  service from :class:`StatusTracker`; a final one with ``"state": "stopped"`` on exit.
  `walkcoach status` reads it; no file, a file older than :data:`STALE_AFTER_S`, a
  stopped state or a dead PID all mean "walkcoach is not running" (exit status 3,
  like ``systemctl status`` for a stopped unit).
- ``calibrate.request``: created by :func:`request_calibration`; the service deletes
  it at its next status write and asks the coach to capture the upright at the next
  still moment (the same as holding the button).

``walkcoach calibrate`` with no service running captures nothing itself: it says so and
explains the two ways the upright is taken anyway (stand still after the service starts,
or hold the button). Opening the bus from a second process while the service may be
starting would fight over the sensor, and a capture is only useful to a running coach.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TextIO

from .events import Event, EventKind

STATUS_FILE_NAME = "status.json"
CALIBRATE_REQUEST_NAME = "calibrate.request"
PID_FILE_NAME = "walkcoach.pid"  # same as device.config.PID_FILE_NAME
STALE_AFTER_S = 10.0
NOT_RUNNING_EXIT = 3
STATUS_VERSION = 1


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
        self.coach = None
        self.loop = None
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

    def bind(self, coach, loop) -> None:
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

    def snapshot_dict(self, now_s: float) -> dict:
        """Everything `walkcoach status` shows, JSON-ready, at loop time ``now_s``."""
        snap = self.coach.snapshot(now_s) if self.coach is not None else None
        loop = self.loop
        last_cue = dict(self.last_cue, ago_s=round(now_s - self.last_cue["t_s"], 1)) if self.last_cue else None
        return {
            "version": STATUS_VERSION,
            "state": self.state,
            "pid": self.pid,
            "backend": self.backend,
            "updated_wall": round(time.time(), 3),
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
            "sensor_ok": bool(loop.sensor_ok) if loop is not None else True,
            "sensor_error": (loop.last_fault or None) if loop is not None and not loop.sensor_ok else None,
            "last_fault": self.last_fault,
            "calibration": {
                "captured": bool(snap.upright_captured) if snap else False,
                "captured_t_s": round(self.upright_captured_t_s, 2) if self.upright_captured_t_s is not None else None,
                "how": self.upright_why or None,
                "requested_t_s": round(self.calibration_requested_t_s, 2) if self.calibration_requested_t_s is not None else None,
            },
            "config_path": self.config_path,
            "reload_errors": list(self.reload_errors),
            "restart_needed": list(self.restart_needed),
            "last_reload": self.last_reload,
            "outputs": self.outputs,
            "samples": loop.stats.samples if loop is not None else 0,
            "read_errors": loop.stats.read_errors if loop is not None else 0,
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
    return text


def write_status(runtime_dir: Path | str, status: dict) -> None:
    """Write ``status.json`` atomically (readable by everyone: the unit's UMask is 0077)."""
    directory = Path(runtime_dir)
    fd, temp = tempfile.mkstemp(prefix=".status.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            json.dump(status, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
        os.replace(temp, directory / STATUS_FILE_NAME)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def read_status(runtime_dir: Path | str) -> dict | None:
    """The last status the service wrote, or None (no file, unreadable, not JSON).

    Whether it is current is :func:`running_status`'s question.
    """
    try:
        data = json.loads((Path(runtime_dir) / STATUS_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def running_status(runtime_dir: Path | str, *, now_wall: float | None = None) -> dict | None:
    """The status if a service is running and wrote it in the last :data:`STALE_AFTER_S`; else None."""
    status = read_status(runtime_dir)
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
    status = running_status(runtime_dir)
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
        pid = int((Path(runtime_dir) / PID_FILE_NAME).read_text().strip())
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
    if b"device.service" in argv:
        return True
    return (b"walkcoach" in argv or b"device.cli" in argv) and b"run" in argv


def service_pid(runtime_dir: Path | str) -> int | None:
    """The PID of the running service, from its pid file, or None."""
    pid = read_pid(runtime_dir)
    return pid if pid is not None and pid_alive(pid) else None


def request_calibration(runtime_dir: Path | str) -> bool:
    """Ask the running service to capture the upright; False (nothing written) when none runs."""
    if service_pid(runtime_dir) is None:
        return False
    path = Path(runtime_dir) / CALIBRATE_REQUEST_NAME
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{time.time():.3f}\n")
    return True


def take_calibration_request(runtime_dir: Path | str) -> bool:
    """The service's side: True (and the request file gone) if a calibration was requested."""
    try:
        os.unlink(Path(runtime_dir) / CALIBRATE_REQUEST_NAME)
    except FileNotFoundError:
        return False
    return True


def run_calibrate(runtime_dir: Path | str, *, out: TextIO, err: TextIO, wait_s: float = 3.0) -> int:
    """`walkcoach calibrate`: 0 when the running service took the request, 1 when no service runs.

    Without a running service nothing is captured (see the module docstring).
    """
    try:
        asked = request_calibration(runtime_dir)
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
