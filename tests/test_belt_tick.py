"""What the service does inside the 10 ms tick (issue 12): the per-tick part is O(1), the once-a-second part
takes one coach snapshot, and the file system is asked only on the status thread. No timing asserts: counts."""

from __future__ import annotations

import gc
import json

from walkcoach.device.config.config import load_config
from walkcoach.device.shell.record_request import REQUEST_NAME, RecordingTap
from walkcoach.device.shell.service import Service


def _config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\nstate_dir = "{tmp_path / "state"}"\n[service]\nruntime_dir = "{tmp_path / "run"}"\n')
    return load_config(path)


def test_the_service_takes_one_coach_snapshot_per_second_of_loop_time_and_none_in_between(tmp_path, monkeypatch):
    """Status and store share the tick's one snapshot; the ticks between two seconds only compare."""
    from walkcoach.device.core.coach import Coach

    calls: list[float] = []
    snapshot = Coach.snapshot

    def counted(self, now_s):
        calls.append(now_s)
        return snapshot(self, now_s)

    monkeypatch.setattr(Coach, "snapshot", counted)
    frozen_during_the_walk: list[int] = []
    service = Service(_config(tmp_path), backend="sim", scenario="standing", seed=0, speed="max")
    on_tick = service.on_tick

    def hooked(now_s: float) -> None:
        on_tick(now_s)
        if not frozen_during_the_walk:
            frozen_during_the_walk.append(gc.get_freeze_count())

    service.on_tick = hooked
    assert service.run() == 0
    loop_s = service.loop.now_s - calls[0]
    during = [t for t in calls if t < service.loop.now_s]  # the exit's final status takes one more
    assert service.loop.stats.ticks > 90 * loop_s  # it did tick at 100 Hz
    assert len(during) <= loop_s + 2  # one per second of loop time (5 min of "standing": ~300, not ~30000)
    assert len(during) >= loop_s - 2
    assert frozen_during_the_walk[0] > 1000  # the start-up's objects were out of the collector's way
    assert gc.get_freeze_count() == 0  # and given back when the service ended


def test_the_once_a_second_pieces_run_in_different_ticks_and_each_second_has_them_all(tmp_path, monkeypatch):
    """The watchdog ping, the coach snapshot, the status slot and the saved session each get a tick of their own."""
    from walkcoach.device.core.coach import Coach
    from walkcoach.device.shell.sdnotify import Notifier
    from walkcoach.device.shell.status import StatusWriter

    done: list[tuple[int, str]] = []
    service = Service(_config(tmp_path), backend="sim", scenario="standing", seed=0, speed="max")

    def counted(cls, name, what):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            if service.loop is not None:
                done.append((service.loop.stats.ticks, what))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counted(Notifier, "watchdog", "ping")
    counted(Coach, "snapshot", "snapshot")
    counted(StatusWriter, "post", "status")
    counted(Service, "_save_session", "save")
    monkeypatch.setattr("walkcoach.device.shell.service.STATUS_EVERY_S", 0.0)  # due at every loop second
    monkeypatch.setattr("walkcoach.device.shell.service.SAVE_EVERY_S", 0.0)
    assert service.run() == 0
    during = [(tick, what) for tick, what in done if tick < service.loop.stats.ticks]  # not the exit's
    ticks = [tick for tick, _ in during]
    assert len(ticks) == len(set(ticks)), "two pieces in one tick"
    kinds = [what for _, what in during]
    seconds = kinds.count("ping")
    assert seconds >= 290  # 5 min of "standing"
    assert all(kinds.count(what) >= seconds - 1 for what in ("snapshot", "status", "save"))
    pings = [tick for tick, what in during if what == "ping"]
    assert all(b - a >= 90 for a, b in zip(pings, pings[1:], strict=False))  # still once a second of loop time


class _Loop:
    def __init__(self) -> None:
        self.coach = type("C", (), {"session": type("S", (), {"cap_s": 600.0})()})()
        self.imu = None
        self.button = None


def test_the_record_request_is_taken_by_the_status_threads_check_never_by_the_ticks_poll(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    tap = RecordingTap(_Loop(), runtime, rate_hz=100.0)
    jobs: list = []
    tap.defer = jobs.append
    (runtime / REQUEST_NAME).write_text(json.dumps({"id": "0123456789abcdef", "seconds": 2}))
    for now_s in (1.0, 2.0, 3.0):  # the tick alone: nothing read, nothing started
        assert not tap.wants_poll(now_s)
        tap.poll(now_s)
    assert tap.writer is None and (runtime / REQUEST_NAME).exists()
    tap.check_files()  # the status thread: takes the request and opens the recording
    assert not (runtime / REQUEST_NAME).exists() and tap.writer is None
    assert tap.wants_poll(4.0)
    tap.poll(4.0)  # the loop starts it
    assert tap.writer is not None and not tap.wants_poll(5.0)
    (runtime / "record-0123456789abcdef.stop").touch()
    tap.poll(5.0)
    assert tap.writer is not None  # the tick does not look for the stop file either
    tap.check_files()
    assert tap.wants_poll(5.5)
    tap.poll(5.5)
    assert tap.writer is None and not (runtime / "record-0123456789abcdef.done").exists()  # closing is deferred
    [close] = jobs
    close()
    assert json.loads((runtime / "record-0123456789abcdef.done").read_text())["reason"] == "stopped"
