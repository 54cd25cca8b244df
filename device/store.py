"""The history store: sessions, bouts, cues and pain reports in SQLite, crash-safe.

``Store`` is an event sink for the loop that never blocks the tick: ``store(event)``
and ``progress(snapshot, wall_time)`` only put the item on a queue; a writer
thread owns the connection, applies items inside a transaction and commits
every ``commit_every_s`` (2 s). The running session's walk time and steps are
written from the progress snapshots (about once a second), so a ``kill -9``
loses at most the last couple of seconds. With ``journal_mode=WAL`` and
``synchronous=NORMAL`` a commit does not fsync; every ``durable_every_s``
(10 s) the writer runs a passive checkpoint, which syncs the WAL, so a power
cut loses at most about that much (well inside the 30 s the design allows),
with a few page writes every 10 s for the SD card.

At the next start ``Store.open`` closes a session the last run left open
(``closed_by='recovered_after_crash'``, ended at its last write). A corrupt or
unwritable database makes the store unhealthy: one log line, ``healthy`` is
False, ``reason`` says why (for status), every call becomes a no-op and
coaching carries on. Nothing here raises into the loop.

Times: events carry the loop's monotonic seconds; the store maps them to wall
time with the offset captured at open, ``wall = wall_at_open + (t_s -
mono_at_open)``. A progress snapshot carries the wall time too, and if the wall
clock has jumped (a Pi without a real-time clock setting its time from NTP
after boot) the mapping is re-anchored to it.

Schema (``PRAGMA user_version = 1``), wall times as ISO 8601 with the local
UTC offset, ``date`` the local date a session started:

    sessions(id, started, date, ended, updated, walk_s, steps, cap_s, planned_cap_s,
             pain_reports, closed_by)
    bouts(id, session_id, started, ended, steps, cadence_spm, step_time_cv,
          step_length_m, speed_ms, mean_lean_deg, peak_lean_deg)
    cues(id, session_id, time, kind, why)
    pain_reports(id, session_id, time)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

from .events import Event, EventKind
from .plan import SessionRecord, effective_plan
from .settings import PlanSettings

log = logging.getLogger("walkcoach.store")

DB_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
MAX_QUEUED = 100_000  # far more than hours of events; beyond it items are dropped, not the loop blocked
WALL_JUMP_S = 5.0  # a progress wall time this far from the mapped one re-anchors the mapping

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
    closed_by TEXT CHECK (closed_by IN ('session_end', 'shutdown', 'recovered_after_crash'))
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
    ) -> None:
        self.path = Path(path)
        self.healthy = False
        self.reason = "not opened"
        self.dropped = 0
        self.recovered_sessions = 0
        self.plan_cap_s: float | None = None  # today's plan cap, recomputed by the writer after each session
        self._mono_at_open = mono_at_open
        self._wall_at_open = wall_at_open
        self._planned_cap_s = planned_cap_s
        self._plan_settings = plan_settings
        self._commit_every_s = commit_every_s
        self._durable_every_s = durable_every_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
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
        self._last_wall = wall_at_open
        self._plan_date: dt.date | None = None
        self._in_transaction = False

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
    ) -> Store:
        """Open (create, migrate, recover) the store at a state directory or database file. Never raises."""
        store = cls(
            db_path(location),
            mono_at_open=mono_at_open,
            wall_at_open=time.time() if wall_at_open is None else wall_at_open,
            planned_cap_s=planned_cap_s,
            plan_settings=plan_settings,
            commit_every_s=commit_every_s,
            durable_every_s=durable_every_s,
        )
        try:
            store._connect()
        except (sqlite3.Error, OSError, ValueError) as exc:
            store._fail(f"cannot use {store.path}: {_describe(exc)}")
            return store
        store.healthy = True
        store.reason = ""
        store._thread = threading.Thread(target=store._run, name="walkcoach-store", daemon=True)
        store._thread.start()
        return store

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None, check_same_thread=False)
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
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        cursor = conn.execute(
            "UPDATE sessions SET ended = updated, closed_by = 'recovered_after_crash' WHERE closed_by IS NULL"
        )
        self.recovered_sessions = cursor.rowcount
        conn.execute("COMMIT")
        if self.recovered_sessions:
            log.info("history store: closed %d session(s) left open by the last run", self.recovered_sessions)
        self._refresh_plan(local_date(self._wall_at_open))

    def _fail(self, reason: str) -> None:
        was_healthy = self.healthy or self.reason == "not opened"
        self.healthy = False
        self.reason = reason
        if was_healthy:
            log.error("history store disabled, coaching goes on without it: %s", reason)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    # -- the loop's side: never blocks, never raises ---------------------------
    def __call__(self, event: Event) -> None:
        if self.healthy:
            self._put(("event", event))

    store = __call__

    def progress(self, snapshot, wall_time: float, planned_cap_s: float | None = None) -> None:
        """The coach's snapshot (about once a second), the wall time it was taken at, and the
        plan's cap the coach holds (before a pain report's shortening): the session row keeps
        the caps the coach used, not the ones the store was told at open."""
        if self.healthy:
            self._put(("progress", snapshot, wall_time, planned_cap_s))

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
            self.dropped += 1
            return
        self._queue.put(item)

    def wall_time(self, t_s: float) -> float:
        """Wall-clock seconds (epoch) for a loop time."""
        return self._wall_at_open + (t_s - self._mono_at_open)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued so far is committed; False if the store is unhealthy or too slow."""
        if not self.healthy or self._thread is None:
            return False
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(timeout_s) and self.healthy

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush, close the open session ('shutdown') and the database. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("history store: writer did not finish within %.0f s", timeout_s)
                return
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the writer thread -----------------------------------------------------
    def _run(self) -> None:
        q = self._queue
        last_commit = last_durable = time.monotonic()
        while True:
            now = time.monotonic()
            timeout = self._commit_every_s - (now - last_commit) if self._in_transaction else self._durable_every_s
            try:
                item = q.get(timeout=max(0.01, timeout))
            except queue.Empty:
                item = None
            try:
                if item is _STOP:
                    self._close_session("shutdown", self._last_wall)
                    self._commit()
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    return
                if item is not None:
                    kind = item[0]
                    if kind == "flush":
                        self._commit()
                        item[1].set()
                        continue
                    self._begin()
                    if kind == "event":
                        self._apply_event(item[1])
                    elif kind == "progress":
                        self._apply_progress(item[1], item[2], item[3])
                    elif kind == "cap":
                        self._planned_cap_s = item[1]
                    elif kind == "plan":
                        self._plan_settings = item[1]
                        self._commit()
                        self._refresh_plan(self._plan_date or local_date(self._last_wall))
                now = time.monotonic()
                if self._in_transaction and now - last_commit >= self._commit_every_s:
                    self._commit()
                    last_commit = now
                elif not self._in_transaction:
                    last_commit = now
                if now - last_durable >= self._durable_every_s:
                    self._commit()
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    last_durable = now
            except (sqlite3.Error, OSError) as exc:
                self._fail(f"writing {self.path} failed: {_describe(exc)}")
                self._drain(q)
                return
            except Exception as exc:  # a bug here must not take the history down silently
                self._fail(f"history store error: {type(exc).__name__}: {exc}")
                self._drain(q)
                return

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
            self._conn.execute("BEGIN")
            self._in_transaction = True

    def _commit(self) -> None:
        if self._in_transaction:
            self._conn.execute("COMMIT")
            self._in_transaction = False

    def _apply_event(self, event: Event) -> None:
        kind = event.kind
        wall = self.wall_time(event.t_s)
        self._last_wall = max(self._last_wall, wall)
        conn = self._conn
        if kind is EventKind.WALK_STARTED:
            if self._session_id is None:
                bout_start = wall
                self._open_session(bout_start)
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
                    _optional(getattr(bout, "speed_ms", None)),
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
        if event.cue is not None:
            conn.execute(
                "INSERT INTO cues (session_id, time, kind, why) VALUES (?, ?, ?, ?)",
                (self._session_id, iso_local(wall), event.cue.value, event.why),
            )

    def _apply_progress(self, snapshot, wall_time: float, planned_cap_s: float | None = None) -> None:
        mapped = self.wall_time(snapshot.t_s)
        if abs(wall_time - mapped) > WALL_JUMP_S:
            log.info("history store: wall clock moved by %+.0f s; re-anchoring", wall_time - mapped)
            self._wall_at_open = wall_time - (snapshot.t_s - self._mono_at_open)
        self._last_wall = wall_time
        today = local_date(wall_time)
        if self._plan_date is not None and today != self._plan_date:
            self._commit()
            self._refresh_plan(today)
        if self._session_id is None or not snapshot.session_started:
            return
        self._walk_s = max(self._bout_walk_s, snapshot.walk_s)
        self._steps = max(self._bout_steps, snapshot.steps)
        self._cap_s = snapshot.cap_s
        if planned_cap_s is not None:
            self._session_planned_cap_s = planned_cap_s
        self._write_session(wall_time)

    def _open_session(self, wall: float) -> None:
        cap = self._planned_cap_s
        cursor = self._conn.execute(
            "INSERT INTO sessions (started, date, updated, walk_s, steps, cap_s, planned_cap_s, pain_reports)"
            " VALUES (?, ?, ?, 0, 0, ?, ?, 0)",
            (iso_local(wall), local_date(wall).isoformat(), iso_local(wall), cap, cap),
        )
        self._session_id = cursor.lastrowid
        self._walk_s = self._bout_walk_s = 0.0
        self._steps = self._bout_steps = 0
        self._pain = 0
        self._cap_s = cap
        self._session_planned_cap_s = cap
        self._last_bout_end_wall = None

    def _write_session(self, wall: float) -> None:
        self._conn.execute(
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
        self._conn.execute(
            "UPDATE sessions SET ended = ?, closed_by = ? WHERE id = ?", (iso_local(wall), closed_by, self._session_id)
        )
        self._session_id = None
        self._commit()
        self._refresh_plan(local_date(wall))

    def _refresh_plan(self, today: dt.date) -> None:
        self._plan_date = today
        if self._plan_settings is None:
            return
        sessions = read_sessions(self._conn)
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
    with pain, a new day). ``wall_clock`` is ``time.time`` on the belt; None maps
    loop time to wall time (the simulator's virtual clock)."""

    def __init__(self, store: Store, coach, *, every_s: float = 1.0, wall_clock: Callable[[], float] | None = time.time) -> None:
        self.store = store
        self.coach = coach
        self.every_s = every_s
        self.wall_clock = wall_clock
        self._next_s = -float("inf")
        self._cap_s = store.plan_cap_s
        self._store_cap_s: float | None = None

    def __call__(self, now_s: float) -> None:
        if now_s < self._next_s:
            return
        self._next_s = now_s + self.every_s
        store = self.store
        if not store.healthy:
            return
        wall = self.wall_clock() if self.wall_clock is not None else store.wall_time(now_s)
        cap = store.plan_cap_s
        if cap is not None and cap != self._cap_s:
            self._cap_s = cap
            self.coach.set_planned_cap(cap)
        planned = _coach_planned_cap_s(self.coach)
        if planned is not None and planned != self._store_cap_s:
            self._store_cap_s = planned  # a reload or a new day changed it: new sessions start with it
            store.set_planned_cap(planned)
        store.progress(self.coach.snapshot(now_s), wall, planned)


def _coach_planned_cap_s(coach) -> float | None:
    session = getattr(coach, "session", None)
    return getattr(session, "planned_cap_s", None)


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
    speed_ms: float | None
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


def _dt(text: str | None) -> dt.datetime | None:
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
            ended=_dt(row[3]),
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
