"""`walkcoach report`: one self-contained HTML file from the history alone.

No server, no network, no external assets: the CSS is inline and every chart is
an inline SVG drawn here in plain Python, so the file opens from a USB stick or
an e-mail attachment. Sections:

- this week at a glance: walks per day against the suggested 2-3, walk time
  per walk against the cap the coach used and the plan's cap, pain reports;
- trends over the report's days: walk time per day, cadence, speed, step
  length and time spent in sustained leans (walk-time-weighted daily means);
- one section per walk: its bouts along the walk's clock with their mean and
  peak lean (the store keeps per-bout lean, not lean over time), its sustained
  leans, and every cue with its reason.

Axes are fixed to meaningful ranges (cadence 60-140 steps/min, speed 0-2 m/s,
step length 0-1 m), widened only when a value falls outside. Dates are shown
by day. The plan's cap is drawn from the plan's start only.

The time spent leaning comes from the stored ``upright_again`` cues ("upright
again after N s"), which end every lean the coach cued; a lean it did not cue
(tracking mode, the cue limit) is not counted.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from walkcoach.device.core.plan import SessionRecord, effective_plan, plan_start_date
from walkcoach.device.core.settings import PlanSettings

BLUE, ORANGE, RED, INK, GREY, GREEN, PURPLE, BROWN = (
    "#3b7dd8", "#d98b2b", "#c0392b", "#222222", "#8a8a8a", "#2c8c5a", "#7b4bb7", "#b5651d")
CUE_COLOURS = {
    "straighten_up": BROWN, "upright_again": GREEN, "cap_warning": ORANGE, "stop": RED,
    "pain_ack": PURPLE, "ready": GREY, "fault": INK,
}
CUE_WORDS = {
    "straighten_up": "straighten up", "upright_again": "upright again", "cap_warning": "a minute left",
    "stop": "stop", "pain_ack": "pain report taken", "ready": "ready", "fault": "sensor fault",
}
OPEN_WALK_DAYS = 7  # walks of the last week are shown open, older ones folded
_UPRIGHT_AFTER = re.compile(r"upright again after (\d+(?:\.\d+)?) s")


def esc(text) -> str:
    return html.escape(str(text), quote=True)


# -- what the report shows, from the stored rows ------------------------------------------
@dataclass
class WalkView:
    session: SessionRecord
    bouts: list = field(default_factory=list)
    cues: list = field(default_factory=list)

    @property
    def cap_s(self) -> float:  # the cap the coach held this walk to
        return self.session.cap_s or self.session.planned_cap_s

    @property
    def walk_min(self) -> float:
        return self.session.walk_s / 60.0

    def weighted(self, attr: str) -> float | None:
        total = weight = 0.0
        for bout in self.bouts:
            value = getattr(bout, attr)
            if value is not None and bout.duration_s > 0:
                total += value * bout.duration_s
                weight += bout.duration_s
        return total / weight if weight > 0 else None

    def lean_episodes(self) -> list[tuple[dt.datetime, dt.datetime]]:
        """(start, end) of each lean the coach cued, from its ``upright_again`` cue."""
        episodes = []
        for cue in self.cues:
            match = _UPRIGHT_AFTER.search(cue.why) if cue.kind == "upright_again" else None
            if match:
                episodes.append((cue.time - dt.timedelta(seconds=float(match.group(1))), cue.time))
        return episodes

    @property
    def lean_s(self) -> float | None:
        """Seconds in cued leans; None when the walk had straighten-up cues but no upright-again
        cue ends any of them (that cue switched off): unknown, not zero."""
        episodes = self.lean_episodes()
        if not episodes and any(c.kind == "straighten_up" for c in self.cues):
            return None
        return sum((end - start).total_seconds() for start, end in episodes)


def walk_views(history) -> list[WalkView]:
    views = {s.id: WalkView(s) for s in history.sessions}
    for bout in history.bouts:
        if bout.session_id in views:
            views[bout.session_id].bouts.append(bout)
    for cue in history.cues:
        if cue.session_id in views:
            views[cue.session_id].cues.append(cue)
    return sorted(views.values(), key=lambda w: w.session.started)


# -- a small SVG chart kit ------------------------------------------------------------------
class Chart:
    """A plot area with linear scales; ``parts`` collects SVG elements; ``svg()`` closes it."""

    def __init__(self, width: int, height: int, x_range: tuple[float, float], y_range: tuple[float, float],
                 *, left: int = 52, right: int = 14, top: int = 12, bottom: int = 40, label: str = "") -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.label = label
        self.parts: list[str] = []

    def x(self, v: float) -> float:
        return self.left + (v - self.x0) / (self.x1 - self.x0) * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        v = min(max(v, self.y0), self.y1)
        return self.height - self.bottom - (v - self.y0) / (self.y1 - self.y0) * (self.height - self.top - self.bottom)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def y_axis(self, ticks: Iterable[float], title: str, fmt=lambda v: f"{v:g}") -> None:
        for v in ticks:
            y = self.y(v)
            self.add(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
            self.add(f'<text x="{self.left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{esc(fmt(v))}</text>')
        mid = (self.top + self.height - self.bottom) / 2
        self.add(f'<text x="12" y="{mid:.1f}" class="axis" transform="rotate(-90 12 {mid:.1f})" '
                 f'text-anchor="middle">{esc(title)}</text>')

    def x_ticks(self, ticks: Iterable[tuple[float, str, bool]]) -> None:
        """(value, label, strong) ticks under the plot area; strong ones get a grid line."""
        base = self.height - self.bottom
        for v, label, strong in ticks:
            x = self.x(v)
            self.add(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + (6 if strong else 3)}" class="axisline"/>')
            if strong:
                self.add(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.top}" y2="{base}" class="grid"/>')
            if label:
                for k, line in enumerate(label.split("\n")):
                    self.add(f'<text x="{x:.1f}" y="{base + 17 + 12 * k}" class="tick" text-anchor="middle">{esc(line)}</text>')

    def frame(self) -> None:
        base = self.height - self.bottom
        self.add(f'<line x1="{self.left}" x2="{self.width - self.right}" y1="{base}" y2="{base}" class="axisline"/>')

    def svg(self) -> str:
        return (f'<svg viewBox="0 0 {self.width} {self.height}" width="100%" role="img" aria-label="{esc(self.label)}">'
                + "".join(self.parts) + "</svg>")


def axis_range(values: Sequence[float], low: float, high: float, step: float) -> tuple[float, float]:
    """The fixed range [low, high], widened by whole steps to hold every value."""
    lo, hi = low, high
    for v in values:
        while v < lo:
            lo -= step
        while v > hi:
            hi += step
    return lo, hi


def ticks_between(lo: float, hi: float, step: float) -> list[float]:
    out, v = [], lo
    while v <= hi + 1e-9:
        out.append(round(v, 6))
        v += step
    return out


def day_ticks(first_day: dt.date, last_day: dt.date) -> list[tuple[float, str, bool]]:
    """One tick a day; up to 16 days every day is named ("Tue\\n3 Mar" at a new month, else "Tue\\n3"),
    beyond that the Mondays are named and carry a grid line."""
    n = (last_day - first_day).days + 1
    ticks: list[tuple[float, str, bool]] = []
    for i in range(n):
        day = first_day + dt.timedelta(days=i)
        new_month = i == 0 or day.day == 1
        if n <= 16:
            label = f"{day:%a}\n{day.day}" + (f" {day:%b}" if new_month else "")
            ticks.append((day.toordinal(), label, day.weekday() == 0))
        else:
            named = day.weekday() == 0 or i == 0
            ticks.append((day.toordinal(), f"Mon\n{day.day} {day:%b}" if day.weekday() == 0 else
                          (f"{day:%a}\n{day.day} {day:%b}" if i == 0 else ""), named))
    return ticks


def day_chart(first_day: dt.date, last_day: dt.date, y_range, *, height: int = 200, label: str = "") -> Chart:
    return Chart(760, height, (first_day.toordinal() - 0.5, last_day.toordinal() + 0.5), y_range, label=label)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """(css swatch class or colour, words) as an HTML legend under a chart."""
    spans = []
    for colour, words in items:
        style = f'background:{colour}' if colour.startswith("#") else ""
        cls = "sw" if colour.startswith("#") else f"sw {colour}"
        spans.append(f'<span class="key"><span class="{cls}" style="{style}"></span>{esc(words)}</span>')
    return '<div class="legend">' + "".join(spans) + "</div>"


# -- the plan's cap per day ---------------------------------------------------------------------
def plan_caps_min(plan: PlanSettings, sessions: Sequence[SessionRecord], days: Sequence[dt.date]) -> dict[dt.date, float]:
    """The plan's cap each day from the plan's start (days before it have none), as the coach got it
    that morning: from the sessions before that day."""
    start = plan_start_date(plan, sessions, days[-1] if days else dt.date.today())
    caps = {}
    for day in days:
        if day >= start:
            caps[day] = effective_plan(plan, [s for s in sessions if s.date < day], day).cap_s / 60.0
    return caps


def cap_steps(chart: Chart, caps: dict[dt.date, float]) -> None:
    if not caps:
        return
    points: list[str] = []
    for day in sorted(caps):
        x0, x1 = chart.x(day.toordinal() - 0.5), chart.x(day.toordinal() + 0.5)
        y = chart.y(caps[day])
        if points and (day - dt.timedelta(days=1)) in caps:
            points.append(f"{x0:.1f},{y:.1f}")
        else:
            if points:
                chart.add(f'<polyline points="{" ".join(points)}" class="cap"/>')
            points = [f"{x0:.1f},{y:.1f}"]
        points.append(f"{x1:.1f},{y:.1f}")
    chart.add(f'<polyline points="{" ".join(points)}" class="cap"/>')


# -- the sections ---------------------------------------------------------------------------------
def walks_per_day_chart(walks: Sequence[WalkView], days: Sequence[dt.date], target: tuple[int, int]) -> str:
    counts: defaultdict[dt.date, int] = defaultdict(int)
    for w in walks:
        if w.session.walk_s > 0:
            counts[w.session.date] += 1
    lo, hi = target
    top = max([hi + 1, 4] + [counts[d] for d in days])
    chart = day_chart(days[0], days[-1], (0, top), height=170, label="walks per day against the suggestion")
    chart.add(f'<rect x="{chart.left}" y="{chart.y(hi):.1f}" width="{chart.width - chart.left - chart.right}" '
              f'height="{chart.y(lo) - chart.y(hi):.1f}" class="target"/>')
    chart.y_axis(range(0, top + 1), "walks")
    chart.x_ticks(day_ticks(days[0], days[-1]))
    for day in days:
        n = counts[day]
        if n:
            x = chart.x(day.toordinal() - 0.3)
            chart.add(f'<rect x="{x:.1f}" y="{chart.y(n):.1f}" width="{chart.x(day.toordinal() + 0.3) - x:.1f}" '
                      f'height="{chart.y(0) - chart.y(n):.1f}" fill="{GREEN if lo <= n <= hi else BLUE}"><title>'
                      f'{esc(f"{day:%a %d %b}: {n} walk(s)")}</title></rect>')
    chart.frame()
    return chart.svg() + legend([("target", f"suggested {lo}-{hi} walks a day"), (GREEN, "within the suggestion"),
                                 (BLUE, "fewer or more")])


def walk_time_chart(walks: Sequence[WalkView], days: Sequence[dt.date], caps: dict[dt.date, float], *,
                    height: int = 230) -> str:
    """One bar per walk (grouped by day) against the cap the coach used (a tick) and the plan's cap (a line)."""
    in_range = [w for w in walks if days[0] <= w.session.date <= days[-1]]
    top_min = max([10.0] + list(caps.values()) + [w.walk_min for w in in_range] + [w.cap_s / 60 for w in in_range])
    top = 5 * (int(top_min * 1.15 / 5) + 1)
    chart = day_chart(days[0], days[-1], (0, top), height=height, label="walk time per walk against the cap")
    chart.y_axis(ticks_between(0, top, 5 if top <= 40 else 10), "minutes")
    chart.x_ticks(day_ticks(days[0], days[-1]))
    cap_steps(chart, caps)  # under the bars and their ticks
    by_day = defaultdict(list)
    for w in in_range:
        by_day[w.session.date].append(w)
    for day, day_walks in by_day.items():
        n = len(day_walks)
        width = 0.8 / n
        for k, w in enumerate(day_walks):
            x0 = chart.x(day.toordinal() - 0.4 + width * k + width * 0.05)
            x1 = chart.x(day.toordinal() - 0.4 + width * (k + 0.95))
            cap_min = w.cap_s / 60.0
            over = w.walk_min > cap_min + 0.5
            title = (f"{w.session.started:%a %d %b %H:%M}: walked {w.walk_min:.1f} min, cap {cap_min:.1f} min"
                     + (f" (plan {w.session.planned_cap_s / 60:.0f}, shortened after a pain report)"
                        if w.session.planned_cap_s and cap_min < w.session.planned_cap_s / 60 - 0.05 else "")
                     + (f", {w.session.pain_reports} pain report(s)" if w.session.pain_reports else ""))
            chart.add(f'<rect x="{x0:.1f}" y="{chart.y(w.walk_min):.1f}" width="{x1 - x0:.1f}" '
                      f'height="{chart.y(0) - chart.y(w.walk_min):.1f}" fill="{ORANGE if over else BLUE}">'
                      f"<title>{esc(title)}</title></rect>")
            if cap_min > 0:
                y = chart.y(cap_min)
                chart.add(f'<line x1="{x0 - 2:.1f}" x2="{x1 + 2:.1f}" y1="{y:.1f}" y2="{y:.1f}" class="used"/>')
            if w.session.pain_reports:
                cx, cy = (x0 + x1) / 2, chart.y(max(w.walk_min, cap_min)) - 8
                chart.add(f'<path d="M{cx - 5:.1f},{cy - 5:.1f} L{cx + 5:.1f},{cy - 5:.1f} L{cx:.1f},{cy + 3:.1f} Z" fill="{RED}">'
                          f"<title>{esc(f'{w.session.pain_reports} pain report(s)')}</title></path>")
    chart.frame()
    return chart.svg() + legend([(BLUE, "a walk (one bar each)"), (ORANGE, "walked past its cap"),
                                 ("used", "the cap the coach used for that walk"), ("cap", "the plan's cap (from its start)"),
                                 (RED, "pain reported")])


def daily_means(walks: Sequence[WalkView], value) -> dict[dt.date, float]:
    """Walk-time-weighted daily mean of ``value(walk)`` (None skipped)."""
    sums: defaultdict[dt.date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for w in walks:
        v = value(w)
        if v is None or w.session.walk_s <= 0:
            continue
        sums[w.session.date][0] += v * w.session.walk_s
        sums[w.session.date][1] += w.session.walk_s
    return {day: total / weight for day, (total, weight) in sums.items() if weight > 0}


def trend_chart(points: dict[dt.date, float], days: Sequence[dt.date], *, title: str, unit: str, fixed: tuple[float, float],
                step: float, colour: str, fmt=lambda v: f"{v:g}", bars: bool = False) -> str:
    lo, hi = axis_range([v for d, v in points.items() if days[0] <= d <= days[-1]], *fixed, step)
    chart = day_chart(days[0], days[-1], (lo, hi), height=160, label=title)
    chart.y_axis(ticks_between(lo, hi, step), unit, fmt)
    chart.x_ticks(day_ticks(days[0], days[-1]))
    shown = sorted((d, v) for d, v in points.items() if days[0] <= d <= days[-1])
    if not shown:
        chart.add(f'<text x="{chart.width / 2:.0f}" y="{chart.height / 2:.0f}" class="none" text-anchor="middle">not measured</text>')
    elif bars:
        for d, v in shown:
            x0, x1 = chart.x(d.toordinal() - 0.35), chart.x(d.toordinal() + 0.35)
            chart.add(f'<rect x="{x0:.1f}" y="{chart.y(v):.1f}" width="{x1 - x0:.1f}" height="{chart.y(lo) - chart.y(v):.1f}" '
                      f'fill="{colour}"><title>{esc(f"{d:%a %d %b}: {fmt(v)} {unit}")}</title></rect>')
    else:
        segments, current, previous = [], [], None
        for d, v in shown:  # a line joins consecutive days; a day without walking breaks it
            if previous is not None and (d - previous).days > 1:
                segments.append(current)
                current = []
            current.append((d, v))
            previous = d
        segments.append(current)
        for segment in segments:
            if len(segment) > 1:
                pts = " ".join(f"{chart.x(d.toordinal()):.1f},{chart.y(v):.1f}" for d, v in segment)
                chart.add(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for d, v in shown:
            chart.add(f'<circle cx="{chart.x(d.toordinal()):.1f}" cy="{chart.y(v):.1f}" r="3.2" fill="{colour}">'
                      f'<title>{esc(f"{d:%a %d %b}: {fmt(v)} {unit}")}</title></circle>')
    chart.frame()
    return f"<h3>{esc(title)}</h3>" + chart.svg()


def walk_timeline(walk: WalkView) -> str:
    """The walk on its own clock (minutes from its start): bouts with mean and peak lean, sustained
    leans shaded, every cue as a mark."""
    start = walk.session.started
    minutes = lambda t: (t - start).total_seconds() / 60.0  # noqa: E731
    end_min = max([minutes(b.ended) for b in walk.bouts] + [minutes(c.time) for c in walk.cues] + [walk.walk_min, 1.0])
    span = 5 * (int(end_min * 1.05 / 5) + 1)
    leans = [v for b in walk.bouts for v in (b.mean_lean_deg, b.peak_lean_deg) if v is not None]
    lo, hi = axis_range(leans, 0, 30, 10)  # a backward lean (negative) widens it downwards
    chart = Chart(760, 210, (0, span), (lo, hi), right=30, bottom=62, label="the walk: bouts, lean and cues")
    chart.y_axis(ticks_between(lo, hi, 10), "lean °", lambda v: f"{v:g}°")
    chart.x_ticks([(m, f"{m:g} min" if m % 5 == 0 else "", m % 5 == 0) for m in range(0, span + 1)])
    for a, b in walk.lean_episodes():
        x0, x1 = chart.x(minutes(a)), chart.x(minutes(b))
        chart.add(f'<rect x="{x0:.1f}" y="{chart.top}" width="{max(x1 - x0, 1.5):.1f}" height="{chart.y(lo) - chart.top:.1f}" '
                  f'class="leanband"><title>{esc(f"sustained lean, {(b - a).total_seconds():.0f} s")}</title></rect>')
    for bout in walk.bouts:
        x0, x1 = chart.x(minutes(bout.started)), chart.x(minutes(bout.ended))
        mean = bout.mean_lean_deg
        title = (f"bout {bout.started:%H:%M:%S}-{bout.ended:%H:%M:%S}: {bout.steps} steps"
                 + (f", {bout.cadence_spm:.0f} steps/min" if bout.cadence_spm else "")
                 + (f", mean lean {mean:.0f}°" if mean is not None else "")
                 + (f", peak {bout.peak_lean_deg:.0f}°" if bout.peak_lean_deg is not None else ""))
        y, y_zero = chart.y(mean if mean is not None else 0.0), chart.y(0.0)
        y_top, height = min(y, y_zero), max(abs(y_zero - y), 1.5)  # a bar from 0° to the mean, either way
        chart.add(f'<rect x="{x0:.1f}" y="{y_top:.1f}" width="{max(x1 - x0, 1.5):.1f}" height="{height:.1f}" '
                  f'fill="{BLUE}" fill-opacity="0.55"><title>{esc(title)}</title></rect>')
        if bout.peak_lean_deg is not None:
            yp = chart.y(bout.peak_lean_deg)
            chart.add(f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{yp:.1f}" y2="{yp:.1f}" class="peak"/>')
    base = chart.height - chart.bottom
    for cue in walk.cues:
        x = chart.x(minutes(cue.time))
        colour = CUE_COLOURS.get(cue.kind, INK)
        chart.add(f'<path d="M{x:.1f},{base + 24} l-5,9 l10,0 Z" fill="{colour}"><title>'
                  f'{esc(f"{cue.time:%H:%M:%S} {CUE_WORDS.get(cue.kind, cue.kind)}: {cue.why}")}</title></path>')
    chart.add(f'<text x="{chart.left - 6}" y="{base + 33}" class="tick" text-anchor="end">cues</text>')
    chart.frame()
    order = list(CUE_COLOURS)
    kinds = sorted({c.kind for c in walk.cues}, key=lambda k: (order.index(k) if k in order else len(order), k))
    return chart.svg() + legend([(BLUE, "a bout: mean lean"), ("peak", "peak lean"), ("leanband", "sustained lean (cued)")]
                                + [(CUE_COLOURS.get(k, INK), CUE_WORDS.get(k, k)) for k in kinds])


def _num(value, spec: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def walk_section(walk: WalkView, *, open_: bool) -> str:
    s = walk.session
    cap_min = walk.cap_s / 60.0
    planned = s.planned_cap_s / 60.0 if s.planned_cap_s else cap_min
    cap_text = f"{cap_min:.1f}".removesuffix(".0") + " min"
    if planned > cap_min + 0.05:
        cap_text += f" (the plan's {planned:.0f}, shortened after a pain report)"
    ended = {"session_end": "", "shutdown": " · ended by a shutdown", "recovered_after_crash": " · recovered after a crash",
             None: " · in progress or not recovered yet"}.get(s.closed_by, "")
    head = (f"{s.started:%a %d %b %Y, %H:%M} · {walk.walk_min:.1f} of {cap_text} · {s.steps} steps"
            + (f" · {s.pain_reports} pain report(s)" if s.pain_reports else "") + ended)
    rows = []
    for k, b in enumerate(walk.bouts, 1):
        rows.append(
            f"<tr><td>{k}</td><td>{b.started:%H:%M:%S}</td><td>{b.duration_s / 60:.1f}</td><td>{b.steps}</td>"
            f"<td>{_num(b.cadence_spm, '.0f')}</td><td>{_num(b.step_length_m, '.2f')}</td><td>{_num(b.speed_m_s, '.2f')}</td>"
            f"<td>{_num(b.mean_lean_deg, '.0f', '°')}</td><td>{_num(b.peak_lean_deg, '.0f', '°')}</td></tr>")
    bouts = ("<table><tr><th>bout</th><th>start</th><th>min</th><th>steps</th><th>steps/min</th><th>step m</th>"
             "<th>m/s</th><th>mean lean</th><th>peak lean</th></tr>" + "".join(rows) + "</table>") if rows else "<p>no bouts stored</p>"
    cue_rows = "".join(
        f'<tr><td>{c.time:%H:%M:%S}</td><td><span class="sw" style="background:{CUE_COLOURS.get(c.kind, INK)}"></span>'
        f"{esc(CUE_WORDS.get(c.kind, c.kind))}</td><td>{esc(c.why)}</td></tr>" for c in walk.cues)
    cues = ("<table><tr><th>time</th><th>cue</th><th>why</th></tr>" + cue_rows + "</table>") if cue_rows else "<p>no cues</p>"
    return (f'<details class="walk" id="walk-{s.id}"{" open" if open_ else ""}><summary>{esc(head)}</summary>'
            f"{walk_timeline(walk)}<div class='cols'><div><h4>bouts</h4>{bouts}</div><div><h4>cues</h4>{cues}</div></div>"
            "</details>")


def at_a_glance(walks: Sequence[WalkView], week: Sequence[dt.date], target: tuple[int, int]) -> str:
    mine = [w for w in walks if week[0] <= w.session.date <= week[-1] and w.session.walk_s > 0]
    per_day: defaultdict[dt.date, int] = defaultdict(int)
    for w in mine:
        per_day[w.session.date] += 1
    lo, hi = target
    within = sum(1 for d in week if lo <= per_day[d] <= hi)
    over = sum(1 for w in mine if w.walk_min > w.cap_s / 60.0 + 0.5)
    pain = sum(w.session.pain_reports for w in mine)
    figures = [
        (f"{len(mine)}", "walks"),
        (f"{sum(w.walk_min for w in mine):.0f} min", "walked"),
        (f"{within} of {len(week)}", f"days with {lo}-{hi} walks"),
        (f"{over}", "walks past their cap"),
        (f"{pain}", "pain reports"),
    ]
    return '<div class="figures">' + "".join(
        f'<div class="figure"><b>{esc(v)}</b><span>{esc(t)}</span></div>' for v, t in figures) + "</div>"


CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;margin:0;background:#f6f6f3}
main{max-width:820px;margin:0 auto;padding:18px 22px 40px;background:#fff}
h1{font-size:24px;margin:4px 0}h2{font-size:19px;margin:28px 0 6px;border-bottom:2px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:16px 0 2px}h4{margin:8px 0 4px;font-size:14px}
.sub{color:#555;margin:0 0 8px}.note{color:#555;font-size:13px}
svg{display:block;margin:2px 0}svg text{font:12px system-ui,"DejaVu Sans",sans-serif;fill:#333}
svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#333}svg .none{fill:#888;font-size:13px}
.grid{stroke:#e4e4e4;stroke-width:1}.axisline{stroke:#555;stroke-width:1}
.cap{fill:none;stroke:#8a8a8a;stroke-width:2}.used{stroke:#111;stroke-width:3}
.peak{stroke:#1d4f91;stroke-width:2}.target{fill:#2c8c5a;fill-opacity:.12}.leanband{fill:#b5651d;fill-opacity:.18}
.legend{font-size:12px;color:#444;margin:0 0 6px 52px}.key{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:-1px;border-radius:2px}
.sw.target{background:#2c8c5a;opacity:.3}.sw.cap{height:0;border-top:2px solid #8a8a8a;border-radius:0}
.sw.used{height:0;border-top:3px solid #111;border-radius:0}.sw.peak{height:0;border-top:2px solid #1d4f91;border-radius:0}
.sw.leanband{background:#b5651d;opacity:.35}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 10px}
.figure{background:#f0f4fa;border-radius:6px;padding:8px 14px;min-width:110px}
.figure b{display:block;font-size:20px}.figure span{font-size:12px;color:#555}
details.walk{border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:4px 10px}
details.walk summary{cursor:pointer;font-weight:600;padding:4px 0}
table{border-collapse:collapse;font-size:12.5px;width:100%}th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eee}
th{color:#555;font-weight:600}.cols{display:grid;grid-template-columns:1fr;gap:6px}
@media print{body{background:#fff}details.walk{break-inside:avoid}}
"""


def render_html(history, plan: PlanSettings, *, first_day: dt.date, last_day: dt.date, generated: dt.datetime) -> str:
    """The whole report as one HTML document (a str)."""
    walks = walk_views(history)
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    week = days[-7:]
    caps = plan_caps_min(plan, history.sessions, days)
    target = (plan.sessions_per_day_min, max(plan.sessions_per_day_min, plan.sessions_per_day_max))
    state = effective_plan(plan, history.sessions, last_day)
    in_range = [w for w in walks if first_day <= w.session.date <= last_day]
    daily_walk: defaultdict[dt.date, float] = defaultdict(float)
    for w in in_range:
        daily_walk[w.session.date] += w.walk_min
    lean_share = daily_means(
        in_range, lambda w: 100.0 * w.lean_s / w.session.walk_s if w.session.walk_s > 0 and w.lean_s is not None else None)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>walkcoach report {first_day.isoformat()} to {last_day.isoformat()}</title><style>{CSS}</style></head><body><main>",
        f"<h1>walkcoach: walks from {first_day:%a %d %b} to {last_day:%a %d %b %Y}</h1>",
        f"<p class='sub'>{len(in_range)} walk(s) on {len({w.session.date for w in in_range})} day(s). Today's cap "
        f"{state.cap_s / 60:.0f} min: {esc(state.why)}.</p>",
        "<p class='note'>From the belt's history: coaching cues, not a diagnosis. Walk time is time spent walking "
        "(bouts), not the length of the outing.</p>",
        f"<h2>This week at a glance ({week[0]:%a %d %b} to {week[-1]:%a %d %b})</h2>",
        at_a_glance(walks, week, target),
        "<h3>Walks per day</h3>", walks_per_day_chart(walks, week, target),
        "<h3>Walk time per walk against the cap</h3>", walk_time_chart(walks, week, caps),
        f"<h2>Trends ({first_day:%d %b} to {last_day:%d %b})</h2>",
        "<p class='note'>Daily means weighted by walk time. Step length and speed from the inverted-pendulum model "
        "(pelvis excursion per step and the configured leg length).</p>",
        "<h3>Walk time per walk against the cap</h3>", walk_time_chart(walks, days, caps),
        trend_chart(dict(daily_walk), days, title="Walk time per day", unit="min", fixed=(0, 60), step=15, colour=BLUE,
                    fmt=lambda v: f"{v:.0f}", bars=True),
        trend_chart(daily_means(in_range, lambda w: w.weighted("cadence_spm")), days, title="Cadence", unit="steps/min",
                    fixed=(60, 140), step=20, colour=GREEN, fmt=lambda v: f"{v:.0f}"),
        trend_chart(daily_means(in_range, lambda w: w.weighted("speed_m_s")), days, title="Walking speed", unit="m/s",
                    fixed=(0, 2), step=0.5, colour=PURPLE, fmt=lambda v: f"{v:.1f}"),
        trend_chart(daily_means(in_range, lambda w: w.weighted("step_length_m")), days, title="Step length", unit="m",
                    fixed=(0, 1), step=0.25, colour=BROWN, fmt=lambda v: f"{v:.2f}"),
        trend_chart(lean_share, days, title="Time spent in sustained forward leans", unit="% of walk",
                    fixed=(0, 40), step=10, colour=RED, fmt=lambda v: f"{v:.0f}"),
        "<p class='note'>A sustained lean is one the belt cued (held past the hold time while walking); "
        "leans it did not cue are not counted.</p>",
        f"<h2>Each walk ({len(in_range)}, newest first)</h2>",
    ]
    recent = last_day - dt.timedelta(days=OPEN_WALK_DAYS - 1)
    parts += [walk_section(w, open_=w.session.date >= recent) for w in reversed(in_range)]
    parts.append(f"<p class='note'>Made by walkcoach on {generated:%a %d %b %Y %H:%M}.</p></main></body></html>")
    return "\n".join(parts)
