"""`walkcoach run --service`: the long-running coach under systemd (or on the simulated belt).

Order of things, and why:

1. Signal handlers first, before the slow chip set-up: SIGTERM/SIGINT set a stop flag
   (and stop the loop once it exists: it ends after the current tick); SIGHUP sets a
   reload flag (Python's default for SIGHUP would kill the process).
2. The pid file in ``[service] runtime_dir`` (created if missing), removed on exit.
3. The backend ("pi": the belt; "sim": the simulated walker through the emulated chip),
   the coach, the cue player, the loop with the button, the sinks (a RunSummary for
   the last log line, the :class:`~device.status.StatusTracker`).
4. ``loop.on_tick``: two compares per tick; the rest once a second of loop time (the
   store's progress hook is called from here, not chained). A pending reload is applied
   at the next tick (the coach keeps its session, walk time and upright; settings that
   need a restart are logged and shown in the status); ``WATCHDOG=1`` once a second of
   loop time whenever the loop ticks, sensor or not: it means "the loop is alive"; a
   missing or faulty sensor is a fault state (status, cue), not a reason for systemd to
   kill the walk. Once a second one coach snapshot, handed to the store's queue and,
   about once a wall-clock second, to :class:`~walkcoach.device.shell.status.StatusWriter`, whose thread
   writes the status file, sends ``STATUS=`` and looks for the calibrate and record
   requests (a file system question is never asked in the 10 ms tick); every few
   seconds the session in progress for the state directory (:mod:`walkcoach.device.shell.saved_state`),
   written on that thread. These pieces run one per tick over the second's first few
   ticks (ping, snapshot, status, save), never all in one. ``READY=1`` once the loop
   starts, with or without a sensor.
   After start-up the objects alive are frozen out of the garbage collector's work
   (``gc.freeze``): a full collection during a walk then looks at what the walk made,
   not at every module and function the service imported.
5. On exit (SIGTERM, or the end of a simulated scenario): the loop's ``finish()``
   closes the bout and lean in progress and turns the outputs off; ``STOPPING=1``;
   the backend is closed; the session is saved; a final status (``"state": "stopped"``);
   exit status 0.

A config file that is invalid at start does not stop the belt: it coaches with the last
good config (a copy kept in the state directory) or the defaults, plays the
``config_error`` cue once, and says which in the status and the log
(:func:`device.saved_state.load_boot_config`). A restart within the session-end pause
carries the session over: walk time, cap (with a pain report's shortening), upright,
and the same history row.

Logs go to stderr with journald's ``<N>`` priority prefixes (:class:`JournalFormatter`).

``python -m walkcoach.device.shell.service --config FILE --backend sim --scenario NAME --speed realtime``
runs the same thing without cli.py (the tests use it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walkcoach import hal
from walkcoach.device.config.config import KEYS, Config, get_value, toml_value, try_load_config
from walkcoach.device.core.coach import Coach
from walkcoach.device.core.events import Cue, Event, EventKind
from walkcoach.device.core.summary import RunSummary
from walkcoach.device.shell.clock_trust import WallClock
from walkcoach.device.shell.loop import CoachLoop
from walkcoach.device.shell.runner import make_coach, make_loop
from walkcoach.device.shell.saved_state import (
    SAVE_EVERY_S,
    BootConfig,
    load_boot_config,
    load_saved_session,
    save_last_good,
    save_session,
    session_record,
)
from walkcoach.device.shell.sdnotify import Notifier
from walkcoach.device.shell.status import StatusTracker, StatusWriter, is_walkcoach_service, read_pid, write_status
from walkcoach.device.shell.store import Store, StoreProgress, attach_store
from walkcoach.hal.errors import EndOfStream, WalkcoachError
from walkcoach.hal.gpio import output_value
from walkcoach.hal.mount import Mount
from walkcoach.hal.state_files import read_regular, write_atomic

if TYPE_CHECKING:
    from walkcoach.device.core.coach import CoachSnapshot
    from walkcoach.device.shell.record_request import RecordingTap

log = logging.getLogger("walkcoach.service")

STATUS_EVERY_S = 1.0  # wall-clock seconds between status writes
WATCHDOG_EVERY_S = 1.0  # loop-clock seconds between WATCHDOG=1 (the unit's WatchdogSec is far longer)
ONCE_A_SECOND_S = WATCHDOG_EVERY_S  # loop-clock seconds between the tick's own work (watchdog, snapshot, store)
# Keys a reload cannot apply to a running service (everything in these tables but the exceptions).
RESTART_TABLES = ("loop", "pins", "imu", "mount", "store", "service")
LIVE_KEYS = {"imu.fault_grace_s"}  # applied to the running loop on reload


# -- logging for journald -----------------------------------------------------------------------


class JournalFormatter(logging.Formatter):
    """``<3>``/``<4>``/``<6>``/``<7>`` + "name: message", every line prefixed (journald reads stderr by line)."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    @staticmethod
    def priority(levelno: int) -> int:
        if levelno >= logging.CRITICAL:
            return 2
        if levelno >= logging.ERROR:
            return 3
        if levelno >= logging.WARNING:
            return 4
        if levelno >= logging.INFO:
            return 6
        return 7

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{self.priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def install_journal_logging(level: int | None = None) -> None:
    """Replace the root logger's handlers with one to stderr using :class:`JournalFormatter`."""
    root = logging.getLogger()
    if level is None:
        level = logging.DEBUG if root.level == logging.DEBUG else logging.INFO
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    # journald sets JOURNAL_STREAM on a unit's stderr; at a terminal "<6>" is noise
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    handler.setFormatter(JournalFormatter() if under_journald else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


# -- the service ----------------------------------------------------------------------------------


def _all_keys() -> list[str]:
    return [key.path for keys in KEYS.values() for key in keys.values()]


def changed_keys(old: Config, new: Config) -> list[str]:
    return [path for path in _all_keys() if get_value(old, path) != get_value(new, path)]


def needs_restart(path: str) -> bool:
    return path.split(".", 1)[0] in RESTART_TABLES and path not in LIVE_KEYS


def _show(config: Config, path: str) -> str:
    return toml_value(get_value(config, path), hex_int=path == "imu.address")


class Service:
    def __init__(
        self,
        config: Config,
        *,
        backend: str,
        scenario: str | None,
        seed: int,
        speed: str,
        record=None,
        notifier: Notifier | None = None,
        faults=None,
        boot: BootConfig | None = None,
        make_clock: Callable[[Any], WallClock] | None = None,
    ) -> None:
        self.config = config  # the config in force
        self.started_config = config  # what the hardware was opened with
        self.backend_name = backend
        self.scenario = scenario
        self.seed = seed
        self.speed = speed
        self.record = record
        self.faults = faults  # sim only: the simulator's FaultPlan
        self.notifier = notifier or Notifier()
        self.runtime_dir = Path(config.service.runtime_dir)
        self.pid_file = config.service.pid_file
        self.stop_requested = False
        self.reload_requested = False
        self.loop: CoachLoop | None = None
        self.coach: Coach | None = None
        self.store: Store | None = None
        self.record_tap: RecordingTap | None = None  # `walkcoach record` asks it, through the runtime directory
        self.tracker = StatusTracker(backend=backend, config_path=config.path)
        self.boot = boot or BootConfig(config, "file", [], config.path)
        self.tracker.config_source = self.boot.source
        self.tracker.config_problems = list(self.boot.problems)
        self._config_cue_due = self.boot.source != "file"
        self._make_clock = make_clock
        self.clock: WallClock | None = None  # the host's clocks (carry-over; dating the history)
        self.status_writer: StatusWriter | None = None
        self._calibrate_taken = 0
        self._next_save_s = 0.0
        self._store_hook: StoreProgress | None = None
        self._ready_sent = False
        self._attention = True  # the first tick: READY=1, maybe the config_error cue
        self._next_status_wall = 0.0
        self._next_second_s = -float("inf")  # the first tick does the once-a-second work at once
        self._next_work_s = -float("inf")  # the next tick with a piece of that work (on_tick's fast-path compare)
        # the once-a-second work in pieces, one per tick (see _second_work); each says whether it did anything
        self._second_pieces = (self._second_ping, self._second_snapshot, self._second_status, self._second_save)
        self._second_piece = 0
        self._second_snap: CoachSnapshot | None = None  # the second's coach snapshot, shared by the store and the status
        self._second_snap_s = 0.0
        self._old_handlers: dict[int, Any] = {}

    # -- signals (handlers only set flags) -------------------------------------------------
    def install_signals(self) -> None:
        for signum, handler in ((signal.SIGTERM, self._on_stop), (signal.SIGINT, self._on_stop), (signal.SIGHUP, self._on_hup)):
            self._old_handlers[signum] = signal.signal(signum, handler)

    def restore_signals(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()

    def _on_stop(self, signum, frame) -> None:
        self.stop_requested = True
        if self.loop is not None:
            self.loop.request_stop()

    def _on_hup(self, signum, frame) -> None:
        self.reload_requested = True  # the next tick sees it (on_tick's fast path checks it)

    # -- the pid file ------------------------------------------------------------------------
    def write_pid_file(self) -> None:
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.pid_file, f"{os.getpid()}\n".encode(), mode=0o644)  # never through a planted link

    def remove_pid_file(self) -> None:
        try:
            if read_regular(self.pid_file, 64).decode().strip() == str(os.getpid()):
                self.pid_file.unlink()
        except (OSError, ValueError):
            pass

    # -- the backend ---------------------------------------------------------------------------
    def open_backend(self):
        settings = self.config.settings
        mount = Mount(settings.mount.forward, settings.mount.up)
        if self.backend_name == "sim":
            scenario = self.scenario or hal.backend_module("sim").default_scenario()
            self.scenario = scenario
            return hal.open_backend(
                "sim",
                scenario=scenario,
                seed=self.seed,
                rate_hz=settings.loop.rate_hz,
                mount=mount,
                via_chip=True,
                pins=settings.pins,
                fusion_mode=settings.imu.fusion_mode,
                speed=self.speed,
                state_dir=self.config.store.state_dir,
                faults=self.faults,
            )
        return hal.open_backend(
            self.backend_name, imu_settings=settings.imu, pins=settings.pins, mount=mount, state_dir=self.config.store.state_dir
        )

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> int:
        self.install_signals()
        try:
            other = read_pid(self.runtime_dir)
            if other is not None and other != os.getpid() and is_walkcoach_service(other):
                log.error("walkcoach already runs as PID %d and owns the sensor; not starting a second one", other)
                return 1
            try:
                self.write_pid_file()
            except OSError as exc:
                log.error("cannot write the pid file %s: %s", self.pid_file, exc.strerror or exc)
                return 1
            try:
                return self._run()
            finally:
                self.remove_pid_file()
                self.notifier.close()
        finally:
            self.restore_signals()

    def _run(self) -> int:
        self.notifier.status("starting: opening the sensor")
        log.info(
            "starting (PID %d, %s backend%s, config %s)",
            os.getpid(),
            self.backend_name,
            f", scenario {self.scenario or 'default'}" if self.backend_name == "sim" else "",
            self.config.path or ("none: all defaults" if self.boot.source == "file" else f"the defaults ({self.boot.asked} is invalid)"),
        )
        try:
            backend = self.open_backend()
        except WalkcoachError as exc:
            log.error("cannot open the %s backend: %s", self.backend_name, exc)
            self.notifier.stopping()
            return 1
        writer = None
        summary = None
        try:
            if self.stop_requested:
                log.info("stopped during start-up")
                return 0
            settings = self.config.settings
            self.clock = self._make_clock(backend) if self._make_clock is not None else WallClock()
            trusted = self.clock.trust().trusted
            self.coach = coach = make_coach(settings, dt.date.today() if trusted else dt.date.min)
            summary = RunSummary(hold_s=settings.coach.lean.hold_s)
            self.loop = loop = make_loop(
                settings, backend, coach, [summary, self.tracker, self._log_event], on_tick=self.on_tick)
            self.tracker.bind(coach, loop)
            saved = load_saved_session(self.config.store.state_dir, clock=self.clock,
                                       max_age_s=settings.coach.gait.session_end_pause_s)
            self.store = self._open_store(loop, backend, resume=saved.store_session_id if saved else None)
            self.tracker.store = self.store
            if saved is not None:
                self._restore(saved, loop)
            self.status_writer = StatusWriter(self.tracker, self.runtime_dir, notify_status=self.notifier.status)
            from walkcoach.device.shell.record_request import RecordingTap

            self.record_tap = RecordingTap(loop, self.runtime_dir, rate_hz=settings.loop.rate_hz,
                                           meta={"backend": self.backend_name})
            if self.record is not None:
                writer = self._start_recording(loop, coach)
            if self.record_tap is not None:
                self.status_writer.add_check(self.record_tap.check_files)  # its file questions on that thread
                self.record_tap.defer = self.status_writer.post_job  # and closing a finished recording
            if self.stop_requested:  # a SIGTERM between the check above and the loop existing
                loop.request_stop()
            self.tracker.state = "running"
            freeze_start_up_objects()
            try:
                loop.run()  # its finally: loop.finish() closes the bout and lean, turns every output off
            except EndOfStream:
                log.info("end of the simulated scenario")
            self.notifier.stopping()
            self.tracker.state = "stopping"
        finally:
            gc.unfreeze()  # back to the collector's care (a service run inside a longer process: the tests)
            if self.status_writer is not None:
                self.status_writer.close()  # runs what was posted and not yet done (a recording's close)
            if self.record_tap is not None:
                self.record_tap.stop("the service stopped")
            if self.loop is not None and self.coach is not None:
                self._save_session(self.loop.now_s, now=True)
            if writer is not None:
                writer.close()
            if self.store is not None:
                self.store.close()  # flushes; closes the session as 'shutdown'
            outputs = {name: output_value(device) for name, device in getattr(backend, "outputs", {}).items()}
            backend.close()
            self.tracker.outputs = outputs
        why = "stop requested" if self.stop_requested else "end of input"
        on = [name for name, value in outputs.items() if value]
        if on:
            log.error("outputs still on at exit before closing: %s (closed anyway)", ", ".join(on))
        log.info("stopped (%s); outputs off (%s)", why, ", ".join(outputs) or "none")
        if summary is not None:
            log.info(
                "walked %.1f min in %d bout(s), %d steps; %d cue(s); %d sustained lean(s)",
                summary.walk_s / 60, len(summary.bouts), summary.steps, len(summary.cues), len(summary.lean_episodes),
            )
        self.tracker.state = "stopped"
        self._write_status(self.loop.now_s if self.loop is not None else 0.0)
        return 0

    def _open_store(self, loop: CoachLoop, backend, *, resume: int | None = None) -> Store:
        """The history store as a sink with its progress hook; never raises (unhealthy: coaching goes on)."""
        plan = self.config.settings.coach.plan
        # real time (the belt, a paced simulation) or an injected clock: the store dates with the WallClock;
        # else virtual time: wall = mapped loop time
        dated = self.backend_name != "sim" or self.speed == "realtime" or self._make_clock is not None
        store = Store.open(
            self.config.store.state_dir, mono_at_open=backend.clock.monotonic(), wall_at_open=time.time(),
            planned_cap_s=loop.coach.session.planned_cap_s, plan_settings=plan,
            clock=self.clock if dated else None, resume_session_id=resume,
        )
        self._store_hook = attach_store(loop, store, wall_clock=None)
        loop.on_tick = self.on_tick  # the hook is called from on_tick's once-a-second part, not chained per tick
        if store.healthy:
            log.info("history in %s; today's cap %.0f min", store.path, loop.coach.session.planned_cap_s / 60)
        return store

    # -- carrying a session over a restart (device.saved_state) ------------------------------
    def _restore(self, saved, loop: CoachLoop) -> None:
        assert self.coach is not None  # run() made it
        try:
            self.coach.restore_state(saved.coach, loop.now_s, saved.downtime_s)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("the saved session is not usable (%s): a new session starts", exc)
            return
        if self._store_hook is not None:
            self._store_hook.reoffer_cap()  # the plan's cap applies again once the carried session ends
        snap = self.coach.snapshot(loop.now_s)
        self.tracker.restored = {"walk_s": round(snap.walk_s, 1), "cap_s": round(snap.cap_s, 1),
                                 "downtime_s": round(saved.downtime_s, 1), "judged_by": saved.judged_by,
                                 "store_session_id": self.store.resumed_session_id if self.store is not None else None}
        if snap.upright_captured:
            self.tracker.upright_why = "carried over from before the restart"
        log.info("carried the session over a restart %.0f s ago: %.1f of %.0f min walked, %d pain report(s)%s",
                 saved.downtime_s, snap.walk_s / 60, snap.cap_s / 60, snap.pain_reports,
                 ", upright kept" if snap.upright_captured else "")

    def _save_session(self, now_s: float, *, now: bool = False) -> None:
        """The session for a restart: captured here (the loop thread), written on the status thread or ``now``."""
        store = self.store
        assert self.coach is not None
        coach_state = self.coach.saved_state(now_s)  # ~1 us; the clock readings and the file on the thread
        session_id = store.session_id if store is not None and store.healthy else None
        state_dir = self.config.store.state_dir
        if now:
            self._write_saved_session(state_dir, coach_state, session_id)
        elif self.status_writer is not None:
            self.status_writer.post_job(lambda: self._write_saved_session(state_dir, coach_state, session_id))

    def _write_saved_session(self, state_dir, coach_state: dict, session_id: int | None) -> None:
        clock = self.clock
        assert clock is not None  # run() set it before the first save
        record = session_record(coach_state, clock=clock, store_session_id=session_id,
                                wall_trusted=clock.trust().level == "synchronized")
        try:
            save_session(state_dir, record)
        except (OSError, ValueError) as exc:
            log.warning("cannot save the session in %s: %s", state_dir, getattr(exc, "strerror", None) or exc)

    def _start_recording(self, loop: CoachLoop, coach):
        from walkcoach.device.shell.recording import RecordingWriter, attach_recording

        meta = {"backend": self.backend_name, "cap_s": coach.session.cap_s}
        if self.scenario:
            meta["scenario"] = self.scenario
        writer = RecordingWriter(self.record, rate_hz=self.config.settings.loop.rate_hz, meta=meta)
        attach_recording(loop, writer)
        log.info("recording every sample to %s", self.record)
        return writer

    def _log_event(self, event) -> None:
        if event.cue is not None:
            log.info("cue %s: %s", event.cue.value, event.why)
        else:
            log.debug("%s: %s", event.kind.value, event.why)

    # -- every tick --------------------------------------------------------------------------------
    def on_tick(self, now_s: float) -> None:
        """Two compares, unless a piece of the once-a-second work is due or something asks (a reload, the start)."""
        if now_s < self._next_work_s and not self.reload_requested and not self._attention:
            return
        if self.reload_requested or self._attention:
            self._on_asked(now_s)
        if now_s >= self._next_work_s:  # loop time: on the Pi the monotonic clock, in the sim the virtual one
            self._second_work(now_s)

    def _on_asked(self, now_s: float) -> None:
        loop = self.loop
        assert loop is not None  # the loop that calls it is running
        self._attention = False
        if self.reload_requested:
            self.reload_requested = False
            self.reload()
        if self._config_cue_due:
            self._config_cue_due = False
            self._config_error_cue(now_s)
        if not self._ready_sent:
            self._ready_sent = True
            log.info("ready: the loop runs%s", "" if loop.sensor_ok and loop.stats.samples else " (no valid sample yet)")
            self.notifier.ready()

    def _second_work(self, now_s: float) -> None:
        """The once-a-second work, one piece per tick from the second's first tick on: WATCHDOG=1 (and the
        calibrate count), then the coach snapshot for the store, then the status slot (about once a wall
        second), then the saved session (every few). Done in one tick they added up (and at the belt's pace,
        with caches cold after the sleep, each piece costs several times its hot figure); spread over the
        next few ticks no tick carries more than one, 10 ms apart, which nobody can tell from the belt.
        A piece with nothing to do (the status not due) does not use a tick."""
        pieces = self._second_pieces
        piece = self._second_piece
        while piece < len(pieces):
            did = pieces[piece](now_s)
            piece += 1
            if did:
                break
        if piece < len(pieces):
            self._second_piece = piece
            self._next_work_s = now_s  # the next piece at the next tick
        else:
            self._second_piece = 0
            self._next_work_s = self._next_second_s

    def _second_ping(self, now_s: float) -> bool:
        """WATCHDOG=1 once a second of loop time whenever the loop ticks, sensor or not; a calibrate request found.

        Sent from the loop's thread, not by the status thread when the tick count moved: that would save
        the tick a ``sendto`` (~10 us warm, ~38 cold) once a second, but tie the ping to a thread that writes
        files (an SD card stalled for WatchdogSec would get a walking belt killed, and a restart does not
        unstall a card) and to wall time, where the simulator's pings and their tests are in loop time."""
        self._next_second_s = now_s + ONCE_A_SECOND_S
        self.notifier.watchdog()
        writer = self.status_writer
        if writer is not None and writer.calibrate_requests != self._calibrate_taken:  # found by the status thread
            self._calibrate_taken = writer.calibrate_requests
            assert self.coach is not None  # the loop that calls it is running
            self.coach.request_upright_capture()
            self.tracker.calibration_requested_t_s = now_s
            log.info("calibrate requested: capturing the upright reference at the next still moment")
        return True

    def _second_snapshot(self, now_s: float) -> bool:
        """One coach snapshot, to the store's queue (and kept for the status); the record tap's flags."""
        coach = self.coach
        assert coach is not None  # the loop that calls it is running
        self._second_snap = snap = coach.snapshot(now_s)
        self._second_snap_s = now_s
        if self._store_hook is not None:
            self._store_hook(now_s, snap)
        tap = self.record_tap
        if tap is not None and tap.wants_poll(now_s):
            tap.poll(now_s)  # on the loop's thread: it starts and stops what read() writes
        return True

    def _second_status(self, now_s: float) -> bool:
        """About once a wall second, the second's snapshot to the status slot (the status thread writes the
        file, sends STATUS= and looks for the calibrate and record requests)."""
        wall = time.monotonic()
        if wall < self._next_status_wall or self.status_writer is None:
            return False
        self._next_status_wall = wall + STATUS_EVERY_S
        self.status_writer.post(self._second_snap_s, self._second_snap)
        return True

    def _second_save(self, now_s: float) -> bool:
        """Every SAVE_EVERY_S wall seconds, the session for a restart (written on the status thread)."""
        wall = time.monotonic()
        if wall < self._next_save_s:
            return False
        self._next_save_s = wall + SAVE_EVERY_S
        self._save_session(now_s)
        return True

    def _config_error_cue(self, now_s: float) -> None:
        boot = self.boot
        using = "the last good config" if boot.source == "last_good" else "the defaults"
        why = f"{boot.asked or 'the config'} is invalid ({len(boot.problems)} problem(s)): coaching with {using}"
        assert self.loop is not None
        self.loop.emit([Event(now_s, EventKind.CONFIG_ERROR, Cue.CONFIG_ERROR, why)], now_s)

    def _write_status(self, now_s: float) -> dict | None:
        status = self.tracker.snapshot_dict(now_s)
        try:
            write_status(self.runtime_dir, status)
        except OSError as exc:
            log.warning("cannot write the status file in %s: %s", self.runtime_dir, exc.strerror or exc)
        return status

    # -- reload -------------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the config file; apply what a running coach can take. True if the new config is in force."""
        self.notifier.reloading()
        path = self.config.path if self.tracker.config_source == "file" else self.boot.asked  # not the saved copy
        new, problems = try_load_config(path)
        when = round(time.time(), 3)
        if problems or new is None:
            log.error("config reload failed: keeping the running config (%s)", self.config.path or "defaults")
            for line in problems:
                log.error("%s", line)
            self.tracker.reload_errors = problems
            self.tracker.last_reload = {"ok": False, "wall": when, "changed": []}
            self.notifier.ready()
            return False
        changed = changed_keys(self.config, new)
        live = [key for key in changed if not needs_restart(key)]
        store = self.store
        cap_s = new.settings.coach.plan.cap_s(dt.date.today())
        if store is not None and store.healthy:
            store.set_plan_settings(new.settings.coach.plan)  # the store recomputes; its hook hands on a change
            cap_s = store.plan_cap_s if store.plan_cap_s is not None else cap_s
        assert self.coach is not None and self.loop is not None  # reload runs from on_tick
        self.coach.configure(new.settings.coach, cap_s=cap_s)
        self.loop.fault_grace_s = new.settings.imu.fault_grace_s
        self.config = new
        restart = [key for key in changed_keys(self.started_config, new) if needs_restart(key)]
        if live:
            log.info(
                "config reloaded from %s: %s",
                new.path or "defaults",
                ", ".join(f"{key} = {_show(new, key)}" for key in live),
            )
        else:
            log.info("config reloaded from %s: nothing a running coach uses changed", new.path or "defaults")
        if restart:
            log.warning(
                "needs a restart: %s (running with %s)",
                ", ".join(f"{key} = {_show(new, key)}" for key in restart),
                ", ".join(f"{key} = {_show(self.started_config, key)}" for key in restart),
            )
        self.tracker.config_path = str(new.path) if new.path else None
        if self.tracker.config_source != "file":
            log.info("the config file is valid again: coaching with it")
        self.tracker.config_source = "file"
        self.tracker.config_problems = []
        save_last_good(new)
        self.tracker.reload_errors = []
        self.tracker.restart_needed = restart
        self.tracker.last_reload = {"ok": True, "wall": when, "changed": changed}
        self.notifier.ready()
        return True


def freeze_start_up_objects() -> None:
    """Collect once, then move every object alive (modules, functions, the config, the coach's tables)
    into the collector's permanent generation: later collections never walk them again."""
    gc.collect()
    gc.freeze()


def run_service(config_file: Path | str | None, *, backend: str, scenario: str | None, seed: int, speed: str, record=None,
                faults=None, adjust_config=None) -> int:
    """`walkcoach run --service`: run until SIGTERM (or the end of a simulated scenario); the exit status.

    An invalid ``config_file`` is logged line by line and the service coaches with the last
    good copy or the defaults (see the module docstring)."""
    install_journal_logging()
    boot = load_boot_config(config_file)
    if boot.source != "file":
        log.error("config %s is invalid: coaching with %s", boot.asked,
                  f"the last good copy {boot.config.path}" if boot.source == "last_good" else "the defaults (no good copy saved yet)")
        for line in boot.problems:
            log.error("%s", line)
    config = adjust_config(boot.config) if adjust_config is not None else boot.config  # cli: --state-dir & co.
    return Service(config, backend=backend, scenario=scenario, seed=seed, speed=speed, record=record, faults=faults,
                   boot=boot).run()


def main(argv: list[str] | None = None) -> int:
    """``python -m walkcoach.device.shell.service``: run_service without cli.py (used by the tests)."""
    parser = argparse.ArgumentParser(prog="python -m walkcoach.device.shell.service")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--backend", choices=("pi", "sim"), default="pi")
    parser.add_argument("--scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", choices=("max", "realtime"), default="realtime")
    parser.add_argument("--record", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    return run_service(args.config, backend=args.backend, scenario=args.scenario, seed=args.seed, speed=args.speed, record=args.record)


if __name__ == "__main__":
    sys.exit(main())
