"""Scoring the coach against a reference system, the Mobilise-D way: ``walkcoach evaluate``.

The recording is replayed through the coach exactly as ``walkcoach replay``
does (``device.replay``), and what the coach found (its bouts and every step
it counted) is compared with a reference in the format of
``tests/data/real/`` (see its README): walking bouts by the Mobilise-D
definition (at least 4 strides, breaks of at most 3 s), each with ``start_s``,
``end_s``, ``n_ic``, ``cadence_spm``, ``stride_length_m``, ``speed_mps``, and
``ics_s``, every initial contact (heel strike, = step).

The figures (as in the mobgap/Mobilise-D validation papers, Micó-Amigo et al.
2023, Kirk et al. 2024):

- **walking time**: sensitivity = reference bout time covered by detected
  bouts, PPV = detected bout time inside reference bouts. Both sides run from
  the first initial contact to the last stride's end, the last stride before a
  break removed (mobgap's ``MaxBreakCriteria(remove_last_ic=True)``): the
  reference's ``start_s``/``end_s`` (the INDIP ``Start``/``End`` that mobgap's
  ``parse_reference_parameters`` reads) are its bout's first and last listed
  contact, and it lists none for the closing step of gait termination; a coach
  bout runs from its first step to the contact before its closing one
  (``Bout.start_s``/``end_s``), so its walk time is measured the same way.
- **initial contacts**: each reference contact matched one-to-one to the
  nearest detected step within ``tolerance_s`` (0.25 s); sensitivity = matched
  share of reference contacts, PPV = matched share of the detected steps that
  lie inside reference bouts (widened by the tolerance: outside them the
  reference does not list contacts), mean absolute timing error of matches,
  and their median signed offset (detected minus reference: > 0 when the
  steps come late, as a lumbar peak after the heel strike does).
- **step count inside reference bouts**: detected steps in each reference bout
  against its ``n_ic``; the total absolute error as a share of all reference
  contacts.
- **per reference bout found** (overlapped by a detected bout): the steps
  the coach reports for it (``Bout.steps``, the history's: its contacts and the
  missed steps it inferred between them), cadence, stride length (2 x step
  length) and speed of the detected bout that overlaps it most, relative error; walk-time error = summed duration of the detected
  bouts overlapping it minus the reference bout's duration (s).
- **walk time**: total detected minus total reference (s).

Pure functions over plain data (``score``); ``evaluate_recording`` adds the
replay. A malformed reference raises ``ReferenceError`` with one line.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walkcoach.device.core.events import Bout
from walkcoach.hal.errors import WalkcoachError

IC_TOLERANCE_S = 0.25


class ReferenceError(WalkcoachError, ValueError):
    """The reference file cannot be read or is not in the expected format."""


@dataclass(frozen=True)
class ReferenceBout:
    start_s: float
    end_s: float
    n_ic: int | None
    cadence_spm: float | None
    stride_length_m: float | None
    speed_mps: float | None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Reference:
    path: str
    bouts: tuple[ReferenceBout, ...]
    ics_s: tuple[float, ...]

    @property
    def walk_s(self) -> float:
        return sum(b.duration_s for b in self.bouts)


def _optional_number(value, where: str, path: str) -> float | None:
    return None if value is None else _number(value, where, path)


def _number(value, where: str, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReferenceError(f"{path}: {where} must be a finite number, not {json.dumps(value)[:40]}")
    return float(value)


def load_reference(path: Path | str) -> Reference:
    """Read and validate a reference JSON file. Raises ReferenceError (one line)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceError(f"{name}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferenceError(f"{name}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ReferenceError(f"{name}: the top level must be an object with 'bouts' and 'ics_s'")
    for key in ("bouts", "ics_s"):
        if not isinstance(data.get(key), list):
            raise ReferenceError(f"{name}: {key!r} is missing or not a list")
    bouts: list[ReferenceBout] = []
    for i, raw in enumerate(data["bouts"]):
        where = f"bouts[{i}]"
        if not isinstance(raw, dict):
            raise ReferenceError(f"{name}: {where} must be an object")
        for key in ("start_s", "end_s"):
            if key not in raw:
                raise ReferenceError(f"{name}: {where} has no {key!r}")
        start_s = _number(raw["start_s"], f"{where}.start_s", name)
        end_s = _number(raw["end_s"], f"{where}.end_s", name)
        if end_s <= start_s:
            raise ReferenceError(f"{name}: {where} ends ({end_s:g} s) before it starts ({start_s:g} s)")
        if bouts and start_s < bouts[-1].end_s:
            raise ReferenceError(f"{name}: {where} starts before bouts[{i - 1}] ends (bouts must be in order, apart)")
        n_ic = _optional_number(raw.get("n_ic"), f"{where}.n_ic", name)
        if n_ic is not None and (n_ic < 0 or n_ic != int(n_ic)):
            raise ReferenceError(f"{name}: {where}.n_ic must be a whole number >= 0, not {n_ic:g}")
        bouts.append(
            ReferenceBout(
                start_s,
                end_s,
                None if n_ic is None else int(n_ic),
                _optional_number(raw.get("cadence_spm"), f"{where}.cadence_spm", name),
                _optional_number(raw.get("stride_length_m"), f"{where}.stride_length_m", name),
                _optional_number(raw.get("speed_mps"), f"{where}.speed_mps", name),
            )
        )
    ics = [_number(v, f"ics_s[{i}]", name) for i, v in enumerate(data["ics_s"])]
    if any(b < a for a, b in zip(ics, ics[1:], strict=False)):
        raise ReferenceError(f"{name}: ics_s must be in time order")
    return Reference(name, tuple(bouts), tuple(ics))


# -- scoring ------------------------------------------------------------------------------
def _overlap_s(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _total_overlap_s(xs: Sequence[tuple[float, float]], ys: Sequence[tuple[float, float]]) -> float:
    return sum(_overlap_s(x, y) for x in xs for y in ys)  # both lists are disjoint intervals


def match_contacts(reference_s: Sequence[float], detected_s: Sequence[float], tolerance_s: float) -> list[tuple[float, float]]:
    """One-to-one matches (reference, detected) within ``tolerance_s``, closest pairs first."""
    candidates = []
    j0 = 0
    for i, r in enumerate(reference_s):
        while j0 < len(detected_s) and detected_s[j0] < r - tolerance_s:
            j0 += 1
        j = j0
        while j < len(detected_s) and detected_s[j] <= r + tolerance_s:
            candidates.append((abs(detected_s[j] - r), i, j))
            j += 1
    candidates.sort()
    used_r, used_d, matches = set(), set(), []
    for _, i, j in candidates:
        if i not in used_r and j not in used_d:
            used_r.add(i)
            used_d.add(j)
            matches.append((reference_s[i], detected_s[j]))
    return sorted(matches)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _relative_error(detected: float | None, reference: float | None) -> float | None:
    if detected is None or reference is None or reference == 0:
        return None
    return (detected - reference) / reference


def _bout_span(bout: Bout) -> tuple[float, float]:
    """The bout's extent, as the reference's: its first step to the contact before its closing one."""
    return bout.start_s, bout.end_s


def score(bouts: Sequence[Bout], reference: Reference, *, tolerance_s: float = IC_TOLERANCE_S) -> dict:
    """The Mobilise-D figures of ``bouts`` (the coach's, with their step times) against ``reference``."""
    detected_spans = [_bout_span(b) for b in bouts]
    reference_spans = [(b.start_s, b.end_s) for b in reference.bouts]
    covered_s = _total_overlap_s(reference_spans, detected_spans)
    reference_walk_s = sum(e - s for s, e in reference_spans)
    detected_span_s = sum(e - s for s, e in detected_spans)

    steps = sorted(t for b in bouts for t in b.step_times_s)
    in_reference = [t for t in steps if any(s - tolerance_s <= t <= e + tolerance_s for s, e in reference_spans)]
    matches = match_contacts(reference.ics_s, in_reference, tolerance_s)
    timing_errors = [abs(d - r) for r, d in matches]
    timing_offsets = sorted(d - r for r, d in matches)
    matched_reference = {r for r, _ in matches}
    matched_detected = {d for _, d in matches}

    per_bout = []
    count_error = 0
    counted_reference = 0
    for ref in reference.bouts:
        span = (ref.start_s, ref.end_s)
        inside = sum(1 for t in steps if ref.start_s - tolerance_s <= t <= ref.end_s + tolerance_s)
        overlapping = [b for b, d in zip(bouts, detected_spans, strict=True) if _overlap_s(d, span) > 0]
        row: dict[str, Any] = {
            "start_s": ref.start_s,
            "end_s": ref.end_s,
            "reference_steps": ref.n_ic,
            "detected_steps": inside,
            "found": bool(overlapping),
        }
        if ref.n_ic is not None:
            count_error += abs(inside - ref.n_ic)
            counted_reference += ref.n_ic
        if overlapping:
            best = max(overlapping, key=lambda b: _overlap_s(_bout_span(b), span))
            stride_m = 2.0 * best.step_length_m if best.step_length_m is not None else None
            row.update(
                # the steps the coach reports for the walk (its history's), missed steps it inferred included
                reported_steps_error=_relative_error(best.steps, ref.n_ic),
                cadence_error=_relative_error(best.cadence_spm, ref.cadence_spm),
                stride_length_error=_relative_error(stride_m, ref.stride_length_m),
                speed_error=_relative_error(best.speed_m_s, ref.speed_mps),
                walk_time_error_s=sum(b.duration_s for b in overlapping) - ref.duration_s,
            )
        per_bout.append(row)

    found = [r for r in per_bout if r["found"]]

    def mean_abs(key: str) -> float | None:
        values = [abs(v) for r in found if (v := r.get(key)) is not None]
        return sum(values) / len(values) if values else None

    def max_abs(key: str) -> float | None:
        values = [abs(v) for r in found if (v := r.get(key)) is not None]
        return max(values) if values else None

    return {
        "reference": reference.path,
        "tolerance_s": tolerance_s,
        "reference_bouts": len(reference.bouts),
        "detected_bouts": len(bouts),
        "reference_bouts_found": len(found),
        "walking_time_sensitivity": _ratio(covered_s, reference_walk_s),
        "walking_time_ppv": _ratio(_total_overlap_s(detected_spans, reference_spans), detected_span_s),
        "reference_ics": len(reference.ics_s),
        "detected_steps": len(steps),
        "detected_steps_in_reference_bouts": len(in_reference),
        "ic_sensitivity": _ratio(len(matches), len(reference.ics_s)),
        "ic_ppv": _ratio(len(matches), len(in_reference)),
        # what the IC PPV and sensitivity miss, to explain each (a turn's step, gait initiation, the walk's end)
        "unmatched_detected_ics_s": [t for t in in_reference if t not in matched_detected],
        "unmatched_reference_ics_s": [t for t in reference.ics_s if t not in matched_reference],
        "ic_timing_error_s": sum(timing_errors) / len(timing_errors) if timing_errors else None,
        "ic_timing_offset_s": statistics.median(timing_offsets) if timing_offsets else None,
        "step_count_error": _ratio(count_error, counted_reference),
        "reported_steps_error_mean": mean_abs("reported_steps_error"),
        "cadence_error_mean": mean_abs("cadence_error"),
        "cadence_error_max": max_abs("cadence_error"),
        "stride_length_error_mean": mean_abs("stride_length_error"),
        "speed_error_mean": mean_abs("speed_error"),
        "walk_time_error_per_bout_max_s": max_abs("walk_time_error_s"),
        "reference_walk_s": reference.walk_s,
        "detected_walk_s": sum(b.duration_s for b in bouts),
        "walk_time_error_s": sum(b.duration_s for b in bouts) - reference.walk_s,
        "bouts": per_bout,
    }


def evaluate_recording(recording_path, reference_path, settings, *, units: str = "ms2", tolerance_s: float = IC_TOLERANCE_S) -> dict:
    """Replay ``recording_path`` through the coach (as ``walkcoach replay`` does) and score it."""
    from walkcoach.device.offline.replay import read_recording, replay  # numpy: only here

    reference = load_reference(reference_path)
    recording = read_recording(
        recording_path, units=units, default_rate_hz=settings.loop.rate_hz, settings=settings.coach
    )
    result = replay(recording, settings, cap_s=float("inf"))  # the recording's own times, as the reference's
    scores = score(result.summary.bouts, reference, tolerance_s=tolerance_s)
    scores["recording"] = recording.path
    scores["warnings"] = list(recording.warnings)
    return scores


def _shown(value, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f} %" if percent else f"{value:.3f}"


def format_scores(scores: dict) -> str:
    lines = [
        f"{scores['recording']} against {scores['reference']}",
        f"bouts: {scores['reference_bouts_found']} of {scores['reference_bouts']} reference bouts found; "
        f"{scores['detected_bouts']} detected",
        f"walking time: sensitivity {_shown(scores['walking_time_sensitivity'])}, PPV {_shown(scores['walking_time_ppv'])}",
        f"initial contacts within {scores['tolerance_s']:g} s: sensitivity {_shown(scores['ic_sensitivity'])}, "
        f"PPV {_shown(scores['ic_ppv'])}, timing error {_shown(scores['ic_timing_error_s'])} s "
        f"(median offset {'-' if scores['ic_timing_offset_s'] is None else format(scores['ic_timing_offset_s'], '+.3f')} s)",
        f"steps inside reference bouts: error {_shown(scores['step_count_error'], True)}; "
        f"the coach's reported steps per bout found: error {_shown(scores['reported_steps_error_mean'], True)} mean",
        f"per bout found: cadence error {_shown(scores['cadence_error_mean'], True)} mean, "
        f"{_shown(scores['cadence_error_max'], True)} max; stride length {_shown(scores['stride_length_error_mean'], True)}; "
        f"speed {_shown(scores['speed_error_mean'], True)}; walk time {_shown(scores['walk_time_error_per_bout_max_s'])} s max",
        f"walk time: {scores['detected_walk_s']:.1f} s detected, {scores['reference_walk_s']:.1f} s reference "
        f"({scores['walk_time_error_s']:+.1f} s)",
        "",
        "  reference bout     steps ref/found  cadence   stride   speed   walk time",
    ]
    for row in scores["bouts"]:
        ref_steps = "-" if row["reference_steps"] is None else str(row["reference_steps"])
        line = f"  {row['start_s']:6.1f}-{row['end_s']:6.1f} s   {ref_steps:>4} / {row['detected_steps']:<4}    "
        if row["found"]:
            line += (
                f"{_signed(row['cadence_error'])}  {_signed(row['stride_length_error'])}  {_signed(row['speed_error'])}  "
                f"{row['walk_time_error_s']:+5.1f} s"
            )
        else:
            line += "not found"
        lines.append(line)
    for warning in scores.get("warnings", []):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _signed(value) -> str:
    return "    -  " if value is None else f"{100 * value:+5.0f} %"
