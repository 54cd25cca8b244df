"""What real walking looks like at the lower back, measured the same way on real recordings and the simulator.

    .venv/bin/python tools/real_gait_stats.py                    # the real recordings (tests/data/real)
    .venv/bin/python tools/real_gait_stats.py --sim daily-living asymmetric-walk --seeds 5
    .venv/bin/python tools/real_gait_stats.py --json             # one object, for other scripts

Offline (numpy only, not in CI's path). Real recordings: ``mobgap-lab`` with the
INDIP reference (its initial contacts ``ics_s`` and bouts) and ``gaitpy-demo``
with the bouts mobgap found in it (no reference contacts, so only the
statistics that need no contacts). Simulated walks: the truth's heel strikes and
walk segments play the reference's part. Every statistic is computed per bout
and then summarised over bouts (median and range):

- ``bout_steps``: steps (initial contacts) per bout;
- ``cadence_spm``: 60 / mean step time of the bout;
- ``step_cv``: step-time coefficient of variation inside the bout, and
  ``step_ratio`` the longest over the shortest step time. Intervals longer than
  twice the bout's median (a hesitation, a contact the reference missed) or
  shorter than 0.2 s (a double-counted contact) are breaks, counted in
  ``break_share``, not steps;
- ``peak_ratio``: the largest over the smallest heel-strike peak in the bout
  (vertical acceleration, gravity removed, low-passed at 10 Hz, maximum in
  -0.1..+0.2 s around each contact), and ``peak_ms2`` the median peak;
- ``odd_even_step`` / ``odd_even_peak``: mean of odd over mean of even steps'
  step times / peaks (>= 1: the larger side over the smaller);
- ``ac_step`` / ``ac_stride``: the unbiased autocorrelation of vertical
  acceleration at the step and the stride lag (Moe-Nilssen & Helbostad 2004:
  step and stride regularity, on the 10 Hz low-passed signal); an asymmetric
  walker has ac_stride >> ac_step;
- ``pelvis_rise_mm``: the vertical pelvis excursion per step, integrated from the
  vertical acceleration (the inverted pendulum's rise, Zijlstra & Hof 2003), and
  ``vertical_rms_ms2`` the rms vertical acceleration from first to last contact;
- ``double_peak_share``: share of steps with a second clear vertical peak
  (two peaks per step: slow gait, long double support);
- ``first_step_ratio`` / ``last_step_ratio``: the bout's first and last contact-to-contact interval over
  its median step time (gait initiation's first step; termination's last walking step, before the
  closing contact the reference does not list), and ``pre_walk_peak_ratio``: the largest vertical
  acceleration 1-0.25 s before the first contact (gait initiation's weight shift) over the bout's median
  heel-strike peak;
- between bouts: ``gap_s`` (durations), ``gap_still_share`` (share of 1 s
  windows with vertical acceleration rms < 0.15 m/s²) and ``gap_tilted_share``
  (share of time the gravity direction is more than 10 deg from the walking
  upright: sitting, bending, handling), and ``quiet_floor_ms2``: the sensor's
  quiet floor, the rms per axis (largest axis) of the acceleration with each
  second's linear trend removed, median over the stillest tenth of the 1 s
  windows more than 2 s from any bout (sensor noise plus the least postural sway).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

G_MS2 = 9.80665
_ROOT = Path(__file__).resolve().parent.parent
REAL_DIR = _ROOT / "tests" / "data" / "real"  # shipped with the project: nothing points outside it


def lowpass(x: np.ndarray, rate_hz: float, corner_hz: float) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth-magnitude low-pass along axis 0."""
    freq_hz = np.fft.rfftfreq(x.shape[0], 1.0 / rate_hz)
    gain = 1.0 / np.sqrt(1.0 + (freq_hz / corner_hz) ** 4)
    spectrum = np.fft.rfft(x, axis=0)
    spectrum *= gain if x.ndim == 1 else gain[:, None]
    return np.fft.irfft(spectrum, n=x.shape[0], axis=0)


def vertical_and_up(acc_ms2: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertical acceleration (gravity removed, m/s²) and the unit gravity direction, from raw acceleration."""
    gravity = lowpass(acc_ms2, rate_hz, 0.3)
    norm = np.linalg.norm(gravity, axis=1, keepdims=True)
    up = gravity / norm
    return np.sum(acc_ms2 * up, axis=1) - norm[:, 0], up


def autocorrelation_at(x: np.ndarray, lag: int) -> float:
    """Unbiased, normalised autocorrelation at ``lag`` samples (1 for a perfectly periodic signal)."""
    x = x - x.mean()
    if lag <= 0 or lag >= len(x) - 1:
        return float("nan")
    return float(np.dot(x[:-lag], x[lag:]) / (len(x) - lag) / (np.dot(x, x) / len(x)))


def regularity(x: np.ndarray, rate_hz: float, step_s: float) -> tuple[float, float]:
    """Step and stride regularity: the autocorrelation peaks near one and two step times."""
    def peak_near(lag_s: float) -> float:
        lags = range(max(1, int(0.75 * lag_s * rate_hz)), int(1.25 * lag_s * rate_hz) + 1)
        return max(autocorrelation_at(x, k) for k in lags)
    return peak_near(step_s), peak_near(2.0 * step_s)


def bout_statistics(vertical_ms2, rate_hz, bout_ics_s) -> dict:
    """The per-bout statistics for one bout's initial contacts (seconds)."""
    ics = np.asarray(bout_ics_s, dtype=float)
    intervals = np.diff(ics)
    median_s = float(np.median(intervals[intervals >= 0.2])) if np.any(intervals >= 0.2) else float("nan")
    steady = (intervals >= 0.2) & (intervals <= 2.0 * median_s)
    steps_s = intervals[steady]
    smooth = lowpass(vertical_ms2, rate_hz, 10.0)
    peaks = []
    for t in ics:
        a, b = int(round((t - 0.1) * rate_hz)), int(round((t + 0.2) * rate_hz))
        if a >= 0 and b <= len(smooth):
            peaks.append(float(smooth[a:b].max()))
    peaks = np.array(peaks)
    positive = peaks[peaks > 0.05]
    a, b = int(round(ics[0] * rate_hz)), int(round(ics[-1] * rate_hz))
    ac_step, ac_stride = regularity(smooth[a:b], rate_hz, median_s) if len(ics) >= 5 else (np.nan, np.nan)
    rise_mm = pelvis_rise_mm(vertical_ms2, rate_hz, ics, median_s)
    odd, even = steps_s[0::2], steps_s[1::2]
    return {
        "bout_steps": len(ics),
        "cadence_spm": 60.0 / float(np.mean(steps_s)),
        "step_cv": float(np.std(steps_s) / np.mean(steps_s)),
        "step_ratio": float(steps_s.max() / steps_s.min()),
        "break_share": float(1.0 - np.mean(steady)),
        "peak_ms2": float(np.median(peaks)),
        "peak_ratio": float(positive.max() / positive.min()) if len(positive) >= 2 else float("nan"),
        "odd_even_step": _ratio_ge_1(odd.mean(), even.mean()) if len(even) else float("nan"),
        "odd_even_peak": _ratio_ge_1(peaks[0::2].mean(), peaks[1::2].mean()) if len(peaks) >= 4 else float("nan"),
        "ac_step": ac_step,
        "ac_stride": ac_stride,
        "pelvis_rise_mm": rise_mm,
        "vertical_rms_ms2": float(np.std(vertical_ms2[a:b])),
        "double_peak_share": double_peak_share(smooth, rate_hz, ics, median_s),
        "first_step_ratio": float(intervals[0] / median_s),
        "last_step_ratio": float(intervals[-1] / median_s),
        "pre_walk_peak_ratio": pre_walk_peak_ratio(smooth, rate_hz, ics[0], float(np.median(peaks))),
    }


PRE_WALK_S = (1.0, 0.25)  # gait initiation's weight shift (the APA) comes ~0.4-1 s before the first heel strike


def pre_walk_peak_ratio(smooth_ms2, rate_hz, first_ic_s, strike_peak_ms2) -> float:
    """The largest vertical acceleration from ``PRE_WALK_S[0]`` to ``PRE_WALK_S[1]`` before a bout's first
    initial contact (gait initiation's anticipatory weight shift, before any foot contact of the walk), as a
    share of the bout's median heel-strike peak: what a step detector sees before the walk's first step."""
    a, b = int(round((first_ic_s - PRE_WALK_S[0]) * rate_hz)), int(round((first_ic_s - PRE_WALK_S[1]) * rate_hz))
    if a < 0 or strike_peak_ms2 <= 0:
        return float("nan")
    return float(smooth_ms2[a:b].max() / strike_peak_ms2)


def double_peak_share(smooth_ms2, rate_hz, ics, step_s) -> float:
    """Share of steps whose vertical acceleration has a second clear peak: two local maxima, at
    least 0.2 step apart, the smaller above half the larger and rising 0.3 m/s² or more above the
    trough between them (slow and impaired gait: long double support)."""
    doubled, counted = 0, 0
    for t0, t1 in zip(ics[:-1], ics[1:], strict=True):
        if not (0.2 <= t1 - t0 <= 2.0 * step_s):
            continue
        i, j = int(round((t0 - 0.05) * rate_hz)), int(round((t1 - 0.05) * rate_hz))
        x = smooth_ms2[max(i, 0) : j]
        if len(x) < 5:
            continue
        counted += 1
        peaks = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])) + 1
        if len(peaks) < 2:
            continue
        top = peaks[np.argmax(x[peaks])]
        for k in peaks:
            if k == top or abs(k - top) < 0.2 * (t1 - t0) * rate_hz or x[k] < 0.5 * x[top]:
                continue
            trough = x[min(k, top) : max(k, top) + 1].min()
            if x[k] - trough >= 0.3 * max(x[top] - trough, 1e-9) and x[k] - trough >= 0.05:
                doubled += 1
                break
    return doubled / counted if counted else float("nan")


def pelvis_rise_mm(vertical_ms2, rate_hz, ics, step_s) -> float:
    """Median peak-to-peak vertical pelvis excursion per step (Zijlstra & Hof 2003), in mm.

    The bout's vertical acceleration (plus a step on each side) integrated twice in the
    frequency domain over 0.6x the stride frequency .. 4 Hz: what is left of the drift
    is below the stride rhythm, and the heel-strike transients above 4 Hz barely move the pelvis.
    """
    a = max(0, int(round((ics[0] - step_s) * rate_hz)))
    b = min(len(vertical_ms2), int(round((ics[-1] + step_s) * rate_hz)))
    x = vertical_ms2[a:b] - np.mean(vertical_ms2[a:b])
    freq_hz = np.fft.rfftfreq(len(x), 1.0 / rate_hz)
    band = (freq_hz >= 0.6 * 0.5 / step_s) & (freq_hz <= 4.0)
    spectrum = np.fft.rfft(x)
    spectrum[~band] = 0.0
    spectrum[band] /= -(2.0 * np.pi * freq_hz[band]) ** 2
    position_m = np.fft.irfft(spectrum, n=len(x))
    excursions = []
    for t0, t1 in zip(ics[:-1], ics[1:], strict=True):
        i, j = int(round(t0 * rate_hz)) - a, int(round(t1 * rate_hz)) - a
        if t1 - t0 >= 0.2 and t1 - t0 <= 2.0 * step_s and 0 <= i < j <= len(position_m):
            excursions.append(np.ptp(position_m[i : j + 1]))
    return 1000.0 * float(np.median(excursions)) if excursions else float("nan")


def regularity_only(vertical_ms2, rate_hz, start_s, end_s, steps) -> dict:
    """What can be measured without contacts: cadence from the bout, and regularity."""
    step_s = (end_s - start_s) / max(steps - 1, 1)
    a, b = int(round(start_s * rate_hz)), int(round(end_s * rate_hz))
    ac_step, ac_stride = regularity(lowpass(vertical_ms2, rate_hz, 10.0)[a:b], rate_hz, step_s)
    return {"bout_steps": steps, "cadence_spm": 60.0 / step_s, "ac_step": ac_step, "ac_stride": ac_stride}


def _ratio_ge_1(x: float, y: float) -> float:
    return float(max(x, y) / min(x, y)) if min(x, y) > 0 else float("nan")


def gap_statistics(vertical_ms2, up, rate_hz, bouts_s, duration_s) -> dict:
    """Between-bout stretches (and before the first, after the last): length, stillness, tilt."""
    inside = np.zeros(len(vertical_ms2), dtype=bool)
    for start_s, end_s in bouts_s:
        inside[int(start_s * rate_hz) : int(end_s * rate_hz) + 1] = True
    walking_up = np.median(up[inside], axis=0)
    walking_up /= np.linalg.norm(walking_up)
    tilt_deg = np.degrees(np.arccos(np.clip(up @ walking_up, -1.0, 1.0)))
    edges = [0.0] + [x for bout in bouts_s for x in bout] + [duration_s]
    gaps, still, tilted, windows, samples = [], 0, 0, 0, 0
    for a_s, b_s in zip(edges[0::2], edges[1::2], strict=True):
        if b_s - a_s < 1.0:
            continue
        gaps.append(b_s - a_s)
        a, b = int(a_s * rate_hz), int(b_s * rate_hz)
        tilted += int(np.sum(tilt_deg[a:b] > 10.0))
        samples += b - a
        w = int(rate_hz)
        for k in range(a, b - w + 1, w):
            windows += 1
            still += int(np.sqrt(np.mean(vertical_ms2[k : k + w] ** 2)) < 0.15)
    return {"gap_s": gaps, "gap_still_share": still / max(windows, 1), "gap_tilted_share": tilted / max(samples, 1)}


QUIET_MARGIN_S = 2.0


def quiet_floor_ms2(acc_ms2, rate_hz, bouts_s) -> float:
    """Median over the stillest tenth of 1 s windows away from bouts: rms per axis (largest axis)
    of the acceleration with the window's linear trend (gravity, slow sway) removed."""
    w = int(round(rate_hz))
    x = np.arange(w)
    floors = []
    for k in range(len(acc_ms2) // w):
        t0_s, t1_s = k * w / rate_hz, (k + 1) * w / rate_hz
        if any(t1_s > a - QUIET_MARGIN_S and t0_s < b + QUIET_MARGIN_S for a, b in bouts_s):
            continue
        window = acc_ms2[k * w : (k + 1) * w]
        coef = np.polynomial.polynomial.polyfit(x, window, 1)
        residual = window - (coef[0] + np.outer(x, coef[1]))
        floors.append(float(np.sqrt(np.mean(residual**2, axis=0)).max()))
    if not floors:
        return float("nan")
    floors.sort()
    return float(np.median(floors[: max(3, len(floors) // 10)]))


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """t (s) and acceleration including gravity (m/s², from g) of a ``t,ax,ay,az,...`` CSV."""
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    t_s = data[:, 0]
    return t_s, data[:, 1:4] * G_MS2, float(round(1.0 / np.median(np.diff(t_s))))


def measure_real(real_dir: Path = REAL_DIR) -> dict:
    """{'mobgap-lab': {'bouts': [...], 'gaps': {...}}, 'gaitpy-demo': {...}} from the shipped recordings."""
    out = {}
    lab_bouts, lab_gaps = [], []
    for reference_path in sorted((real_dir / "mobgap-lab").glob("*.reference.json")):
        reference = json.loads(reference_path.read_text())
        t_s, acc, rate_hz = read_csv(reference_path.with_name(reference_path.name.replace(".reference.json", ".csv")))
        vertical, up = vertical_and_up(acc, rate_hz)
        ics = np.array(reference["ics_s"])
        bouts_s = [(b["start_s"], b["end_s"]) for b in reference["bouts"]]
        for start_s, end_s in bouts_s:
            bout_ics = ics[(ics >= start_s - 0.005) & (ics <= end_s + 0.005)]
            stats = bout_statistics(vertical, rate_hz, bout_ics)
            stats["recording"] = reference["id"]
            lab_bouts.append(stats)
        if len(bouts_s) > 1:  # the straight-walk trials have no between-bout life to measure
            lab_gaps.append(gap_statistics(vertical, up, rate_hz, bouts_s, t_s[-1]))
            lab_gaps[-1]["quiet_floor_ms2"] = quiet_floor_ms2(acc, rate_hz, bouts_s)
    out["mobgap-lab"] = {"bouts": lab_bouts, "gaps": _merge_gaps(lab_gaps)}

    demo = real_dir / "gaitpy-demo"
    if (demo / "demo.csv").exists():
        t_s, acc, rate_hz = read_csv(demo / "demo.csv")
        vertical, up = vertical_and_up(acc, rate_hz)
        peers = json.loads((demo / "peers.json").read_text())
        bouts = peers["mobgap"]["bouts"]
        bouts_s = [(a, b) for a, b, _, _ in bouts]
        gaps = gap_statistics(vertical, up, rate_hz, bouts_s, t_s[-1])
        gaps["quiet_floor_ms2"] = quiet_floor_ms2(acc, rate_hz, bouts_s)
        out["gaitpy-demo (mobgap's bouts)"] = {
            "bouts": [regularity_only(vertical, rate_hz, a, b, steps) for a, b, steps, _ in bouts],
            "gaps": gaps,
        }
    return out


def measure_sim(scenario: str, seeds) -> dict:
    """The same statistics on simulated walks: truth heel strikes and walk segments as the reference."""
    from walkcoach.sim.walker import simulate

    bouts, gaps = [], []
    for seed in seeds:
        w = simulate(scenario, seed)
        acc = np.asarray(w.gravity_ms2) + np.asarray(w.linear_acc_ms2)
        vertical, up = vertical_and_up(acc, w.rate_hz)
        ics = w.truth.step_times_s
        segments = []
        for start_s, end_s in w.truth.walk_segments:
            bout_ics = ics[(ics > start_s) & (ics < end_s)]
            segments.append((float(bout_ics[0]), float(bout_ics[-1])))
            bouts.append(bout_statistics(vertical, w.rate_hz, bout_ics))
        if len(segments) > 1:
            gaps.append(gap_statistics(vertical, up, w.rate_hz, segments, w.duration_s))
        else:
            gaps.append({"gap_s": [], "gap_still_share": float("nan"), "gap_tilted_share": float("nan")})
        gaps[-1]["quiet_floor_ms2"] = quiet_floor_ms2(acc, w.rate_hz, w.truth.walk_segments)
    return {"bouts": bouts, "gaps": _merge_gaps(gaps) if gaps else {}}


def _merge_gaps(gaps: list[dict]) -> dict:
    if not gaps:
        return {}
    floors = [x["quiet_floor_ms2"] for x in gaps if np.isfinite(x.get("quiet_floor_ms2", np.nan))]
    return {"gap_s": [g for x in gaps for g in x["gap_s"]],
            "gap_still_share": float(np.nanmean([x["gap_still_share"] for x in gaps])) if any(x["gap_s"] for x in gaps) else None,
            "gap_tilted_share": float(np.nanmean([x["gap_tilted_share"] for x in gaps])) if any(x["gap_s"] for x in gaps) else None,
            "quiet_floor_ms2": float(np.median(floors)) if floors else None}


BOUT_KEYS = ("bout_steps", "cadence_spm", "step_cv", "step_ratio", "break_share", "peak_ms2", "peak_ratio",
             "odd_even_step", "odd_even_peak", "ac_step", "ac_stride", "pelvis_rise_mm",
             "vertical_rms_ms2", "double_peak_share", "first_step_ratio", "last_step_ratio", "pre_walk_peak_ratio")


def summarise(measured: dict) -> dict:
    """Per statistic: median, min, max over bouts (NaN-free); gaps as they are."""
    out = {"bouts": len(measured["bouts"])}
    for key in BOUT_KEYS:
        values = np.array([b[key] for b in measured["bouts"] if key in b], dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            out[key] = {"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())}
    gaps = measured.get("gaps") or {}
    if gaps.get("gap_s"):
        g = np.array(gaps["gap_s"])
        out["gap_s"] = {"median": float(np.median(g)), "min": float(g.min()), "max": float(g.max())}
        out["gap_still_share"] = gaps["gap_still_share"]
        out["gap_tilted_share"] = gaps["gap_tilted_share"]
    if gaps.get("quiet_floor_ms2") is not None:
        out["quiet_floor_ms2"] = gaps["quiet_floor_ms2"]
    return out


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        fmt = "{:.0f}" if value["max"] >= 20 else "{:.2f}"
        return f"{fmt.format(value['median'])} [{fmt.format(value['min'])}–{fmt.format(value['max'])}]"
    return f"{value:.2f}"


def table(summaries: dict) -> str:
    names = list(summaries)
    keys = ("bouts", *BOUT_KEYS, "gap_s", "gap_still_share", "gap_tilted_share", "quiet_floor_ms2")
    lines = ["| statistic | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_cell(summaries[n].get(key)) for n in names) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-dir", type=Path, default=REAL_DIR)
    parser.add_argument("--sim", nargs="*", default=[], metavar="SCENARIO", help="simulated scenarios to measure too")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per scenario")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    summaries = {}
    if args.real_dir.is_dir():
        for name, measured in measure_real(args.real_dir).items():
            summaries[name] = summarise(measured)
    else:
        print(f"no real recordings at {args.real_dir}", file=sys.stderr)
    for scenario in args.sim:
        summaries[f"sim {scenario}"] = summarise(measure_sim(scenario, range(args.seeds)))
    print(json.dumps(summaries, indent=1) if args.json else table(summaries))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
