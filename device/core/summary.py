"""The summary of a run (simulated, replayed or live): bouts, cues, lean episodes.

`walkcoach sim --json`, `run --json` and `replay --json` all print ``to_json()``.
"""

from __future__ import annotations

from walkcoach.device.core.events import Bout, Event, EventKind, LeanEpisode


class RunSummary:
    """An event sink that keeps what a summary needs."""

    def __init__(self, *, hold_s: float) -> None:
        self._hold_s = hold_s
        self.bouts: list[Bout] = []
        self.cues: list[tuple[float, str, str]] = []
        self.lean_episodes: list[LeanEpisode] = []
        self.timeline: list[Event] = []

    def __call__(self, event: Event) -> None:
        if event.cue is not None:
            self.cues.append((event.t_s, event.cue.value, event.why))
        if event.kind is EventKind.WALK_ENDED and event.bout is not None:
            self.bouts.append(event.bout)
        elif event.kind is EventKind.LEAN_CLEARED and event.lean is not None:
            if event.lean.end_s - event.lean.start_s >= self._hold_s:
                self.lean_episodes.append(event.lean)
        if event.cue is not None or event.kind in (EventKind.WALK_STARTED, EventKind.WALK_ENDED, EventKind.SESSION_ENDED):
            self.timeline.append(event)

    @property
    def walk_s(self) -> float:
        return sum(b.duration_s for b in self.bouts)

    @property
    def steps(self) -> int:
        return sum(b.steps for b in self.bouts)

    @property
    def cadence_spm(self) -> float:
        walk_s = sum(b.end_s - b.start_s for b in self.bouts if b.cadence_spm > 0)
        if walk_s <= 0:
            return 0.0
        return sum(b.cadence_spm * b.duration_s for b in self.bouts if b.cadence_spm > 0) / walk_s

    @property
    def step_times_s(self) -> list[float]:
        return [t for b in self.bouts for t in b.step_times_s]

    def to_json(self, duration_s: float) -> dict:
        return {
            "duration_s": round(duration_s, 2),
            "walk_s": round(self.walk_s, 2),
            "steps": self.steps,
            "cadence_spm": round(self.cadence_spm, 1),
            "step_times_s": [round(t, 3) for t in self.step_times_s],
            "bouts": [
                {
                    "start_s": round(b.start_s, 2),
                    "end_s": round(b.end_s, 2),
                    "steps": b.steps,
                    "cadence_spm": round(b.cadence_spm, 1),
                    "step_time_cv": round(b.step_time_cv, 3),
                    **{
                        key: round(value, 3)  # speed_m_s keeps its JSON key speed_ms (m/s), which scripts read
                        for key, name in (("step_length_m", "step_length_m"), ("speed_ms", "speed_m_s"),
                                          ("mean_lean_deg", "mean_lean_deg"), ("peak_lean_deg", "peak_lean_deg"))
                        if (value := getattr(b, name, None)) is not None
                    },
                    "step_times_s": [round(t, 3) for t in b.step_times_s],
                }
                for b in self.bouts
            ],
            "cues": [{"t_s": round(t, 2), "kind": kind, "why": why} for t, kind, why in self.cues],
            "lean_episodes": [
                {"start_s": round(e.start_s, 2), "end_s": round(e.end_s, 2), "max_deg": round(e.max_deg, 1), "cued": e.cued}
                for e in self.lean_episodes
            ],
        }


def format_clock(t_s: float) -> str:
    """``m:ss.s``; rounded to the tenth first, so 59.96 s is ``1:00.0``, never ``0:60.0``."""
    tenths = round(max(0.0, t_s) * 10.0)
    minutes, tenths = divmod(tenths, 600)
    return f"{minutes:3d}:{tenths // 10:02d}.{tenths % 10}"


def format_human(summary: RunSummary, duration_s: float) -> str:
    lines = ["  time  event          why"]
    for event in summary.timeline:
        label = event.cue.value if event.cue is not None else event.kind.value
        lines.append(f"{format_clock(event.t_s)}  {label:<14} {event.why}")
    lines.append("")
    lines.append(
        f"{duration_s / 60:.1f} min recorded, walked {summary.walk_s / 60:.1f} min in {len(summary.bouts)} "
        f"bout(s), {summary.steps} steps at {summary.cadence_spm:.0f} steps/min; "
        f"{len(summary.lean_episodes)} sustained lean(s), "
        f"{sum(1 for _, kind, _ in summary.cues if kind == 'straighten_up')} straighten-up cue(s)"
    )
    return "\n".join(lines)
