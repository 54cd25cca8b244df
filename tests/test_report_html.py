"""`walkcoach report`: one self-contained HTML file from a history built through the real store,
rendered by a real headless browser (Debian's Chromium) to a screenshot CI keeps."""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.test_history import FIRST_DAY, PLAN, SETTINGS, TODAY, run, write_month
from walkcoach.device.cli.report_html import plan_caps_min
from walkcoach.device.core.plan import effective_plan
from walkcoach.device.shell.store import Store, attach_store, load_sessions

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"  # git-ignored; CI keeps it
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)


def simulated_walk_today(state_dir: Path) -> None:
    """Today's first walk: the full-session scenario through the loop with the store attached."""
    from walkcoach.device.shell.runner import run_simulation

    start = dt.datetime.combine(TODAY, dt.time(7, 0)).astimezone()
    cap_s = effective_plan(PLAN, load_sessions(state_dir), TODAY).cap_s
    store = Store.open(state_dir, mono_at_open=0.0, wall_at_open=start.timestamp(), planned_cap_s=cap_s, plan_settings=PLAN)
    run_simulation(SETTINGS, scenario="full-session", seed=4, on_loop=lambda loop: attach_store(loop, store, wall_clock=None))
    store.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("state")
    write_month(state_dir)
    simulated_walk_today(state_dir)
    out = tmp_path_factory.mktemp("report") / "report.html"
    status, text = run(["report", "--out", str(out), "--days", "35"], state_dir)
    assert status == 0 and text.strip() == f"wrote {out}"
    return state_dir, out, out.read_text(encoding="utf-8")


def test_the_report_is_one_self_contained_file_with_every_walk(report):
    state_dir, out, page = report
    sessions = load_sessions(state_dir)
    shown = [s for s in sessions if s.date >= TODAY - dt.timedelta(days=34)]
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(page) and "<script" not in page and "<link" not in page and "<img" not in page
    assert page.count('<details class="walk"') == len(shown)
    for s in shown:
        assert f'id="walk-{s.id}"' in page
    [simulated] = [s for s in shown if s.date == TODAY and s.started.hour == 7]
    section = page.split(f'id="walk-{simulated.id}"')[1].split("</details>")[0]
    for cue in ("straighten up", "upright again"):
        assert cue in section, cue
    assert "sustained lean" in section and section.count("<tr>") > 5
    for heading in ("This week at a glance", "Walks per day", "Cadence", "Walking speed", "Step length",
                    "Time spent in sustained forward leans", "Each walk"):
        assert heading in page


def test_the_plans_cap_is_drawn_only_from_the_plans_start():
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range(-5, 3)]
    caps = plan_caps_min(PLAN, [], days)
    assert sorted(caps) == days[5:]  # nothing before the plan's first day
    assert set(caps.values()) == {PLAN.start_min}


def test_report_default_name_and_wrong_suffix(tmp_path, report, monkeypatch):
    state_dir = report[0]
    monkeypatch.chdir(tmp_path)
    status, text = run(["report"], state_dir)
    assert status == 0 and (tmp_path / f"walkcoach-report-{TODAY.isoformat()}.html").exists()
    from walkcoach.device.cli.history import HistoryError

    with pytest.raises(HistoryError, match=r"must be an \.html file \(or \.png with --png\)"):
        run(["report", "--out", "r.pdf"], state_dir)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_the_report_renders_in_a_headless_browser(report):
    _, out, page = report
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    if screenshot.exists():
        screenshot.unlink()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--force-device-scale-factor=1"]
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", out.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="walk"') == page.count('<details class="walk"') > 0
    assert "This week at a glance" in dom.stdout and dom.stdout.count("<svg") >= 8
    assert not EXTERNAL.search(dom.stdout)
    with tempfile.TemporaryDirectory() as profile:
        shot = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", f"--screenshot={screenshot}",
                               "--window-size=900,4200", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_a_walk_shortened_by_pain_shows_the_cap_the_coach_used():
    from walkcoach.device.cli.report_html import WalkView, walk_section, walk_time_chart
    from walkcoach.device.core.plan import SessionRecord

    start = dt.datetime.combine(TODAY, dt.time(9, 0)).astimezone()
    session = SessionRecord(id=7, started=start, date=TODAY, ended=start + dt.timedelta(minutes=20), walk_s=11 * 60.0,
                            steps=1200, cap_s=10 * 60.0, planned_cap_s=15 * 60.0, pain_reports=1, closed_by="session_end")
    walk = WalkView(session)
    section = html.unescape(walk_section(walk, open_=True))
    assert "11.0 of 10 min (the plan's 15, shortened after a pain report) · 1200 steps · 1 pain report(s)" in section
    chart = html.unescape(walk_time_chart([walk], [TODAY], {TODAY: 15.0}))
    assert "walked 11.0 min, cap 10.0 min (plan 15, shortened after a pain report), 1 pain report(s)" in chart
    assert 'fill="#d98b2b"' in chart  # past the cap the coach used (10), though within the plan's 15
