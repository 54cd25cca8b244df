"""The history store: sessions, bouts, cues and pain reports in SQLite, crash-safe.

``Store`` is an event sink for the loop that never blocks the tick: ``store(event)``
and ``progress(snapshot, wall_time)`` only put the item on a queue, waking nobody
(a woken writer wants the GIL in the middle of the tick); a writer thread wakes
on its own every :data:`POLL_S` (at once for ``flush`` and ``close``), owns the
connection, applies items inside a transaction and commits every
``commit_every_s`` (2 s). Each item carries the WallClock's reading taken
by the put, on the tick that made it: the writer dates it with that reading, so
when it gets to the item (woken at once, after a lock, behind a simulation far
ahead) changes nothing. The running session's
walk time and steps are written from the progress snapshots (about once a second), so a ``kill -9``
loses at most the last couple of seconds. With ``journal_mode=WAL`` and
``synchronous=NORMAL`` a commit does not fsync; every ``durable_every_s``
(10 s) the writer runs a passive checkpoint, which syncs the WAL, so a power
cut loses at most about that much (well inside the 30 s the design allows),
with a few page writes every 10 s for the SD card.

At the next start ``Store.open`` closes a session the last run left open
(``closed_by='recovered_after_crash'``, ended at its last write), unless a restart
carries it over (``resume_session_id``, :mod:`device.saved_state`): then the same
row is opened again. A corrupt or unwritable database makes the store
unavailable: one log line, ``healthy`` is False, ``reason`` says why (for
status), every call becomes a no-op and coaching carries on. Nothing here raises
into the loop.

A database locked by another program for longer than the busy timeout (5 s), at
open or mid-walk, is not a broken one: the store is ``retrying`` (``health()``,
shown by `walkcoach status` and systemd's status line), keeps every event queued
(the transaction lost to the lock is rolled back, the writer's own state restored
and its items applied again), retries with backoff and is ``ok`` again once it
commits. Past :data:`MAX_QUEUED` waiting items, events are counted
(``dropped``) and reported, never silently lost.

Times: events carry the loop's monotonic seconds. With a :class:`WallClock`
(the belt) the store maps them to the host's monotonic clock and dates them with
the current ``wall - monotonic`` offset; each session row keeps the boot id,
that offset and whether the clock was synchronized, plausible or not to be
trusted (:mod:`device.clock_trust`). The writer judges the clock's reading that
comes with each item (an event, the progress snapshot about once a second): when it becomes trusted,
or moves while not synchronized, this boot's sessions not dated by a
synchronized clock are shifted to the new offset. While the clock is not
trusted the plan's today is the last date the history knows. Without a
WallClock (the simulator, tests) loop time is mapped to the wall time given at
open, re-anchored when a progress snapshot's wall time jumps.

Schema (``PRAGMA user_version = 2``; v1 files gain the three dating columns),
wall times as ISO 8601 with the local UTC offset, ``date`` the local date a
session started:

    sessions(id, started, date, ended, updated, walk_s, steps, cap_s, planned_cap_s,
             pain_reports, closed_by, boot_id, mono_offset_s, clock)
    bouts(id, session_id, started, ended, steps, cadence_spm, step_time_cv,
          step_length_m, speed_ms, mean_lean_deg, peak_lean_deg)
    cues(id, session_id, time, kind, why)
    pain_reports(id, session_id, time)
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from walkcoach.device.core.events import Event, EventKind
from walkcoach.device.core.plan import EARLIEST_PLAUSIBLE_DATE, SessionRecord, effective_plan
from walkcoach.device.core.settings import PlanSettings
from walkcoach.device.shell.clock_trust import PLAUSIBLE, SYNCHRONIZED, UNSYNCHRONIZED, ClockReading, Trust, WallClock

log = logging.getLogger("walkcoach.store")

DB_NAME = "history.sqlite3"
SCHEMA_VERSION = 2
MAX_QUEUED = 100_000  # far more than hours of events; beyond it items are counted and reported, not the loop blocked
BUSY_TIMEOUT_S = 5.0  # sqlite waits this long for another connection's lock before saying "locked"
RETRY_START_S = 1.0  # then the writer retries, backing off to RETRY_MAX_S, keeping every event queued
RETRY_MAX_S = 15.0
WALL_JUMP_S = 5.0  # a progress wall time this far from the mapped one re-anchors the mapping
POLL_S = 0.5  # the writer looks at its queue this often (flush and close wake it at once)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    date TEXT NOT NULL,
    ended TEXT,
    updated TEXT NOT NULL,
    walk_s REAL NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    cap_s REAL,
    planned_cap_s REAL,
    pain_reports INTEGER NOT NULL DEFAULT 0,
    closed_by TEXT CHECK (closed_by IN ('session_end', 'shutdown', 'recovered_after_crash')),
    boot_id TEXT,
    mono_offset_s REAL,
    clock TEXT
);
CREATE INDEX IF NOT EXISTS sessions_date ON sessions(date);
CREATE TABLE IF NOT EXISTS bouts (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    started TEXT NOT NULL,
    ended TEXT NOT NULL,
    steps INTEGER NOT NULL,
    cadence_spm REAL,
    step_time_cv REAL,
    step_length_m REAL,
    speed_ms REAL,
    mean_lean_deg REAL,
    peak_lean_deg REAL
);
CREATE INDEX IF NOT EXISTS bouts_session ON bouts(session_id);
CREATE TABLE IF NOT EXISTS cues (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    why TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cues_session ON cues(session_id);
CREATE TABLE IF NOT EXISTS pain_reports (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    time TEXT NOT NULL
);
"""


def default_state_dir() -> Path:
    """``$WALKCOACH_STATE_DIR``, else ``$STATE_DIRECTORY`` (systemd's StateDirectory=), else XDG state home."""
    for name in ("WALKCOACH_STATE_DIR", "STATE_DIRECTORY"):
        value = os.environ.get(name)
        if value:
            return Path(value.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "walkcoach"


def db_path(location: Path | str) -> Path:
    """The database file for a state directory (or the file itself if a file name is given)."""
    location = Path(location)
    if location.suffix in (".sqlite3", ".sqlite", ".db"):
        return location
    return location / DB_NAME


def iso_local(wall_s: float) -> str:
    return dt.datetime.fromtimestamp(wall_s).astimezone().isoformat(timespec="milliseconds")


def local_date(wall_s: float) -> dt.date:
    return dt.datetime.fromtimestamp(wall_s).astimezone().date()


def _optional(value) -> float | None:
    """A bout metric for SQL: None (NULL) if missing or not a finite number."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


_STOP = object()
_SNAPSHOT_FIELDS = (
    "_session_id", "_walk_s", "_steps", "_bout_walk_s", "_bout_steps", "_pain", "_cap_s", "_last_bout_end_wall",
    "_last_wall", "_plan_date", "_planned_cap_s", "_plan_settings", "plan_cap_s", "_offset_s", "_trust",
    "_session_planned_cap_s",
)


def _is_busy(exc: BaseException) -> bool:
    """Another connection holds the lock past the busy timeout: worth retrying, not a broken database."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class Store:
    """Event sink writing the history database from its own thread. See the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        mono_at_open: float,
        wall_at_open: float,
        planned_cap_s: float | None = None,
        plan_settings: PlanSettings | None = None,
        commit_every_s: float = 2.0,
        durable_every_s: float = 10.0,
        clock: WallClock | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        resume_session_id: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.healthy = False
        self.reason = "not opened"
        self.state = "unavailable"  # "ok" | "retrying" | "unavailable" (see health())
        self.retrying_since_wall: float | None = None
        self.dropped = 0
        self.recovered_sessions = 0
        self.resumed_session_id: int | None = None
        self.redated_sessions = 0
        self.plan_cap_s: float | None = None  # today's plan cap, recomputed by the writer after each session
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s
        self._resume_session_id = resume_session_id
        # loop time -> host monotonic -> wall: wall = t_s + _loop_to_host_s + _offset_s
        self._open_reading: ClockReading | None = None
        if clock is not None:
            self._loop_to_host_s = clock.monotonic() - mono_at_open
            self._open_reading = clock.reading()  # what the clock said at open, not when the writer connects
            self._offset_s = self._open_reading.offset_s
            self.boot_id = clock.boot_id
        else:  # a virtual mapping given by the caller (the simulator, tests)
            self._loop_to_host_s = 0.0
            self._offset_s = wall_at_open - mono_at_open
            self.boot_id = f"process-{uuid.uuid4()}"
        self._trust = Trust(PLAUSIBLE, "mapped from the wall clock at open") if clock is None else Trust(UNSYNCHRONIZED, "not checked yet")
        self._last_stored_wall_s: float | None = None  # the latest session stored before this run
        self._last_known_date = EARLIEST_PLAUSIBLE_DATE
        self._planned_cap_s = planned_cap_s
        self._plan_settings = plan_settings
        self._commit_every_s = commit_every_s
        self._durable_every_s = durable_every_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._closing_deadline: float | None = None
        self._stop_wait = threading.Event()
        self._wake = threading.Event()  # set by flush() and close(), never by the loop's side
        # writer-thread state
        self._session_id: int | None = None
        self._walk_s = 0.0
        self._steps = 0
        self._bout_walk_s = 0.0
        self._bout_steps = 0
        self._pain = 0
        self._cap_s: float | None = None
        self._session_planned_cap_s: float | None = None
        self._last_bout_end_wall: float | None = None
        self._last_wall = self.wall_time(mono_at_open)
        self._plan_date: dt.date | None = None
        self._in_transaction = False
        self._pending: list = []  # items applied since BEGIN: replayed if the transaction is lost to a busy lock
        self._saved: dict = {}
        self._saved_cues: list[list] = []
        self._redo: collections.deque = collections.deque()
        self._sessionless_cues: list[list] = []  # [rowid, offset dated with] of this run, for re-dating

    # -- opening --------------------------------------------------------------
    @classmethod
    def open(
        cls,
        location: Path | str,
        *,
        mono_at_open: float,
        wall_at_open: float | None = None,
        planned_cap_s: float | None = None,
        plan_settings: PlanSettings | None = None,
        commit_every_s: float = 2.0,
        durable_every_s: float = 10.0,
        clock: WallClock | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        resume_session_id: int | None = None,
    ) -> Store:
        """Open (create, migrate, recover) the store at a state directory or database file. Never raises.

        A database locked by another process is retried from the writer thread (events are
        queued meanwhile); a corrupt or unwritable one makes the store unavailable."""
        store = cls(
            db_path(location),
            mono_at_open=mono_at_open,
            wall_at_open=time.time() if wall_at_open is None else wall_at_open,
            planned_cap_s=planned_cap_s,
            plan_settings=plan_settings,
            commit_every_s=commit_every_s,
            durable_every_s=durable_every_s,
            clock=clock,
            busy_timeout_s=busy_timeout_s,
            resume_session_id=resume_session_id,
        )
        try:
            store._connect()
        except (sqlite3.Error, OSError, ValueError) as exc:
            if not _is_busy(exc):
                store._fail(f"cannot use {store.path}: {_describe(exc)}")
                return store
            store._close_conn()
            store._mark_retrying(exc)
        else:
            store.state = "ok"
            store.reason = ""
        store.healthy = True
        store._thread = threading.Thread(target=store._run, name="walkcoach-store", daemon=True)
        store._thread.start()
        return store

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):  # sqlite opens these by name: refuse planted links
            candidate = self.path.with_name(self.path.name + suffix)
            if candidate.is_symlink():
                raise OSError(f"refusing {candidate}: it is a symbolic link (the history must be a regular file)")
        conn = sqlite3.connect(str(self.path), timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False)
        self._conn = conn
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"database is corrupt ({check})")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            log.warning("history store: journal mode %s instead of wal", mode)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"database schema v{version} is newer than this walkcoach (v{SCHEMA_VERSION})")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
            for name, kind in (("boot_id", "TEXT"), ("mono_offset_s", "REAL"), ("clock", "TEXT")):
                if name not in columns:  # v1 -> v2: how each session was dated, so it can be re-dated
                    conn.execute(f"ALTER TABLE sessions ADD COLUMN {name} {kind}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            resume = self._resume_session_id
            cursor = conn.execute(
                "UPDATE sessions SET ended = updated, closed_by = 'recovered_after_crash' WHERE closed_by IS NULL AND id IS NOT ?",
                (resume,),
            )
            self.recovered_sessions = cursor.rowcount
            if resume is not None:
                self._resume(resume)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        if self.recovered_sessions:
            log.info("history store: closed %d session(s) left open by the last run", self.recovered_sessions)
        self._read_last_stored()
        self._check_clock(None, None, initial=True)
        self._refresh_plan()

    def _resume(self, session_id: int) -> None:
        """Carry the session a restart interrupted on: the same row, open again (device.saved_state)."""
        conn = self._db
        row = conn.execute(
            "SELECT walk_s, steps, cap_s, pain_reports FROM sessions WHERE id = ? AND id = (SELECT max(id) FROM sessions)",
            (session_id,),
        ).fetchone()
        if row is None:
            log.info("history store: session %d to carry over is not the latest one; a new session starts", session_id)
            return
        conn.execute("UPDATE sessions SET ended = NULL, closed_by = NULL WHERE id = ?", (session_id,))
        bouts = conn.execute("SELECT started, ended, steps FROM bouts WHERE session_id = ?", (session_id,)).fetchall()
        self._session_id = session_id
        self._walk_s, self._steps, self._cap_s, self._pain = float(row[0] or 0), int(row[1] or 0), row[2], int(row[3] or 0)
        self._bout_walk_s = sum((_dt(b[1]) - _dt(b[0])).total_seconds() for b in bouts)
        self._bout_steps = sum(int(b[2]) for b in bouts)
        self.resumed_session_id = session_id

    def _read_last_stored(self) -> None:
        latest = None
        for (text,) in self._db.execute("SELECT updated FROM sessions"):
            when = _dt_or_none(text)
            if when is not None and when.date() >= EARLIEST_PLAUSIBLE_DATE and (latest is None or when > latest):
                latest = when
        if latest is not None:
            self._last_stored_wall_s = latest.timestamp()
            self._last_known_date = latest.astimezone().date()

    @property
    def _db(self) -> sqlite3.Connection:
        """The open connection (only the writer thread uses it, and only after ``_connect``)."""
        conn = self._conn
        if conn is None:
            raise sqlite3.ProgrammingError("history store: no open connection")
        return conn

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _fail(self, reason: str) -> None:
        was_healthy = self.healthy or self.reason == "not opened"
        self.healthy = False
        self.state = "unavailable"
        self.reason = reason
        if was_healthy:
            log.error("history store disabled, coaching goes on without it: %s", reason)
        self._close_conn()

    def _mark_retrying(self, exc: BaseException) -> None:
        why = f"{_describe(exc)} (another program holds the history's lock)"
        if self.state != "retrying":
            self.retrying_since_wall = time.time()
            log.warning("history store: %s; keeping events and retrying", why)
        self.state = "retrying"
        self.reason = why

    def _mark_ok(self) -> None:
        if self.state == "retrying":
            log.info("history store: writing again after %.0f s", time.time() - (self.retrying_since_wall or time.time()))
        self.state = "ok"
        self.reason = ""
        self.retrying_since_wall = None

    def health(self) -> dict:
        """For `walkcoach status`: ok / retrying since / unavailable, why, and what waits or was dropped."""
        return {
            "state": self.state,
            "why": self.reason or None,
            "since_wall": round(self.retrying_since_wall, 3) if self.retrying_since_wall is not None else None,
            "queued": self._queue.qsize() + len(self._redo),
            "dropped": self.dropped,
        }

    def clock(self) -> dict:
        """Whether the store trusts the wall clock it dates sessions with (device.clock_trust)."""
        return self._trust.to_json()

    @property
    def session_id(self) -> int | None:
        """The session row being written (the writer's; for the saved state of a restart)."""
        return self._session_id

    # -- the loop's side: never blocks, never raises ---------------------------
    def __call__(self, event: Event) -> None:
        if self.healthy:
            self._put(("event", event, self._read_clock()))

    store = __call__

    def progress(self, snapshot, wall_time: float | None = None, planned_cap_s: float | None = None) -> None:
        """The coach's snapshot (about once a second), without a WallClock the wall time it was taken
        at, and the plan's cap the coach holds (before a pain report's shortening): the session row
        keeps the caps the coach used, not the ones the store was told at open."""
        if self.healthy:
            self._put(("progress", snapshot, wall_time, planned_cap_s, self._read_clock()))

    def _read_clock(self) -> ClockReading | None:
        """The WallClock's reading on the caller's thread (the tick that made the item): the writer dates
        the item with it, however late it gets to it (a lock, a busy CPU, a simulation far ahead)."""
        clock = self._clock
        return None if clock is None else clock.tick_reading()

    def set_planned_cap(self, cap_s: float) -> None:
        """The plan's cap for sessions that start from now on."""
        if self.healthy:
            self._put(("cap", cap_s))

    def set_plan_settings(self, plan_settings: PlanSettings) -> None:
        """New plan settings (a config reload): the writer recomputes ``plan_cap_s`` from the history."""
        if self.healthy:
            self._put(("plan", plan_settings))

    def _put(self, item) -> None:
        if self._queue.qsize() >= MAX_QUEUED:
            if not self.dropped:
                log.error("history store: %d items wait (%s); further events are counted, not stored", MAX_QUEUED,
                          self.reason or "the writer is behind")
            self.dropped += 1
            return
        self._queue.put(item)

    @property
    def has_wall_clock(self) -> bool:
        """A WallClock reads the time on the writer's thread; without one, loop time is mapped to wall time."""
        return self._clock is not None

    def wall_time(self, t_s: float) -> float:
        """Wall-clock seconds (epoch) for a loop time, as the store currently believes the clock."""
        return t_s + self._loop_to_host_s + self._offset_s

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far is committed; False if the store is unhealthy or too slow."""
        if not self.healthy or self._thread is None:
            return False
        done = threading.Event()
        self._queue.put(("flush", done))
        self._wake.set()
        return done.wait(timeout_s) and self.healthy

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, close the open session ('shutdown') and the database. Safe to call twice.

        A store still retrying a lock keeps trying until ``timeout_s``, then says how much was not stored."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._closing_deadline = time.monotonic() + timeout_s * 0.8
            self._stop_wait.set()  # a retry waiting out its backoff tries once more now
            self._queue.put(_STOP)
            self._wake.set()
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("history store: writer did not finish within %.0f s", timeout_s)
                return
        self._close_conn()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the writer thread -----------------------------------------------------
    def _run(self) -> None:
        q = self._queue
        last_commit = last_durable = time.monotonic()
        delay_s = RETRY_START_S
        while True:
            if self.state == "retrying":
                if self._closing_deadline is not None and time.monotonic() > self._closing_deadline:
                    lost = q.qsize() + len(self._redo)
                    self._fail(f"still locked at shutdown: {lost} item(s) of this run's history not stored ({self.reason})")
                    self._drain(q)
                    return
                self._stop_wait.wait(delay_s if self._closing_deadline is None else 0.1)
                delay_s = min(RETRY_MAX_S, delay_s * 2)
                if self._conn is None:
                    try:
                        self._connect()
                    except (sqlite3.Error, OSError, ValueError) as exc:
                        self._close_conn()
                        if _is_busy(exc):
                            self._mark_retrying(exc)
                            continue
                        self._fail(f"cannot use {self.path}: {_describe(exc)}")
                        self._drain(q)
                        return
                    self._mark_ok()
            if self._redo:
                item = self._redo.popleft()
            else:
                now = time.monotonic()
                timeout = self._commit_every_s - (now - last_commit) if self._in_transaction else self._durable_every_s
                try:
                    item = q.get_nowait()
                except queue.Empty:  # wait on our own clock: put() never wakes this thread (module docstring)
                    self._wake.wait(min(POLL_S, max(0.01, timeout)))
                    self._wake.clear()
                    try:
                        item = q.get_nowait()
                    except queue.Empty:
                        item = None
            try:
                if item is _STOP:
                    self._pending_item(item)
                    self._close_session("shutdown", self._last_wall)
                    self._commit()
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._mark_ok()
                    return
                if item is not None:
                    kind = item[0]
                    if kind == "flush":
                        self._commit()
                        item[1].set()
                        continue
                    self._begin()
                    self._pending.append(item)
                    if kind == "event":
                        if item[2] is not None:
                            self._check_clock(item[1].t_s, None, item[2])
                        self._apply_event(item[1])
                    elif kind == "progress":
                        self._apply_progress(item[1], item[2], item[3], item[4])
                    elif kind == "cap":
                        self._planned_cap_s = item[1]
                    elif kind == "plan":
                        self._plan_settings = item[1]
                        self._commit()
                        self._refresh_plan()
                now = time.monotonic()
                if self._in_transaction and now - last_commit >= self._commit_every_s:
                    self._commit()
                    last_commit = now
                elif not self._in_transaction:
                    last_commit = now
                if now - last_durable >= self._durable_every_s:
                    self._commit()
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    last_durable = now
                if self.state == "retrying":  # the lock is free again: commit what was redone at once
                    self._commit()
                    self._mark_ok()
                    last_commit = now
                delay_s = RETRY_START_S
            except (sqlite3.Error, OSError) as exc:
                if _is_busy(exc):
                    self._redo.extendleft(reversed(self._rollback(item)))
                    self._mark_retrying(exc)
                    continue
                self._fail(f"writing {self.path} failed: {_describe(exc)}")
                self._drain(q)
                return
            except Exception as exc:  # a bug here must not take the history down silently
                self._fail(f"history store error: {type(exc).__name__}: {exc}")
                self._drain(q)
                return

    def _pending_item(self, item) -> None:
        self._begin()
        self._pending.append(item)

    def _rollback(self, item) -> list:
        """Undo the transaction lost to a busy lock; the items to apply again, in order (``item`` last)."""
        if self._in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._in_transaction = False
            for name, value in self._saved.items():
                setattr(self, name, value)
            self._sessionless_cues = [list(c) for c in self._saved_cues]
            items = self._pending
        else:
            items = []
        self._pending = []
        if item is not None and not any(entry is item for entry in items):
            items = items + [item]
        return items

    @staticmethod
    def _drain(q: queue.SimpleQueue) -> None:
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, tuple) and item[0] == "flush":
                item[1].set()

    def _begin(self) -> None:
        if not self._in_transaction:
            self._saved = {name: getattr(self, name) for name in _SNAPSHOT_FIELDS}
            self._saved_cues = [list(c) for c in self._sessionless_cues]
            self._pending = []
            self._db.execute("BEGIN")
            self._in_transaction = True

    def _commit(self) -> None:
        if self._in_transaction:
            self._db.execute("COMMIT")
            self._in_transaction = False
            self._pending = []

    def _apply_event(self, event: Event) -> None:
        kind = event.kind
        wall = self.wall_time(event.t_s)
        self._last_wall = max(self._last_wall, wall)
        conn = self._db
        if event.cue is not None:  # first: a session_ended below commits, and the cue belongs to this transaction
            if self._session_id is None and kind in (EventKind.WALK_STARTED, EventKind.PAIN_REPORTED):
                self._open_session(wall)
            cursor = conn.execute(
                "INSERT INTO cues (session_id, time, kind, why) VALUES (?, ?, ?, ?)",
                (self._session_id, iso_local(wall), event.cue.value, event.why),
            )
            if self._session_id is None:
                self._sessionless_cues.append([cursor.lastrowid, self._offset_s])
        if kind is EventKind.WALK_STARTED:
            if self._session_id is None:
                self._open_session(wall)
        elif kind is EventKind.WALK_ENDED and event.bout is not None:
            bout = event.bout
            if self._session_id is None:
                self._open_session(self.wall_time(bout.start_s))
            conn.execute(
                "INSERT INTO bouts (session_id, started, ended, steps, cadence_spm, step_time_cv, step_length_m,"
                " speed_ms, mean_lean_deg, peak_lean_deg) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._session_id,
                    iso_local(self.wall_time(bout.start_s)),
                    iso_local(self.wall_time(bout.end_s)),
                    bout.steps,
                    _optional(bout.cadence_spm),
                    _optional(bout.step_time_cv),
                    _optional(getattr(bout, "step_length_m", None)),
                    _optional(getattr(bout, "speed_m_s", None)),
                    _optional(getattr(bout, "mean_lean_deg", None)),
                    _optional(getattr(bout, "peak_lean_deg", None)),
                ),
            )
            self._bout_walk_s += bout.end_s - bout.start_s
            self._bout_steps += bout.steps
            self._walk_s = max(self._walk_s, self._bout_walk_s)
            self._steps = max(self._steps, self._bout_steps)
            self._last_bout_end_wall = self.wall_time(bout.end_s)
            self._write_session(wall)
        elif kind is EventKind.PAIN_REPORTED:
            if self._session_id is None:
                self._open_session(wall)
            conn.execute("INSERT INTO pain_reports (session_id, time) VALUES (?, ?)", (self._session_id, iso_local(wall)))
            self._pain += 1
            self._write_session(wall)
        elif kind is EventKind.SESSION_ENDED:
            end_wall = self._last_bout_end_wall if self._last_bout_end_wall is not None else wall
            self._close_session("session_end", end_wall)

    def _apply_progress(self, snapshot, wall_time: float | None, planned_cap_s: float | None = None,
                        reading: ClockReading | None = None) -> None:
        self._check_clock(snapshot.t_s, wall_time, reading)
        wall = self.wall_time(snapshot.t_s)
        self._last_wall = wall
        if self._plan_today() != self._plan_date:
            self._commit()
            self._refresh_plan()
        if self._session_id is None or not snapshot.session_started:
            return
        self._walk_s = max(self._bout_walk_s, snapshot.walk_s)
        self._steps = max(self._bout_steps, snapshot.steps)
        self._cap_s = snapshot.cap_s
        if planned_cap_s is not None:
            self._session_planned_cap_s = planned_cap_s
        self._write_session(wall)

    # -- the wall clock: trust and re-dating (device.clock_trust) -----------------
    def _check_clock(self, t_s: float | None, wall_hint: float | None, reading: ClockReading | None = None, *,
                     initial: bool = False) -> None:
        """``reading``: the WallClock as the tick that made the item read it (at open: the open's reading)."""
        clock = self._clock
        if clock is not None:
            if reading is None:
                reading = self._open_reading if initial and self._open_reading is not None else clock.reading()
            offset = reading.offset_s
            trust = clock.judge(reading, self._last_stored_wall_s)
        elif wall_hint is not None and t_s is not None:
            offset = wall_hint - (t_s + self._loop_to_host_s)
            trust = self._trust
        else:
            return
        moved = abs(offset - self._offset_s) > WALL_JUMP_S
        if initial:
            self._offset_s, self._trust = offset, trust
            if not trust.trusted:
                log.warning("history store: wall clock not trusted (%s); sessions are re-dated once it is", trust.why)
            return
        if not moved and trust.level == self._trust.level:
            return
        if moved:
            log.info("history store: wall clock moved by %+.0f s (%s)", offset - self._offset_s, trust.why)
        elif trust.trusted and not self._trust.trusted:
            log.info("history store: wall clock trusted now (%s)", trust.why)
        self._offset_s, self._trust = offset, trust
        if trust.trusted:
            self._redate(offset, trust.level)

    def _redate(self, offset: float, level: str) -> None:
        """Shift the rows of this boot's sessions not dated by a synchronized clock to ``offset``."""
        conn = self._db
        self._begin()
        rows = conn.execute(
            "SELECT id, mono_offset_s FROM sessions WHERE boot_id = ? AND (clock IS NULL OR clock != ?)",
            (self.boot_id, SYNCHRONIZED),
        ).fetchall()
        for session_id, old_offset in rows:
            delta = offset - (old_offset if old_offset is not None else offset)
            if abs(delta) > WALL_JUMP_S:
                self._shift_session(session_id, delta)
                self.redated_sessions += 1
                if session_id == self._session_id and self._last_bout_end_wall is not None:
                    self._last_bout_end_wall += delta
            conn.execute("UPDATE sessions SET mono_offset_s = ?, clock = ? WHERE id = ?", (offset, level, session_id))
        for cue in self._sessionless_cues:
            delta = offset - cue[1]
            if abs(delta) > WALL_JUMP_S:
                self._shift(conn, "cues", ("time",), "id", cue[0], delta)
                cue[1] = offset
        if rows:
            log.info("history store: %d session(s) of this boot dated by the corrected clock", len(rows))
        self._commit()
        self._refresh_plan()

    def _shift_session(self, session_id: int, delta: float) -> None:
        conn = self._db
        self._shift(conn, "sessions", ("started", "ended", "updated"), "id", session_id, delta)
        started = conn.execute("SELECT started FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
        conn.execute("UPDATE sessions SET date = ? WHERE id = ?", (_dt(started).date().isoformat(), session_id))
        self._shift(conn, "bouts", ("started", "ended"), "session_id", session_id, delta)
        self._shift(conn, "cues", ("time",), "session_id", session_id, delta)
        self._shift(conn, "pain_reports", ("time",), "session_id", session_id, delta)

    @staticmethod
    def _shift(conn, table: str, columns: tuple[str, ...], key: str, value: int, delta: float) -> None:
        for row in conn.execute(f"SELECT id, {', '.join(columns)} FROM {table} WHERE {key} = ?", (value,)).fetchall():
            moved = [iso_local(_dt(text).timestamp() + delta) if text is not None else None for text in row[1:]]
            conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?", (*moved, row[0]))

    def _plan_today(self) -> dt.date:
        """The plan's today: the clock's date when trusted, else the last date the history knows."""
        if self._trust.trusted:
            return local_date(self._last_wall)
        return self._last_known_date

    def _open_session(self, wall: float) -> None:
        cap = self._planned_cap_s
        cursor = self._db.execute(
            "INSERT INTO sessions (started, date, updated, walk_s, steps, cap_s, planned_cap_s, pain_reports,"
            " boot_id, mono_offset_s, clock) VALUES (?, ?, ?, 0, 0, ?, ?, 0, ?, ?, ?)",
            (iso_local(wall), local_date(wall).isoformat(), iso_local(wall), cap, cap, self.boot_id, self._offset_s,
             self._trust.level),
        )
        self._session_id = cursor.lastrowid
        self._walk_s = self._bout_walk_s = 0.0
        self._steps = self._bout_steps = 0
        self._pain = 0
        self._cap_s = cap
        self._session_planned_cap_s = cap
        self._last_bout_end_wall = None

    def _write_session(self, wall: float) -> None:
        self._db.execute(
            "UPDATE sessions SET walk_s = ?, steps = ?, cap_s = ?, planned_cap_s = ?, pain_reports = ?, updated = ?"
            " WHERE id = ?",
            (self._walk_s, self._steps, self._cap_s, self._session_planned_cap_s, self._pain, iso_local(wall),
             self._session_id),
        )

    def _close_session(self, closed_by: str, wall: float) -> None:
        if self._session_id is None:
            return
        self._begin()
        self._write_session(wall)
        self._db.execute(
            "UPDATE sessions SET ended = ?, closed_by = ? WHERE id = ?", (iso_local(wall), closed_by, self._session_id)
        )
        self._session_id = None
        self._commit()
        self._refresh_plan()

    def _refresh_plan(self) -> None:
        today = self._plan_today()
        self._plan_date = today
        if self._plan_settings is None:
            return
        sessions = read_sessions(self._db)
        self.plan_cap_s = effective_plan(self._plan_settings, sessions, today).cap_s


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return f"{text} (the file is damaged or not a walkcoach database; move it away to start a new history)"
    return text


# -- the loop hook ---------------------------------------------------------------
class StoreProgress:
    """``CoachLoop(on_tick=...)``: hands the store a snapshot every ``every_s`` and
    gives the coach the plan's cap when the store recomputes it (a session ended
    with pain, a new day, the clock trusted at last). A new cap is handed over only
    while no session runs: a running session's cap never changes because the clock
    jumped or the date turned. ``wall_clock`` is ``time.time`` on the belt without a
    WallClock in the store; None maps loop time to wall time (the simulator's
    virtual clock) or lets the store's WallClock read the time on its own thread."""

    def __init__(self, store: Store, coach, *, every_s: float = 1.0, wall_clock: Callable[[], float] | None = time.time) -> None:
        self.store = store
        self.coach = coach
        self.every_s = every_s
        self.wall_clock = wall_clock
        self._next_s = -float("inf")
        self._cap_s = store.plan_cap_s
        self._store_cap_s: float | None = None

    def reoffer_cap(self) -> None:
        """Hand the plan's cap over again at the next chance (a carried-over session had its own)."""
        self._cap_s = None

    def __call__(self, now_s: float, snap=None) -> None:
        """``snap``: the coach's snapshot at ``now_s`` if the caller took one already (the service shares its own)."""
        if now_s < self._next_s:
            return
        self._next_s = now_s + self.every_s
        store = self.store
        if not store.healthy:
            return
        if snap is None:
            snap = self.coach.snapshot(now_s)
        if self.wall_clock is not None:
            wall = self.wall_clock()
        elif not store.has_wall_clock:
            wall = store.wall_time(now_s)
        else:
            wall = None
        cap = store.plan_cap_s
        if cap is not None and cap != self._cap_s and not snap.session_started:
            self._cap_s = cap
            self.coach.set_planned_cap(cap)
        planned = _coach_planned_cap_s(self.coach)
        if planned is not None and planned != self._store_cap_s:
            self._store_cap_s = planned  # a reload or a new day changed it: new sessions start with it
            store.set_planned_cap(planned)
        store.progress(snap, wall, planned)


def _coach_planned_cap_s(coach) -> float | None:
    return getattr(coach, "planned_cap_s", None)  # (a stand-in coach in a test may hold no plan)


def attach_store(loop, store: Store, *, wall_clock: Callable[[], float] | None = time.time, every_s: float = 1.0) -> StoreProgress:
    """Wire ``store`` into a ``CoachLoop`` before it runs: as an event sink, with the progress
    hook on ``on_tick`` (chained after any hook already there), and with the plan's cap for
    today given to the coach."""
    loop.sinks.append(store)
    hook = StoreProgress(store, loop.coach, every_s=every_s, wall_clock=wall_clock)
    previous = loop.on_tick
    if previous is None:
        loop.on_tick = hook
    else:
        def on_tick(now_s: float) -> None:
            previous(now_s)
            hook(now_s)

        loop.on_tick = on_tick
    if store.plan_cap_s is not None:
        loop.coach.set_planned_cap(store.plan_cap_s)
        hook._cap_s = store.plan_cap_s
    planned = _coach_planned_cap_s(loop.coach)
    if planned is not None:  # the first session opens with the cap the coach holds, not the one given at open
        store.set_planned_cap(planned)
        hook._store_cap_s = planned
    return hook


# -- reading (the history, plan and report commands) ----------------------------
class BoutRecord(NamedTuple):
    session_id: int | None
    started: dt.datetime
    ended: dt.datetime
    steps: int
    cadence_spm: float | None
    step_time_cv: float | None
    step_length_m: float | None
    speed_m_s: float | None  # the bouts table calls it speed_ms (kept for existing databases)
    mean_lean_deg: float | None
    peak_lean_deg: float | None

    @property
    def duration_s(self) -> float:
        return (self.ended - self.started).total_seconds()


class CueRecord(NamedTuple):
    session_id: int | None
    time: dt.datetime
    kind: str
    why: str


def _dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _dt_or_none(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _select(conn: sqlite3.Connection, sql: str, since_clause: str, since: dt.date | None, order_by: str) -> list:
    """Rows of ``sql``, limited to ``since`` (every ``?`` of ``since_clause`` is that date) and ordered."""
    args: tuple = ()
    if since is not None:
        sql += f" WHERE {since_clause}"
        args = (since.isoformat(),) * since_clause.count("?")
    return conn.execute(f"{sql} ORDER BY {order_by}", args).fetchall()


def read_sessions(conn: sqlite3.Connection, since: dt.date | None = None) -> list[SessionRecord]:
    sql = (
        "SELECT id, started, date, ended, walk_s, steps, cap_s, planned_cap_s, pain_reports, closed_by FROM sessions"
    )
    rows = _select(conn, sql, "date >= ?", since, "started, id")
    return [
        SessionRecord(
            id=row[0],
            started=_dt(row[1]),
            date=dt.date.fromisoformat(row[2]),
            ended=_dt_or_none(row[3]),
            walk_s=float(row[4] or 0.0),
            steps=int(row[5] or 0),
            cap_s=float(row[6]) if row[6] is not None else 0.0,
            planned_cap_s=float(row[7]) if row[7] is not None else 0.0,
            pain_reports=int(row[8] or 0),
            closed_by=row[9],
        )
        for row in rows
    ]


def read_bouts(conn: sqlite3.Connection, since: dt.date | None = None) -> list[BoutRecord]:
    sql = (
        "SELECT b.session_id, b.started, b.ended, b.steps, b.cadence_spm, b.step_time_cv, b.step_length_m,"
        " b.speed_ms, b.mean_lean_deg, b.peak_lean_deg FROM bouts b LEFT JOIN sessions s ON s.id = b.session_id"
    )
    rows = _select(conn, sql, "s.date >= ?", since, "b.started, b.id")
    return [BoutRecord(row[0], _dt(row[1]), _dt(row[2]), *row[3:]) for row in rows]


def read_cues(conn: sqlite3.Connection, since: dt.date | None = None) -> list[CueRecord]:
    sql = "SELECT c.session_id, c.time, c.kind, c.why FROM cues c LEFT JOIN sessions s ON s.id = c.session_id"
    rows = _select(conn, sql, "s.date >= ? OR (c.session_id IS NULL AND substr(c.time, 1, 10) >= ?)", since, "c.time, c.id")
    return [CueRecord(row[0], _dt(row[1]), row[2], row[3]) for row in rows]


class HistoryUnavailable(Exception):
    """Reading the history failed (corrupt file, wrong schema); the message says why."""


READ_ACCESS_HINT = ("add yourself to the group walkcoach (sudo usermod -aG walkcoach $USER, then log in again), "
                    "or use sudo")


def open_for_reading(location: Path | str) -> sqlite3.Connection | None:
    """A connection to read the history, or None if there is no history yet. Raises HistoryUnavailable.

    Never writes and never creates anything. A reader that may not write in the state
    directory (an operator in the service's group) opens a WAL database ``mode=ro``,
    which works while the service runs (its ``-wal`` and ``-shm`` are group-readable:
    the unit's UMask=0027). With the service stopped there is no ``-wal`` (it is
    checkpointed away at close) and ``mode=ro`` cannot create the ``-shm``: then the
    file is complete and nobody writes it, so it is opened ``immutable``.
    """
    path = db_path(location)
    try:
        if path.is_symlink():  # `sudo walkcoach history` must not read a file planted as a link
            raise HistoryUnavailable(f"refusing {path}: it is a symbolic link (the history must be a regular file)")
        if not path.exists():
            return None
    except PermissionError:
        raise HistoryUnavailable(f"cannot read {path}: permission denied on {path.parent}; {READ_ACCESS_HINT}") from None
    if not os.access(path, os.R_OK):
        raise HistoryUnavailable(f"cannot read {path}: permission denied; {READ_ACCESS_HINT}")
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=5.0)
        try:
            conn.execute("SELECT count(*) FROM sessions").fetchone()
        except sqlite3.OperationalError as exc:
            conn.close()
            wal = path.with_name(path.name + "-wal")
            if wal.exists() or os.access(path.parent, os.W_OK):
                raise
            log.debug("history: %s (%s); no writer: reading it as immutable", path, exc)
            conn = sqlite3.connect(uri + "?immutable=1", uri=True, timeout=5.0)
            conn.execute("SELECT count(*) FROM sessions").fetchone()
    except sqlite3.Error as exc:
        hint = f"; {READ_ACCESS_HINT}" if "readonly" in str(exc) or "unable to open" in str(exc) else ""
        raise HistoryUnavailable(f"cannot read {path}: {_describe(exc)}{hint}") from None
    return conn


def load_sessions(location: Path | str, since: dt.date | None = None) -> list[SessionRecord]:
    """All sessions (since ``since``) from the store at ``location``; [] if there is none yet."""
    conn = open_for_reading(location)
    if conn is None:
        return []
    try:
        return read_sessions(conn, since)
    except sqlite3.Error as exc:
        raise HistoryUnavailable(f"cannot read {db_path(location)}: {_describe(exc)}") from None
    finally:
        conn.close()
