"""Recording every sample the coach sees, for replay (``walkcoach run --record FILE``).

Format, "walkcoach recording v1": a text CSV.

    # walkcoach recording v1 rate_hz=100 frame=body units=ms2 started=2025-03-01T09:12:00.000+01:00 cap_s=600
    t,gx,gy,gz,ax,ay,az
    12.34,0.1234,-0.0456,9.8054,0.0123,-0.0345,0.2345
    # button t=15.21 pressed=1
    ...

- The first line names the format and carries ``key=value`` facts (no spaces
  in values): ``rate_hz`` the loop rate, ``frame=body`` (after the mount
  remap), ``units=ms2``, the wall-clock ``started`` time, and whatever the
  caller adds (``cap_s``: the cap the coach started with, so a replay coaches
  against the same cap; ``mount``, ``backend``, ``scenario``...).
- ``t`` is the loop's monotonic time in seconds, written exactly (the
  shortest text that reads back as the same float), so a replay compares
  times exactly as the live coach did; ``gx,gy,gz`` is the gravity
  vector (BNO055 convention: pointing up) and ``ax,ay,az`` the linear
  acceleration (gravity removed), both m/s² in the body frame (x forward,
  y left, z up), 4 decimals. NOTE: in this format ``g`` is *gravity*; in a
  plain CSV (``device.replay``) ``gx,gy,gz`` is an angular rate. The first
  line tells the two apart.
- Lines starting with ``#`` after the header are marks: ``# button t=... pressed=0|1``
  (the button's state changes, so a replay sees the same pain reports and
  calibrations). Readers skip marks they do not know.

Writing is streamed through a buffer and flushed about once a second of
sample time, so a killed process loses at most about a second; ``close()``
flushes and syncs. ``write()`` never raises into the loop: a write error
(a full SD card) is logged once and recording stops, coaching goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path

from walkcoach.hal.errors import WalkcoachError
from walkcoach.hal.types import Imu, ImuSample

log = logging.getLogger("walkcoach.recording")

MAGIC = "# walkcoach recording v1"
COLUMNS = ("t", "gx", "gy", "gz", "ax", "ay", "az")
HEADER_ROW = ",".join(COLUMNS)
BUFFER_BYTES = 64 * 1024  # ~1000 samples; flushed every second anyway


class RecordingError(WalkcoachError, ValueError):
    """A recording cannot be written or read; the message names the file, the line and what is wrong."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)


def _meta_value(value) -> str:
    text = str(value)
    return re.sub(r"\s+", "_", text) or "-"


def header_line(rate_hz: float, meta: dict | None = None, *, started: dt.datetime | None = None) -> str:
    started = started or dt.datetime.now().astimezone()
    facts = {"rate_hz": f"{rate_hz:g}", "frame": "body", "units": "ms2", "started": started.isoformat(timespec="milliseconds")}
    for key, value in (meta or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"recording meta key {key!r} must be an identifier")
        facts[key] = _meta_value(value)
    return MAGIC + " " + " ".join(f"{k}={v}" for k, v in facts.items())


def _close_quietly(file) -> None:
    try:
        file.close()
    except OSError:  # the flush inside close fails the same way the write did
        pass


class RecordingWriter:
    """Streams samples to a walkcoach v1 recording. ``write(sample)`` per sample, ``close()`` at the end."""

    def __init__(
        self,
        path: Path | str,
        *,
        rate_hz: float,
        meta: dict | None = None,
        flush_every_s: float = 1.0,
        sync_every_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.rate_hz = rate_hz
        self.samples = 0
        self.last_t_s: float | None = None
        self.healthy = True
        self.reason = ""
        self._flush_every_s = flush_every_s
        self._sync_every_s = sync_every_s
        self._next_flush_s: float | None = None
        self._next_sync_s: float | None = None
        self._last_button: bool | None = None
        header = header_line(rate_hz, meta) + "\n" + HEADER_ROW + "\n"
        try:
            self._file = open(self.path, "w", encoding="ascii", newline="\n", buffering=BUFFER_BYTES)
        except OSError as exc:
            raise RecordingError(f"cannot write the recording: {exc.strerror or exc}", path=self.path) from None
        try:
            self._file.write(header)
            self._file.flush()
        except OSError as exc:
            _close_quietly(self._file)  # a full disk: the file is not left open behind the error
            raise RecordingError(f"cannot write the recording: {exc.strerror or exc}", path=self.path) from None

    def write(self, sample: ImuSample) -> None:
        if not self.healthy:
            return
        t_s = sample.t_s
        g = sample.gravity_ms2
        a = sample.linear_acc_ms2
        try:
            self._file.write(
                f"{float(t_s)!r},{g[0]:.4f},{g[1]:.4f},{g[2]:.4f},{a[0]:.4f},{a[1]:.4f},{a[2]:.4f}\n"
            )
            self.samples += 1
            self.last_t_s = t_s
            if self._next_flush_s is None or self._next_sync_s is None:
                self._next_flush_s = t_s + self._flush_every_s
                self._next_sync_s = t_s + self._sync_every_s
            elif t_s >= self._next_flush_s:
                self._next_flush_s = t_s + self._flush_every_s
                self._file.flush()
                if t_s >= self._next_sync_s:
                    self._next_sync_s = t_s + self._sync_every_s
                    os.fsync(self._file.fileno())
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def button(self, t_s: float, pressed: bool) -> None:
        """Mark the button's state; only changes are written. Call it every tick or on change."""
        if not self.healthy or pressed == self._last_button:
            return
        if self._last_button is None and not pressed:
            self._last_button = False
            return
        self._last_button = pressed
        try:
            self._file.write(f"# button t={float(t_s)!r} pressed={int(pressed)}\n")
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def flush(self) -> None:
        if not self.healthy:
            return
        try:
            self._file.flush()
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def close(self) -> None:
        """Flush, sync and close. Safe to call twice, and from a signal handler's cleanup."""
        f = getattr(self, "_file", None)
        if f is None or f.closed:
            return
        try:
            f.flush()
            os.fsync(f.fileno())
        except (OSError, ValueError) as exc:
            if self.healthy:
                self._fail(exc)
        finally:
            try:
                f.close()
            except OSError:
                pass

    def _fail(self, exc: BaseException) -> None:
        self.healthy = False
        self.reason = f"writing {self.path} failed: {getattr(exc, 'strerror', None) or exc}"
        log.error("recording stopped, coaching goes on: %s", self.reason)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecordingImu:
    """An Imu that records every sample it reads from another: ``RecordingImu(imu, writer)``."""

    def __init__(self, imu: Imu, writer: RecordingWriter) -> None:
        self.imu = imu
        self.writer = writer

    def read(self) -> ImuSample:
        sample = self.imu.read()
        self.writer.write(sample)
        return sample

    def reset(self) -> None:
        self.imu.reset()

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.imu.close()


class RecordingButton:
    """A Button that marks its state changes in the recording: ``RecordingButton(button, writer)``.

    A change is stamped with the time of the last recorded sample (the loop
    polls the button after the tick's sample), so a replay sees the press at
    the same tick.
    """

    def __init__(self, button, writer: RecordingWriter) -> None:
        self.button = button
        self.writer = writer

    @property
    def is_pressed(self) -> bool:
        pressed = bool(self.button.is_pressed)
        if self.writer.last_t_s is not None:
            self.writer.button(self.writer.last_t_s, pressed)
        return pressed

    def close(self) -> None:
        self.button.close()


def attach_recording(loop, writer: RecordingWriter) -> None:
    """Wire ``writer`` into a ``CoachLoop`` before it runs: every sample read, and the button's changes."""
    loop.imu = RecordingImu(loop.imu, writer)
    if loop.button is not None:
        loop.button = RecordingButton(loop.button, writer)
