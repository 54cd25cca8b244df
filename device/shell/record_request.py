"""`walkcoach record FILE --seconds N`: record the belt's samples from the running service.

The service owns the sensor, and its sandbox may write only its own directories,
so the recording is made by the service into its runtime directory and copied
out by the command, the way ``walkcoach calibrate`` asks (``device.status``):

1. the command writes ``record.request`` (JSON: ``id``, ``seconds``) atomically;
2. the service, about once a second (:meth:`RecordingTap.poll`), takes it and
   records every sample (and the button's marks) to ``record-ID.csv``, a
   "walkcoach recording v1" (``device.recording``), for ``seconds`` or until
   ``record-ID.stop`` appears (the command's Ctrl-C);
3. then it writes ``record-ID.done`` (JSON: samples, seconds, reason);
4. the command copies the recording to FILE and removes the files.

Coaching goes on throughout; a write error ends only the recording.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from walkcoach.device.shell.recording import RecordingButton, RecordingError, RecordingWriter
from walkcoach.hal.state_files import write_atomic

log = logging.getLogger("walkcoach.record")

REQUEST_NAME = "record.request"
MAX_SECONDS = 3600.0  # an hour at 100 Hz is ~25 MB of the runtime directory's RAM
PICKUP_TIMEOUT_S = 5.0
REQUEST_FILE_MODE = 0o644  # written by the operator's `walkcoach record`, read by the service user
DONE_FILE_MODE = 0o640  # written by the service, read by the operator (in the walkcoach group), as its UMask=0027 gave
_ID = re.compile(r"[0-9a-f]{8,32}")


def _paths(runtime_dir: Path, request_id: str) -> tuple[Path, Path, Path]:
    return (runtime_dir / f"record-{request_id}.csv", runtime_dir / f"record-{request_id}.stop",
            runtime_dir / f"record-{request_id}.done")


def _write_json_atomically(path: Path, data: dict, mode: int) -> None:
    write_atomic(path, (json.dumps(data) + "\n").encode("utf-8"), mode=mode)


# -- the service's side ----------------------------------------------------------------------------
class RecordingTap:
    """Between the loop and its IMU (and button): passes samples on, and records them while asked."""

    def __init__(self, loop, runtime_dir: Path | str, *, rate_hz: float, meta: dict | None = None) -> None:
        self.coach = loop.coach  # for the cap in force when a recording starts (a replay coaches against it)
        self.runtime_dir = Path(runtime_dir)
        self.rate_hz = rate_hz
        self.meta = dict(meta or {})
        self.imu = loop.imu
        self.writer: RecordingWriter | None = None
        self._button = loop.button
        self._recording_button: RecordingButton | None = None
        self._request_id = ""
        self._until_s = 0.0
        self._started_s = 0.0
        loop.imu = self
        if loop.button is not None:
            loop.button = _TappedButton(self)

    # the Imu protocol
    def read(self):
        sample = self.imu.read()
        writer = self.writer
        if writer is not None:
            writer.write(sample)
        return sample

    def reset(self) -> None:
        self.imu.reset()

    def close(self) -> None:
        self.finish("shutdown")
        self.imu.close()

    # requests
    def poll(self, now_s: float) -> None:
        """About once a second from the service's tick: start, stop or finish a recording."""
        if self.writer is not None:
            _, stop, _ = _paths(self.runtime_dir, self._request_id)
            if now_s >= self._until_s:
                self.finish("done")
            elif stop.exists():
                self.finish("stopped")
            elif not self.writer.healthy:
                self.finish(self.writer.reason)
            return
        request = self.runtime_dir / REQUEST_NAME
        try:
            text = request.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read %s: %s", request, exc.strerror or exc)
            return
        try:
            request.unlink()
        except OSError:
            pass
        try:
            data = json.loads(text)
            request_id, seconds = str(data["id"]), float(data["seconds"])
            if not _ID.fullmatch(request_id) or not 0 < seconds <= MAX_SECONDS:
                raise ValueError("bad id or seconds")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed record request (%s)", exc)
            return
        path, _, done = _paths(self.runtime_dir, request_id)
        try:
            meta = dict(self.meta, cap_s=self.coach.session.cap_s, request=request_id)
            self.writer = RecordingWriter(path, rate_hz=self.rate_hz, meta=meta)
        except (RecordingError, OSError) as exc:  # the recording fails, coaching goes on
            log.error("cannot start the requested recording: %s", exc)
            _write_json_atomically(done, {"samples": 0, "seconds": 0.0, "reason": str(exc)}, DONE_FILE_MODE)
            return
        self._request_id = request_id
        self._started_s = now_s
        self._until_s = now_s + seconds
        self._recording_button = RecordingButton(self._button, self.writer) if self._button is not None else None
        log.info("recording %.0f s of samples to %s (asked by walkcoach record)", seconds, path)

    def finish(self, reason: str) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        self._recording_button = None
        writer.close()
        seconds = (writer.last_t_s - self._started_s) if writer.last_t_s is not None else 0.0
        _, _, done = _paths(self.runtime_dir, self._request_id)
        try:
            _write_json_atomically(done, {"samples": writer.samples, "seconds": round(max(0.0, seconds), 2),
                                          "reason": reason if writer.healthy else writer.reason}, DONE_FILE_MODE)
        except OSError as exc:
            log.error("cannot mark the recording done: %s", exc.strerror or exc)
        log.info("recording %s: %d samples (%s)", self._request_id, writer.samples, reason)


class _TappedButton:
    """The loop's button, also marked in a requested recording while one runs."""

    def __init__(self, tap: RecordingTap) -> None:
        self._tap = tap

    @property
    def is_pressed(self) -> bool:
        recording = self._tap._recording_button
        return recording.is_pressed if recording is not None else bool(self._tap._button.is_pressed)

    def close(self) -> None:
        self._tap._button.close()


# -- the command's side ------------------------------------------------------------------------
class RecordRefused(Exception):
    """The service cannot take the request (not running, not allowed, stuck); the message says why."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def record_from_service(runtime_dir: Path | str, out_path: Path, seconds: float, *, out: TextIO, err: TextIO,
                        progress: bool = False) -> int:
    """`walkcoach record`: ask, wait, copy. 0 when FILE was written; raises RecordRefused otherwise."""
    from walkcoach.device.shell.status import service_pid

    runtime_dir = Path(runtime_dir)
    if not 0 < seconds <= MAX_SECONDS:
        raise RecordRefused(f"--seconds must be more than 0 and at most {MAX_SECONDS:.0f}, not {seconds:g}", 2)
    if service_pid(runtime_dir) is None:
        raise RecordRefused("walkcoach is not running: nothing recorded (without the service: "
                            "walkcoach run --record FILE, with the service stopped)")
    if out_path.is_dir() or not out_path.parent.is_dir():
        raise RecordRefused(f"{out_path}: not a file in an existing directory", 2)
    request_id = secrets.token_hex(8)
    path, stop, done = _paths(runtime_dir, request_id)
    request = runtime_dir / REQUEST_NAME
    try:
        _write_json_atomically(request, {"id": request_id, "seconds": seconds, "requested_wall": round(time.time(), 3)},
                               REQUEST_FILE_MODE)
    except PermissionError:
        raise RecordRefused(f"not allowed to write in {runtime_dir}: add yourself to the group walkcoach "
                            "(sudo usermod -aG walkcoach $USER), or use sudo", 2) from None
    deadline = time.monotonic() + PICKUP_TIMEOUT_S
    while request.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if request.exists():
        try:
            request.unlink()
        except OSError:
            pass
        raise RecordRefused("asked walkcoach to record; it has not picked the request up (is it stuck? see walkcoach status)")
    print(f"recording {seconds:g} s from the running service (Ctrl-C stops early)", file=err)
    started = time.monotonic()
    try:
        while not done.exists():
            if time.monotonic() - started > seconds + 30.0:
                raise RecordRefused("the service did not finish the recording in time (see journalctl -u walkcoach)")
            if progress:
                err.write(f"\r{min(seconds, time.monotonic() - started):5.0f} of {seconds:g} s\x1b[K")
                err.flush()
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop.write_text("stop\n")
        stopping = time.monotonic() + 5.0
        while not done.exists() and time.monotonic() < stopping:
            time.sleep(0.1)
    finally:
        if progress:
            err.write("\r\x1b[K")
    try:
        result = json.loads(done.read_text(encoding="utf-8"))
        shutil.copyfile(path, out_path)
    except (OSError, ValueError) as exc:
        raise RecordRefused(f"cannot copy the recording to {out_path}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        for leftover in (path, stop, done):
            try:
                leftover.unlink()
            except OSError:
                pass
    print(f"wrote {out_path}: {result.get('samples', 0)} samples, {result.get('seconds', 0):.1f} s"
          + (f" ({result['reason']})" if result.get("reason") not in (None, "done") else ""), file=out)
    return 0


def main_record(runtime_dir, out_path: Path, seconds: float) -> int:
    try:
        return record_from_service(runtime_dir, out_path, seconds, out=sys.stdout, err=sys.stderr,
                                   progress=sys.stderr.isatty())
    except RecordRefused as exc:
        print(f"walkcoach: {exc}", file=sys.stderr)
        return exc.status
