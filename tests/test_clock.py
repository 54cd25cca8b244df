"""A Pi without a battery-backed clock: boot at 1970 or 150 days stale, then NTP.

The whole service runs in process on the simulated belt (virtual time, through the emulated
chip) with its WallClock injected: the wall clock says 1970 (or a stale date) until virtual
second ``SYNC_AT_S``, when it jumps to the true time and systemd-timesyncd's flag appears.
The plan and history are then read back the way `walkcoach plan` and `walkcoach history` do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import time

import pytest

from walkcoach.device.cli.history import run_history_command
from walkcoach.device.config.config import load_config
from walkcoach.device.core.events import Bout, Event, EventKind
from walkcoach.device.core.plan import effective_plan
from walkcoach.device.core.settings import PlanSettings
from walkcoach.device.shell.clock_trust import PLAUSIBLE, SYNCHRONIZED, UNSYNCHRONIZED, WallClock
from walkcoach.device.shell.service import Service
from walkcoach.device.shell.store import Store, load_sessions

SYNC_AT_S = 240.0  # virtual seconds: mid-walk in upright-walk
DAY_S = 86400.0


def _prior_session(state, wall_s: float) -> None:
    """A session stored by an earlier run whose clock was right."""
    store = Store.open(state, mono_at_open=0.0, wall_at_open=wall_s, planned_cap_s=600.0)
    store(Event(1.0, EventKind.WALK_STARTED))
    store(Event(700.0, EventKind.WALK_ENDED, bout=Bout(1.0, 601.0, 1000, 100.0, 0.03)))
    store(Event(1400.0, EventKind.SESSION_ENDED))
    store.close()


def _noon(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(12, 0)).astimezone().timestamp()


def _run_service(tmp_path, *, boot_wall_s: float, true_wall_s: float):
    state, runtime = tmp_path / "state", tmp_path / "run"
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[store]\nstate_dir = "{state}"\n\n[service]\nruntime_dir = "{runtime}"\n')
    config = load_config(config_file)

    def make_clock(backend):
        virtual = backend.clock

        def synced() -> bool:
            return virtual.monotonic() >= SYNC_AT_S

        def wall() -> float:  # before the sync the clock counts on from its wrong start
            return (true_wall_s if synced() else boot_wall_s) + virtual.monotonic()

        return WallClock(wall=wall, monotonic=virtual.monotonic, boot_id="boot-under-test", sync_flag=synced)

    service = Service(config, backend="sim", scenario="upright-walk", seed=2, speed="max", make_clock=make_clock)
    assert service.run() == 0
    return service, config


def _history_json(state, today: dt.date) -> list[dict]:
    out = io.StringIO()
    args = argparse.Namespace(command="history", state_dir=state, days=14, json=True, csv=False)
    assert run_history_command(args, out=out, today=today) == 0
    return json.loads(out.getvalue())


CASES = {
    # boot clock (seconds before now, None: 1970), prior sessions (days ago), running cap, true week index, true cap
    "1970": (None, (15, 2), 15, 2, 20),  # not trusted: the plan of the last date known (2 days ago)
    "150 days stale, behind the last session": (150 * DAY_S, (15, 2), 15, 2, 20),  # not trusted either
    # fake-hwclock after a long time in a drawer: plausible, the plan counts from the stale date
    "150 days stale, after the last session": (150 * DAY_S, (165, 160), 20, 23, 30),
}


@pytest.mark.parametrize("boot", list(CASES))
def test_after_a_wrong_clock_at_boot_the_plan_and_history_are_true_once_synchronized(tmp_path, boot):
    stale_s, prior_days, running_cap_min, true_week, true_cap_min = CASES[boot]
    state = tmp_path / "state"
    today = dt.date.today()
    now = _noon(today)  # the true time: a walk started just before midnight would be dated tomorrow
    for days in prior_days:
        _prior_session(state, now - days * DAY_S)
    boot_wall_s = 1000.0 if stale_s is None else now - stale_s

    service, config = _run_service(tmp_path, boot_wall_s=boot_wall_s, true_wall_s=now)

    sessions = load_sessions(state)
    assert len(sessions) == 3
    walked = sessions[-1]
    assert walked.date == today  # re-dated: not 1970, not 150 days ago
    assert abs(walked.started.timestamp() - now) < 15 * 60  # within the simulated walk of the true time
    assert walked.walk_s > 5 * 60 and walked.closed_by == "shutdown"
    # the running session's cap never moved (the cap it ended with is the one it was given before the
    # sync): never one from 1970 ("week 2970", the 30 min maximum), nor a jump to the true week mid-walk
    assert walked.cap_s == running_cap_min * 60.0  # written from the coach each second
    plan = effective_plan(config.settings.coach.plan, sessions, today)
    assert plan.week_index == true_week and plan.cap_s == true_cap_min * 60.0
    assert service.store.plan_cap_s == plan.cap_s  # what the next session on the belt gets
    assert service.store.redated_sessions == 1
    from walkcoach.device.shell.status import read_status

    assert read_status(tmp_path / "run")["clock"]["level"] == SYNCHRONIZED
    rows = _history_json(state, today)
    assert rows[-1]["date"] == today.isoformat()
    assert len(rows) == (2 if prior_days == (15, 2) else 1)  # the last 14 days


def test_a_clock_at_1970_never_gives_an_impossible_week_even_without_a_sync(tmp_path):
    state = tmp_path / "state"
    now = time.time()
    _prior_session(state, now - 15 * DAY_S)
    _prior_session(state, now - 2 * DAY_S)  # the last date known: week 2 of the plan, 15 min
    store = Store.open(state, mono_at_open=0.0, planned_cap_s=600.0, plan_settings=PlanSettings(),
                       clock=WallClock(wall=lambda: 1000.0, monotonic=lambda: 0.0, boot_id="b", sync_flag=None))
    try:
        assert store.health()["state"] == "ok"
        assert store.plan_cap_s == 15 * 60.0  # the plan as of the last date the history knows, not week 2970
        store(Event(10.0, EventKind.WALK_STARTED))
        assert store.flush()
    finally:
        store.close()
    sessions = load_sessions(state)
    assert len(sessions) == 3 and sessions[0].date.year == 1970  # stored as the clock said: this boot never learned the time
    plan = effective_plan(PlanSettings(), sessions, dt.date.fromtimestamp(now))
    assert plan.week_index == 2 and plan.cap_s == 20 * 60.0  # the 1970 session counts no weeks (not 2970)


def test_the_trust_rules():
    flag = {"on": False}
    wall = {"s": 1000.0}
    earliest = dt.datetime(2024, 1, 1).timestamp()
    clock = WallClock(wall=lambda: wall["s"], monotonic=lambda: 5.0, boot_id="b", sync_flag=lambda: flag["on"],
                      earliest_wall_s=earliest)
    assert clock.trust().level == UNSYNCHRONIZED and "before any walkcoach ran" in clock.trust().why
    wall["s"] = earliest + 400 * DAY_S
    assert clock.trust().level == PLAUSIBLE
    assert clock.trust(last_stored_wall_s=wall["s"] + 2 * DAY_S).level == UNSYNCHRONIZED  # behind the last session
    assert clock.trust(last_stored_wall_s=wall["s"] + 30.0).level == PLAUSIBLE  # within a minute: rounding
    flag["on"] = True
    assert clock.trust(last_stored_wall_s=wall["s"] + 2 * DAY_S).level == SYNCHRONIZED
    assert clock.offset_s() == wall["s"] - 5.0


def test_a_real_timesyncd_flag_file_is_what_synchronized_means(tmp_path):
    flag = tmp_path / "synchronized"
    clock = WallClock(wall=lambda: 1000.0, monotonic=lambda: 1.0, boot_id="b", sync_flag=flag)
    assert clock.trust().level == UNSYNCHRONIZED
    flag.write_text("")
    assert clock.trust().level == SYNCHRONIZED


def test_the_ticks_reading_looks_at_the_flag_every_ten_seconds_and_never_calls_a_reading_synchronized_early():
    host = {"mono_s": 100.0, "offset_s": 1000.0, "flag": False}
    looks = []

    def flag() -> bool:
        looks.append(host["mono_s"])
        return host["flag"]

    clock = WallClock(wall=lambda: host["mono_s"] + host["offset_s"], monotonic=lambda: host["mono_s"],
                      boot_id="b", sync_flag=flag)
    readings = []
    for step in range(60):  # a minute of once-a-second puts; timesyncd steps the clock at 125 s
        host["mono_s"] = 100.0 + step
        if host["mono_s"] == 125.0:
            host["offset_s"], host["flag"] = 5000.0, True
        readings.append(clock.tick_reading())
    assert looks == [100.0, 110.0, 120.0, 130.0]  # every 10 s until seen, then never again
    for reading, step in zip(readings, range(60), strict=True):
        assert reading.synchronized == (100.0 + step >= 130.0)  # late by up to 10 s, never early
        assert reading.offset_s == (5000.0 if 100.0 + step >= 125.0 else 1000.0)  # the offset of its own moment
