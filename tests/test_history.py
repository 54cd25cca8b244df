"""The history commands over a simulated month of sessions: plan, history, report (PNG; the HTML
report is tests/test_report_html.py), replay errors, and the caps the coach used."""

import argparse
import csv
import datetime as dt
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from walkcoach.device.cli.history import HistoryError, MissingExtra, add_history_commands, run_history_command
from walkcoach.device.core.events import Bout, Cue, Event, EventKind
from walkcoach.device.core.plan import effective_plan
from walkcoach.device.core.settings import CoachSettings, DeviceSettings, PlanSettings
from walkcoach.device.shell.recording import RecordingError
from walkcoach.device.shell.store import DB_NAME, Store, load_sessions

DAYS = 30
TODAY = dt.date.today()
FIRST_DAY = TODAY - dt.timedelta(days=DAYS - 1)
PLAN = PlanSettings(start_date=FIRST_DAY, start_min=10.0, weekly_increase_min=5.0, max_min=30.0)
SETTINGS = DeviceSettings(coach=CoachSettings(plan=PLAN))
PAIN_DAYS = {9: 1, 17: 1, 19: 2}  # day of the month -> pain reports in its first session


def write_month(state_dir: Path, *, seed: int = 0) -> list[dict]:
    """A month of walking written through the Store, as the loop would: 2-3 sessions a day,
    each up to the plan's cap; cadence, speed and posture improve; pain on a few days."""
    rng = np.random.default_rng(seed)
    written = []
    for n in range(DAYS):
        day = FIRST_DAY + dt.timedelta(days=n)
        sessions_so_far = load_sessions(state_dir)
        cap_s = effective_plan(PLAN, [s for s in sessions_so_far if s.date < day], day).cap_s
        progress = n / (DAYS - 1)
        for k in range(int(rng.integers(2, 4)) if n % 6 else 1):
            start = dt.datetime.combine(day, dt.time(8 + 4 * k, int(rng.integers(0, 50)))).astimezone()
            store = Store.open(state_dir, mono_at_open=0.0, wall_at_open=start.timestamp(), planned_cap_s=cap_s)
            assert store.healthy, store.reason
            walk_s = min(cap_s, cap_s * rng.uniform(0.7, 1.05))
            cadence = 98 + 12 * progress + rng.normal(0, 2)
            step_m = 0.55 + 0.12 * progress + rng.normal(0, 0.02)
            lean = 12 - 6 * progress + rng.normal(0, 1)
            store(Event(5.0, EventKind.WALK_STARTED))
            t, steps = 2.0, 0
            for part in (0.6, 0.4):
                bout_s = part * walk_s
                bout_steps = int(bout_s * cadence / 60)
                bout = Bout(t, t + bout_s, bout_steps, cadence, 0.03, step_m, step_m * cadence / 60, lean, lean + 8)
                store(Event(t + bout_s + 2.0, EventKind.WALK_ENDED, bout=bout))
                t += bout_s + 30.0
                steps += bout_steps
            for c in range(max(0, int(round(lean / 3 + rng.normal(0, 1))))):  # one cued lean each, as the coach ends them
                store(Event(10.0 + 40 * c, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, "leaning"))
                held_s = 5.0 + rng.uniform(1, 25)
                store(Event(5.0 + 40 * c + held_s, EventKind.LEAN_CLEARED, Cue.UPRIGHT_AGAIN, f"upright again after {held_s:.0f} s"))
            pain = PAIN_DAYS.get(n, 0) if k == 0 else 0
            for p in range(pain):
                store(Event(60.0 + p, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, "pain"))
            store(Event(t + 600.0, EventKind.SESSION_ENDED))
            store.close()
            written.append({"day": day, "walk_s": walk_s, "steps": steps, "cap_s": cap_s, "pain": pain})
    return written


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("state")
    return state_dir, write_month(state_dir)


def run(argv, state_dir=None):
    parser = argparse.ArgumentParser(prog="walkcoach")
    add_history_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    status = run_history_command(args, SETTINGS, state_dir=state_dir, out=out, today=TODAY)
    return status, out.getvalue()


def test_the_month_is_in_the_store_with_the_plans_caps(month):
    state_dir, written = month
    sessions = load_sessions(state_dir)
    assert len(sessions) == len(written)
    assert [s.planned_cap_s for s in sessions] == [w["cap_s"] for w in written]
    assert all(s.closed_by == "session_end" for s in sessions)
    assert {s.planned_cap_s for s in sessions} >= {600.0, 900.0, 1200.0}
    held = effective_plan(PLAN, sessions, TODAY)
    assert held.held_weeks == (2, 3)  # pain on day 9 (week 1) held week 2; days 17 and 19 (week 2) held week 3
    assert sessions[-1].planned_cap_s < PLAN.cap_s(TODAY)


def test_plan_command_prints_the_cap_why_and_walks_today(month):
    state_dir, written = month
    status, text = run(["plan"], state_dir)
    assert status == 0
    assert text.startswith("today's cap: ") and "why: week 5 of the plan" in text
    assert f"walks today: {sum(1 for w in written if w['day'] == TODAY)}" in text
    status, text = run(["plan", "--json", "--state-dir", str(state_dir)])
    data = json.loads(text)
    assert data["date"] == TODAY.isoformat() and data["sessions_per_day"] == [2, 3] and data["held_weeks"]


def test_plan_without_any_history_is_the_bare_plan(tmp_path):
    status, text = run(["plan", "--json"], tmp_path)
    assert status == 0 and json.loads(text)["cap_s"] == PLAN.cap_s(TODAY)
    assert not (tmp_path / DB_NAME).exists()  # reading never creates a database


def test_history_rows_in_all_three_forms(month):
    state_dir, written = month
    status, text = run(["history", "--days", "7", "--json"], state_dir)
    rows = json.loads(text)
    recent = [w for w in written if w["day"] > TODAY - dt.timedelta(days=7)]
    assert status == 0 and len(rows) == len(recent)
    row = rows[-1]
    assert set(row) >= {"date", "walk_min", "cap_min", "steps", "cadence_spm", "speed_ms", "mean_lean_deg",
                        "straighten_up_cues", "pain_reports"}
    assert row["walk_min"] == pytest.approx(recent[-1]["walk_s"] / 60, abs=0.01)
    assert 100 < row["cadence_spm"] < 120 and 1.0 < row["speed_ms"] < 1.6 and 2 < row["mean_lean_deg"] < 10

    status, text = run(["history", "--days", "30", "--csv"], state_dir)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(written)
    assert sum(int(r["pain_reports"]) for r in table) == sum(PAIN_DAYS.values())

    status, text = run(["history", "--days", "30"], state_dir)
    lines = text.splitlines()
    assert lines[0].startswith("date        start  walk/cap min  steps  cadence")
    assert len(lines) == len(written) + 2 and "pain report(s)" in lines[-1]


def test_history_of_an_empty_or_broken_store(tmp_path):
    status, text = run(["history"], tmp_path)
    assert status == 0 and text.startswith("no sessions in the last 14 day(s)")
    (tmp_path / DB_NAME).write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(HistoryError, match="cannot read .*not a database"):
        run(["history"], tmp_path)


def test_report_renders_a_png_of_the_month(month, tmp_path):
    pytest.importorskip("matplotlib")
    state_dir, _ = month
    out = tmp_path / "report.png"
    status, text = run(["report", "--out", str(out), "--days", "35"], state_dir)
    assert status == 0 and text.strip() == f"wrote {out}"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_report_without_matplotlib_says_how_to_install_it(month, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtra, match=r"pip install 'walkcoach\[plots\]'"):
        run(["report", "--out", str(tmp_path / "r.png")], month[0])


def test_report_needs_sessions_and_a_png_name(tmp_path, month):
    with pytest.raises(HistoryError, match="no sessions to report yet"):
        run(["report", "--out", str(tmp_path / "r.png")], tmp_path)
    with pytest.raises(HistoryError, match=r"must be a \.png file with --png"):
        run(["report", "--png", "--out", str(tmp_path / "r.html")], month[0])


def test_replay_command_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,ax,ay,az\n0.0,0,0,9.8\n0.01,0,oops,9.8\n")
    with pytest.raises(RecordingError) as caught:
        run(["replay", str(bad)])
    assert str(caught.value) == f"{bad}:3: column 'ay' 'oops' is not a number"


def test_replay_command_on_a_plain_csv(tmp_path):
    from walkcoach.sim import walker
    walk = walker.simulate("upright-walk", 3, rate_hz=50.0)
    total = np.asarray(walk.gravity_ms2) + np.asarray(walk.linear_acc_ms2)
    path = tmp_path / "walk.csv"
    path.write_text("t,ax,ay,az\n" + "".join(f"{t:.2f},{a:.4f},{b:.4f},{c:.4f}\n" for t, (a, b, c) in zip(walk.t_s, total, strict=True)))
    status, text = run(["replay", str(path), "--json", "--cap-min", "10"])
    data = json.loads(text)
    assert status == 0 and data["format"] == "csv" and data["cap_s"] == 600.0
    assert abs(data["steps"] - walk.truth.steps) <= 0.03 * walk.truth.steps
    assert "stop" in [c["kind"] for c in data["cues"]]
    status, text = run(["replay", str(path)])  # at its own rate
    assert "plain CSV, 50 Hz)" in text and "body frame: upright from the first still period" in text
    status, text = run(["replay", str(path), "--rate", "100"])
    assert "plain CSV, 50 Hz resampled to 100 Hz" in text


# -- the caps the coach used -------------------------------------------------------------------
def _seed_pain_sessions(state_dir: Path, days_ago: tuple[int, ...]) -> None:
    for n in days_ago:
        start = dt.datetime.combine(TODAY - dt.timedelta(days=n), dt.time(9, 0)).astimezone()
        store = Store.open(state_dir, mono_at_open=0.0, wall_at_open=start.timestamp(), planned_cap_s=300.0)
        store(Event(5.0, EventKind.WALK_STARTED))
        store(Event(100.0, EventKind.WALK_ENDED, bout=Bout(5.0, 100.0, 170, 107.0, 0.03)))
        store(Event(60.0, EventKind.PAIN_REPORTED, Cue.PAIN_ACK, "pain"))
        store(Event(800.0, EventKind.SESSION_ENDED))
        store.close()


def test_history_keeps_the_caps_the_coach_used_across_plan_history_reload_and_pain(tmp_path):
    """The service on the simulated belt: the plan from the history (stepped back for repeated
    pain), a config reload that changes the plan mid-walk (a running session's cap does not move:
    the new plan applies from the next session), and a button press that shortens the session.
    The stored caps and `history` must be the ones the coach's cues announced."""
    from walkcoach.device.config.config import load_config
    from walkcoach.device.shell.service import Service

    state_dir, runtime_dir = tmp_path / "state", tmp_path / "run"
    state_dir.mkdir()
    start = TODAY - dt.timedelta(days=14)
    _seed_pain_sessions(state_dir, (5, 4))  # two sessions with pain in the last 7 days, in the plan's week 2
    config_file = tmp_path / "config.toml"

    def write_config(start_min: float) -> None:
        config_file.write_text(
            f'[store]\nstate_dir = "{state_dir}"\n[service]\nruntime_dir = "{runtime_dir}"\n'
            f"[plan]\nstart_date = {start.isoformat()}\nstart_min = {start_min}\nweekly_increase_min = 2.0\n"
            "max_min = 30.0\npain_shorten_min = 2.0\n"
        )

    write_config(5.0)
    config = load_config(config_file)
    bare_cap_s = config.settings.coach.plan.cap_s(TODAY)
    prior = load_sessions(state_dir)
    cap_before_s = effective_plan(config.settings.coach.plan, prior, TODAY).cap_s
    write_config(6.0)
    cap_after_reload_s = effective_plan(load_config(config_file).settings.coach.plan, prior, TODAY).cap_s
    write_config(5.0)
    # week 3 of the plan: 5 + 2 x 2 = 9 min bare; the pain held week 2's increase and steps it back: 5 min
    assert (bare_cap_s, cap_before_s, cap_after_reload_s) == (540.0, 300.0, 360.0)

    RELOAD_AT_S, PRESS_AT_S = 60.0, 150.0  # both while walking the first bout (5 s to ~310 s)

    class ScriptedService(Service):
        def open_backend(self):
            self.backend = super().open_backend()
            return self.backend

        def on_tick(self, now_s: float) -> None:
            if now_s >= RELOAD_AT_S and not hasattr(self, "_reloaded"):
                self._reloaded = True
                write_config(6.0)
                self.reload_requested = True
            pin = self.backend.button.pin
            if PRESS_AT_S <= now_s < PRESS_AT_S + 0.3:
                pin.drive_low()  # the button pulls the pin to ground
            elif now_s >= PRESS_AT_S + 0.3 and pin.state == 0:
                pin.drive_high()
            super().on_tick(now_s)

    service = ScriptedService(config, backend="sim", scenario="full-session", seed=2, speed="max")
    assert service.run() == 0
    coach = service.coach
    [session] = [s for s in load_sessions(state_dir) if s.id not in {p.id for p in prior}]
    assert session.pain_reports == 1
    # what the coach held: the plan's 5 min from the history (kept through the reload), shortened by 2 at the press
    assert coach.session.planned_cap_s == cap_before_s
    assert coach.session.cap_s == cap_before_s - 120.0
    assert session.planned_cap_s == cap_before_s
    assert session.cap_s == coach.session.cap_s
    conn = __import__("sqlite3").connect(state_dir / DB_NAME)
    stop_whys = [why for (why,) in conn.execute("SELECT why FROM cues WHERE kind = 'stop' AND session_id = ?", (session.id,))]
    conn.close()
    assert stop_whys and stop_whys[0].endswith(f"cap {session.cap_s / 60:.0f} min")

    status, text = run(["history", "--json", "--days", "1"], state_dir)
    [row] = json.loads(text)
    assert row["cap_min"] == 3.0 and row["planned_cap_min"] == 5.0
    status, text = run(["history", "--days", "1"], state_dir)
    assert f"{row['walk_min']:5.1f}/3 " in text


def test_straighten_up_cues_outside_a_session_are_kept_and_shown(tmp_path):
    """Coaching while standing (``coach_while_standing``) cues with no walk going on: stored without a
    session, and `walkcoach history` counts them instead of letting them vanish."""
    start = dt.datetime.combine(TODAY, dt.time(9, 0)).astimezone()
    store = Store.open(tmp_path, mono_at_open=0.0, wall_at_open=start.timestamp(), planned_cap_s=600.0)
    store(Event(2.0, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, "leaning 25° for 5 s"))  # before any walk
    store(Event(40.0, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, "leaning 22° for 5 s"))
    store(Event(50.0, EventKind.WALK_STARTED))
    store(Event(60.0, EventKind.LEAN_HELD, Cue.STRAIGHTEN_UP, "leaning 18° for 5 s"))  # inside the session
    store(Event(110.0, EventKind.WALK_ENDED, bout=Bout(50.0, 110.0, 110, 110.0, 0.03)))
    store(Event(900.0, EventKind.SESSION_ENDED))
    store.close()
    status, text = run(["history", "--days", "1"], tmp_path)
    assert status == 0
    [row] = [line for line in text.splitlines() if line.startswith(TODAY.isoformat())]
    assert row.split()[-2:] == ["1", "0"]  # one straighten-up cue in the session, no pain
    assert "2 straighten-up cue(s) outside a walking session" in text
