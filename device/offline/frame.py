"""The body frame of a sensor with unknown axes: up from stillness or walking, forward from the gait.

See ``device.replay``'s docstring for the method. ``estimate_frame`` takes a
bounded window of samples (replay gives it the recording's first
``FRAME_WINDOW_S``), never a whole day.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import cast

import numpy as np

from walkcoach.device.core.coach import Coach
from walkcoach.device.core.events import EventKind
from walkcoach.device.core.settings import CoachSettings
from walkcoach.device.core.upright import PRE_GAIT_BEFORE_S
from walkcoach.device.offline.lowpass import zero_phase_lowpass
from walkcoach.device.shell.recording import RecordingError
from walkcoach.hal.types import ImuSample

GAIT_BAND_HZ = 3.0
STILL_S = 2.0
STILL_MAX_LINEAR_MS2 = 0.6
STILL_MIN_RESULTANT = math.cos(math.radians(2.0))
UPRIGHT_MAX_FROM_WALKING_DEG = 35.0
# Standing still comes right before walking (quiet stance, then gait initiation: nobody walks off from
# sitting or lying without standing up first, and standing up takes more than this); a seated pelvis
# tilts 8-16 deg back, within the 35 deg of walking, so a still period long before a walk may be seated.
STANDING_BEFORE_WALK_S = PRE_GAIT_BEFORE_S
ZERO3 = (0.0, 0.0, 0.0)


@dataclass
class FrameEstimate:
    """How a plain CSV's sensor axes were turned into the body frame."""

    sensor_to_body: np.ndarray  # 3x3, rows: forward, left, up in sensor coordinates
    upright_method: str
    forward_method: str
    forward_confidence: float  # 0..1: correlation behind the forward direction (0 if not from walking)
    gravity_method: str

    def to_json(self) -> dict:
        return {
            "sensor_to_body": np.round(self.sensor_to_body, 4).tolist(),
            "upright": self.upright_method,
            "forward": self.forward_method,
            "forward_confidence": round(self.forward_confidence, 3),
            "gravity": self.gravity_method,
        }


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _walking_mask(
    t: np.ndarray, gravity: np.ndarray, linear: np.ndarray, rate_hz: float, settings: CoachSettings
) -> tuple[np.ndarray, int]:
    """Samples inside the bouts the coach itself finds (steps need no frame: vertical is along gravity); and their steps."""
    coach = Coach(settings, rate_hz=rate_hz, cap_s=float("inf"))
    update = coach.update
    coach.upright.mount_known = False  # sensor axes: what is up is what this pass helps find
    bouts = []
    # plain tuples in ImuSample's field order, built by zip in C (the coach reads a sample by position)
    n = len(t)
    samples = zip(
        t.tolist(), zip(*gravity.T.tolist(), strict=True), zip(*linear.T.tolist(), strict=True), repeat(ZERO3, n), repeat(3, n),
        strict=True,
    )
    for sample in cast("Iterator[ImuSample]", samples):
        for event in update(sample):
            if event.kind is EventKind.WALK_ENDED and event.bout is not None:
                bouts.append(event.bout)
    bouts.extend(e.bout for e in coach.finish(float(t[-1])) if e.kind is EventKind.WALK_ENDED and e.bout is not None)
    mask = np.zeros(len(t), dtype=bool)
    for bout in bouts:
        mask |= (t >= bout.start_s) & (t <= bout.end_s)
    return mask, sum(bout.steps for bout in bouts)


def _still_periods(gravity: np.ndarray, linear: np.ndarray, rate_hz: float, segment: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of stillness lasting at least STILL_S."""
    n = len(gravity)
    w = max(2, int(round(STILL_S * rate_hz)))
    if n < w:
        return []
    quiet = (np.linalg.norm(linear, axis=1) < STILL_MAX_LINEAR_MS2).astype(float)
    unit = _unit_rows(gravity)
    c_quiet = np.concatenate([[0.0], np.cumsum(quiet)])
    c_unit = np.vstack([np.zeros((1, 3)), np.cumsum(unit, axis=0)])
    starts = np.arange(n - w + 1)
    all_quiet = (c_quiet[starts + w] - c_quiet[starts]) == w
    resultant = np.linalg.norm(c_unit[starts + w] - c_unit[starts], axis=1) / w
    same_segment = segment[starts] == segment[starts + w - 1]
    ok = all_quiet & (resultant >= STILL_MIN_RESULTANT) & same_segment
    periods = []
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return []
    run_start = prev = idx[0]
    for j in idx[1:]:
        if j != prev + 1:
            periods.append((int(run_start), int(prev + w)))
            run_start = j
        prev = j
    periods.append((int(run_start), int(prev + w)))
    return periods


def estimate_frame(
    t: np.ndarray,
    gravity: np.ndarray,
    linear: np.ndarray,
    rate_hz: float,
    segment: np.ndarray,
    *,
    upright: str,
    settings: CoachSettings,
    path: Path | str = "",
    warnings: list[str] | None = None,
) -> FrameEstimate:
    """Up and forward of a sensor with unknown axes; see the module docstring."""
    warnings = [] if warnings is None else warnings
    unit_g = _unit_rows(gravity)
    vertical = np.sum(linear * unit_g, axis=1)
    walking, steps = _walking_mask(t, gravity, linear, rate_hz, settings)
    walking_up = _unit(np.median(unit_g[walking], axis=0)) if walking.any() else None
    periods = _still_periods(gravity, linear, rate_hz, segment)

    def still_up(period):
        a, b = period
        return _unit(unit_g[a:b].sum(axis=0))

    up = None
    if upright == "first-still":
        if not periods:
            raise RecordingError(
                f"no still period of {STILL_S:g} s to take the upright from (try --upright auto)", path=path
            )
        up = still_up(periods[0])
        upright_method = f"first still period at {t[periods[0][0]] - t[0]:.1f} s"
    else:
        walk_starts_s = t[1:][walking[1:] & ~walking[:-1]] if walking.any() else t[:0]
        if walking.any() and walking[0]:
            walk_starts_s = np.concatenate([t[:1], walk_starts_s])

        def right_before_walking(period) -> bool:
            end_s = t[period[1] - 1]
            return bool(np.any((walk_starts_s >= end_s) & (walk_starts_s - end_s <= STANDING_BEFORE_WALK_S)))

        near_walking = [
            period for period in periods
            if walking_up is None
            or math.degrees(math.acos(min(1.0, float(still_up(period) @ walking_up)))) <= UPRIGHT_MAX_FROM_WALKING_DEG
        ]
        standing = [period for period in near_walking if right_before_walking(period)]
        if standing and standing[0] is not near_walking[0]:  # the first near walking's direction was seated
            up = still_up(standing[0])
            upright_method = f"still period right before walking at {t[standing[0][0]] - t[0]:.1f} s"
        elif near_walking:
            up = still_up(near_walking[0])
            upright_method = f"first still period at {t[near_walking[0][0]] - t[0]:.1f} s"
        if up is None:
            if walking_up is not None:
                up = walking_up
                upright_method = "median gravity direction while walking"
            else:
                up = _unit(np.median(unit_g, axis=0))
                upright_method = "median gravity direction (no still period, no walking)"
                warnings.append("no still standing and no walking found: upright is the median gravity direction")

    forward, confidence, forward_method = _forward(t, unit_g, linear, vertical, up, walking, steps, rate_hz, warnings)
    left = np.cross(up, forward)
    return FrameEstimate(
        sensor_to_body=np.vstack([forward, left, up]),
        upright_method=upright_method,
        forward_method=forward_method,
        forward_confidence=confidence,
        gravity_method="",
    )


def _horizontal(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - np.outer(v @ up, up) if v.ndim == 2 else v - (v @ up) * up


def _forward(t, unit_g, linear, vertical, up, walking, steps, rate_hz, warnings):
    if walking.sum() > 2 * rate_hz:
        horizontal = linear - vertical[:, None] * unit_g
        vertical_band = zero_phase_lowpass(vertical, rate_hz, GAIT_BAND_HZ)
        horizontal_band = zero_phase_lowpass(horizontal, rate_hz, GAIT_BAND_HZ)
        jerk = np.gradient(vertical_band, 1.0 / rate_hz)
        h, j = horizontal_band[walking], jerk[walking]
        d = _horizontal((h * j[:, None]).sum(axis=0), up)
        confidence = float(np.linalg.norm(d) / math.sqrt(max((h**2).sum() * (j**2).sum(), 1e-30)))
        if np.linalg.norm(d) > 0:
            if steps < 20 or confidence < 0.2:
                warnings.append(
                    f"forward direction uncertain ({steps} steps of walking, confidence {confidence:.2f}): lean may be off"
                )
            return _unit(d), confidence, f"forward acceleration leads vertical, over {steps} steps of walking"
    tilt = _horizontal(unit_g, up)
    tilted = np.linalg.norm(tilt, axis=1) > math.sin(math.radians(10.0))
    if tilted.any():
        warnings.append("no walking found: forward is taken from the direction the trunk tilts most (assumed forward bends)")
        return _unit(-tilt[tilted].sum(axis=0)), 0.0, "opposite to where gravity moves in the largest tilts"
    warnings.append("no walking and no tilting found: forward is arbitrary, lean cannot be measured")
    axis = np.eye(3)[int(np.argmin(np.abs(up)))]
    return _unit(_horizontal(axis, up)), 0.0, "arbitrary (no walking, no tilt)"
