"""The history commands: ``walkcoach plan``, ``history``, ``report`` and ``replay``.

``add_history_commands(subparsers)`` (``device.cli.arguments``) adds them to the CLI; ``run_history_command(args, settings)``
runs one and returns the exit status. Errors are ``WalkcoachError`` subclasses
(the CLI prints them as one line, exit status 2).

``report`` needs matplotlib, an optional extra: ``pip install 'walkcoach[plots]'``
(or ``pip install matplotlib``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from walkcoach.device.cli.arguments import HISTORY_COMMANDS as COMMANDS  # noqa: F401  (the CLI's names, as before)
from walkcoach.device.cli.arguments import add_history_commands  # noqa: F401
from walkcoach.device.core.plan import SessionRecord, effective_plan, format_plan
from walkcoach.device.core.settings import DeviceSettings, PlanSettings
from walkcoach.device.core.summary import format_human
from walkcoach.device.shell.recording import RecordingError
from walkcoach.device.shell.store import (
    BoutRecord,
    CueRecord,
    HistoryUnavailable,
    db_path,
    default_state_dir,
    open_for_reading,
    read_bouts,
    read_cues,
    read_sessions,
)
from walkcoach.hal.errors import WalkcoachError
from walkcoach.hal.state_files import write_atomic

REPORT_FILE_MODE = 0o644  # a report is for sharing (with a physiotherapist), as a plain write gives
MATPLOTLIB_HINT = "report needs matplotlib, an optional extra: pip install 'walkcoach[plots]' (or: pip install matplotlib)"


class HistoryError(WalkcoachError, RuntimeError):
    """The history cannot be read or shown; the message says why and what to do."""


class MissingExtra(WalkcoachError, ImportError):
    """An optional dependency is not installed; the message says how to install it."""


def run_history_command(
    args, settings: DeviceSettings | None = None, *, state_dir: Path | None = None, out=None, today: dt.date | None = None
) -> int:
    """Run ``args.command`` (one of COMMANDS); 0 on success. Raises WalkcoachError subclasses on bad input.

    ``today`` is the date the plan, the history window and the report end on (default: the local date,
    read once, so a command run across midnight uses one date throughout)."""
    settings = settings or DeviceSettings()
    out = out or sys.stdout
    today = today or dt.date.today()
    location = getattr(args, "state_dir", None) or state_dir or default_state_dir()
    if args.command == "plan":
        return _cmd_plan(args, settings.coach.plan, location, out, today)
    if args.command == "history":
        return _cmd_history(args, location, out, today)
    if args.command == "report":
        return _cmd_report(args, settings.coach.plan, location, out, today)
    if args.command == "replay":
        return _cmd_replay(args, settings, out)
    raise HistoryError(f"unknown command {args.command}")


# -- plan ----------------------------------------------------------------------------
def _cmd_plan(args, plan: PlanSettings, location, out, today: dt.date) -> int:
    today = args.date or today
    state = effective_plan(plan, _load(location).sessions, today)
    if args.json:
        result = state.to_json()
        result["date"] = today.isoformat()
        print(json.dumps(result), file=out)
    else:
        print(format_plan(state), file=out)
    return 0


# -- reading the history ----------------------------------------------------------------
class History(NamedTuple):
    sessions: list[SessionRecord]
    bouts: list[BoutRecord]
    cues: list[CueRecord]


def _load(location, since: dt.date | None = None) -> History:
    try:
        conn = open_for_reading(location)
    except HistoryUnavailable as exc:
        raise HistoryError(str(exc)) from None
    if conn is None:
        return History([], [], [])
    try:
        return History(read_sessions(conn, since), read_bouts(conn, since), read_cues(conn, since))
    except (sqlite3.Error, ValueError, TypeError) as exc:  # a broken file, or a row whose text or number does not parse
        raise HistoryError(f"cannot read {db_path(location)}: {exc}") from None
    finally:
        conn.close()


class SessionRow(NamedTuple):
    """One line of `walkcoach history`."""

    date: str
    started: str  # local time HH:MM
    walk_min: float
    cap_min: float  # the cap the coach held this session to (the plan's, shortened by a pain report)
    planned_cap_min: float  # the plan's cap the coach started from
    steps: int
    cadence_spm: float | None
    speed_m_s: float | None
    step_length_m: float | None
    mean_lean_deg: float | None
    straighten_up_cues: int
    pain_reports: int
    closed_by: str | None

    def to_json(self) -> dict:
        return {JSON_KEYS.get(k, k): (round(v, 2) if isinstance(v, float) else v) for k, v in self._asdict().items()}


JSON_KEYS = {"speed_m_s": "speed_ms"}  # `history --json` keeps the key scripts already read (m/s, as before)


def _weighted(bouts: Sequence[BoutRecord], attr: str) -> float | None:
    total = weight = 0.0
    for bout in bouts:
        value = getattr(bout, attr)
        if value is None:
            continue
        w = max(bout.duration_s, 0.0)
        total += value * w
        weight += w
    return total / weight if weight > 0 else None


def session_cap_s(session: SessionRecord) -> float:
    """The cap the coach held the session to (what its cap cues said), from the stored row."""
    return session.cap_s or session.planned_cap_s


def session_rows(history: History) -> list[SessionRow]:
    bouts_by = defaultdict(list)
    for bout in history.bouts:
        bouts_by[bout.session_id].append(bout)
    cues_by: defaultdict[int | None, int] = defaultdict(int)
    for cue in history.cues:
        if cue.kind == "straighten_up":
            cues_by[cue.session_id] += 1
    rows = []
    for s in history.sessions:
        bouts = bouts_by[s.id]
        rows.append(
            SessionRow(
                date=s.date.isoformat(),
                started=s.started.strftime("%H:%M"),
                walk_min=s.walk_s / 60.0,
                cap_min=session_cap_s(s) / 60.0,
                planned_cap_min=(s.planned_cap_s or s.cap_s) / 60.0,
                steps=s.steps,
                cadence_spm=_weighted(bouts, "cadence_spm"),
                speed_m_s=_weighted(bouts, "speed_m_s"),
                step_length_m=_weighted(bouts, "step_length_m"),
                mean_lean_deg=_weighted(bouts, "mean_lean_deg"),
                straighten_up_cues=cues_by[s.id],
                pain_reports=s.pain_reports,
                closed_by=s.closed_by,
            )
        )
    return rows


def _cmd_history(args, location, out, today: dt.date) -> int:
    since = today - dt.timedelta(days=args.days - 1)
    history = _load(location, since)
    rows = session_rows(history)
    if args.json:
        print(json.dumps([row.to_json() for row in rows]), file=out)
        return 0
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(SessionRow._fields)
        for row in rows:
            writer.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, float) else v) for v in row])
        out.write(buffer.getvalue())
        return 0
    print(format_history(rows, args.days, db_path(location), outside_cues=straighten_up_outside_sessions(history)),
          file=out)
    return 0


def straighten_up_outside_sessions(history: History) -> int:
    """Straighten-up cues given while no walk was going on (``coach_while_standing``): no session holds them."""
    return sum(1 for cue in history.cues if cue.session_id is None and cue.kind == "straighten_up")


def _fmt(value, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"


def _minutes(value: float) -> str:
    """A cap in minutes: whole minutes plain, a pain-shortened one to a tenth."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def format_history(rows: Sequence[SessionRow], days: int, path: Path, *, outside_cues: int = 0) -> str:
    outside = f"{outside_cues} straighten-up cue(s) outside a walking session (standing)"
    if not rows:
        return f"no sessions in the last {days} day(s) ({path})" + (f"; {outside}" if outside_cues else "")
    lines = ["date        start  walk/cap min  steps  cadence  speed  lean  straighten  pain"]
    for r in rows:
        lines.append(
            f"{r.date}  {r.started}  {r.walk_min:5.1f}/{_minutes(r.cap_min):<5}  {r.steps:5d}  "
            f"{_fmt(r.cadence_spm, '.0f', 7)}  {_fmt(r.speed_m_s, '.2f', 5)}  {_fmt(r.mean_lean_deg, '.0f', 3)}°  "
            f"{r.straighten_up_cues:10d}  {r.pain_reports:4d}"
            + ("  (recovered after a crash)" if r.closed_by == "recovered_after_crash" else "")
            + ("  (in progress, or not yet recovered)" if r.closed_by is None else "")
        )
    total_min = sum(r.walk_min for r in rows)
    walk_days = len({r.date for r in rows})
    lines.append(
        f"{len(rows)} session(s) on {walk_days} day(s), {total_min:.0f} min walked; "
        f"{sum(r.pain_reports for r in rows)} pain report(s). cadence steps/min, speed m/s, lean degrees forward."
    )
    if outside_cues:
        lines.append(outside)
    return "\n".join(lines)


# -- report --------------------------------------------------------------------------
def _cmd_report(args, plan: PlanSettings, location, out, today: dt.date) -> int:
    as_png = getattr(args, "png", False)
    out_path: Path = args.out or Path(f"walkcoach-report-{today.isoformat()}.{'png' if as_png else 'html'}")
    suffix = out_path.suffix.lower()
    if as_png and suffix != ".png":
        raise HistoryError(f"--out {out_path} must be a .png file with --png")
    if not as_png and suffix == ".png":
        as_png = True  # --out walks.png: what the name asks for
    elif not as_png and suffix not in (".html", ".htm"):
        raise HistoryError(f"--out {out_path} must be an .html file (or .png with --png)")
    history = _load(location)
    if not history.sessions:
        raise HistoryError(f"no sessions to report yet ({db_path(location)})")
    first_day = today - dt.timedelta(days=args.days - 1)
    if as_png:
        render_report(history, plan, out_path, first_day=first_day, last_day=today)
    else:
        from walkcoach.device.cli.report_html import render_html

        text = render_html(history, plan, first_day=first_day, last_day=today, generated=dt.datetime.now().astimezone())
        _write_text_atomically(out_path, text)
    print(f"wrote {out_path}", file=out)
    return 0


def _write_text_atomically(path: Path, text: str) -> None:
    try:
        write_atomic(path, text.encode("utf-8"), mode=REPORT_FILE_MODE)
    except OSError as exc:
        raise HistoryError(f"cannot write {path}: {exc.strerror or exc}") from None


def _weekly(rows, first_day: dt.date, last_day: dt.date, start: dt.date):
    """(week middle dates, weekly walk-time-weighted mean) over the plan's weeks; the week in
    progress is placed at its middle so far."""
    groups = defaultdict(list)
    for day, _session_id, value, weight in rows:
        if value is not None and day >= first_day:
            groups[(day - start).days // 7].append((value, weight))
    xs, ys = [], []
    for week in sorted(groups):
        pairs = groups[week]
        w = sum(p[1] for p in pairs)
        if w <= 0:
            continue
        week_start = start + dt.timedelta(days=7 * week)
        xs.append(min(week_start + dt.timedelta(days=3), week_start + (last_day - week_start) / 2))
        ys.append(sum(v * wt for v, wt in pairs) / w)
    return xs, ys


def render_report(history: History, plan: PlanSettings, out_path: Path, *, first_day: dt.date, last_day: dt.date) -> None:
    """Walk time per session against the plan's cap, and weekly cadence, speed and lean; pain marked."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra(MATPLOTLIB_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    sessions = [s for s in history.sessions if first_day <= s.date <= last_day]
    all_sessions = history.sessions
    start = effective_plan(plan, all_sessions, last_day).start_date
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    caps_min = [effective_plan(plan, [s for s in all_sessions if s.date < day], day).cap_s / 60.0 for day in days]

    by_day = defaultdict(list)
    for s in sessions:
        by_day[s.date].append(s)
    bouts_by = defaultdict(list)
    for bout in history.bouts:
        bouts_by[bout.session_id].append(bout)
    date_of = {s.id: s.date for s in sessions}
    per_session = {
        attr: [(date_of[s.id], s.id, _weighted(bouts_by[s.id], attr), s.walk_s) for s in sessions]
        for attr in ("cadence_spm", "speed_m_s", "mean_lean_deg")
    }
    pain_days = sorted({s.date for s in sessions if s.pain_reports > 0})

    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True, gridspec_kw={"height_ratios": [2.2, 1, 1, 1]})
    ax = axes[0]
    for day, day_sessions in by_day.items():
        n = len(day_sessions)
        width = 0.8 / n
        for k, s in enumerate(sorted(day_sessions, key=lambda s: s.started)):
            x = mdates.date2num(day) - 0.4 + width * (k + 0.5)
            over = s.walk_s / 60.0 > session_cap_s(s) / 60.0 + 0.5
            ax.bar(x, s.walk_s / 60.0, width=width * 0.9, color="#d98b2b" if over else "#3b7dd8", edgecolor="none")
            if s.pain_reports:
                ax.plot(x, s.walk_s / 60.0 + 1.0, marker="v", color="#c0392b", markersize=8, linestyle="none")
    caps_min = [c if d >= start else float("nan") for d, c in zip(days, caps_min, strict=True)]  # no cap before the plan began
    ax.step([mdates.date2num(d) - 0.5 for d in days] + [mdates.date2num(days[-1]) + 0.5], caps_min + [caps_min[-1]],
            where="post", color="#222222", linewidth=1.6, label="plan's cap per walk")
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Patch(color="#3b7dd8", label="walk (one bar per session)"),
        Patch(color="#d98b2b", label="walked past the cap"),
        Line2D([], [], marker="v", color="#c0392b", linestyle="none", label="pain reported"),
    ]
    ax.set_ylabel("walk time (min)")
    ax.set_title(f"walkcoach: walks from {first_day.isoformat()} to {last_day.isoformat()}")
    ax.legend(handles=handles, loc="upper left", fontsize=8, ncol=4)
    ax.set_ylim(0, max([c for c in caps_min if c == c] + [s.walk_s / 60.0 for s in sessions] + [1.0]) * 1.25 + 1)

    panels = [
        ("cadence_spm", "cadence (steps/min)", "#2c8c5a"),
        ("speed_m_s", "speed (m/s)", "#7b4bb7"),
        ("mean_lean_deg", "mean lean (° forward)", "#b5651d"),
    ]
    for ax, (attr, label, color) in zip(axes[1:], panels, strict=True):
        points = [(d, v) for d, _, v, _ in per_session[attr] if v is not None]
        if points:
            ax.plot([mdates.date2num(d) for d, _ in points], [v for _, v in points], "o", color=color, alpha=0.25,
                    markersize=3, label="per session")
        xs, ys = _weekly(per_session[attr], first_day, last_day, start)
        if xs:
            ax.plot([mdates.date2num(x) for x in xs], ys, "-o", color=color, linewidth=2, label="weekly mean")
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center", color="#888888")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        if points:
            ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        for day in pain_days:
            ax.axvspan(mdates.date2num(day) - 0.5, mdates.date2num(day) + 0.5, color="#c0392b", alpha=0.08, linewidth=0)
    axes[-1].xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO))
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    axes[-1].set_xlim(mdates.date2num(first_day) - 0.6, mdates.date2num(last_day) + 0.6)
    fig.text(0.01, 0.005, "Shaded days: a pain report. Weekly means over the plan's weeks, weighted by walk time.",
             fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    try:
        fig.savefig(out_path, dpi=100)
    except OSError as exc:
        raise HistoryError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


# -- replay --------------------------------------------------------------------------
def _cmd_replay(args, settings: DeviceSettings, out) -> int:
    from walkcoach.device.offline.replay import read_recording, replay, replay_json  # numpy-heavy: only when replaying

    if args.cap_min is not None and not args.cap_min > 0:
        raise RecordingError(f"--cap-min must be positive, not {args.cap_min:g}")
    recording = read_recording(
        args.file,
        units=args.units,
        upright=args.upright,
        rate_hz=args.rate,
        default_rate_hz=settings.loop.rate_hz,
        settings=settings.coach,
    )
    result = replay(recording, settings, cap_s=None if args.cap_min is None else args.cap_min * 60.0)
    if args.json:
        print(json.dumps(replay_json(recording, result)), file=out)
        return 0
    kind = "walkcoach recording" if recording.kind == "walkcoach-v1" else "plain CSV"
    print(
        f"replay {recording.path} ({kind}, {recording.source_rate_hz:.0f} Hz"
        + (f" resampled to {recording.rate_hz:g} Hz" if abs(recording.source_rate_hz - recording.rate_hz) > 0.5 else "")
        + f"), cap {result.cap_s / 60:.0f} min",
        file=out,
    )
    if recording.frame is not None:
        f = recording.frame
        print(f"body frame: upright from the {f.upright_method}; forward: {f.forward_method}; gravity: {f.gravity_method}", file=out)
    for warning in recording.warnings:
        print(f"walkcoach: warning: {warning}", file=sys.stderr)
    print(format_human(result.summary, result.duration_s), file=out)
    print(f"replayed {result.duration_s / 60:.1f} min in {result.elapsed_s:.2f} s ({result.speed_x:.0f}x real time)", file=out)
    return 0
