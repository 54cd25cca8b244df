"""The synthetic walker: reproducibility, truth consistency, frames, physiology."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from walkcoach.hal.mount import Mount
from walkcoach.hal.types import G_MS2
from walkcoach.sim.gait_model import lowpass
from walkcoach.sim.scenarios import DEFAULT_SCENARIO, SCENARIOS
from walkcoach.sim.walker import SimulatedWalk, simulate

LEAN_THRESHOLD_DEG = 15.0
LEAN_HOLD_S = 5.0


@cache
def walk(scenario: str, seed: int = 0) -> SimulatedWalk:
    return simulate(scenario, seed)


def body(w: SimulatedWalk):
    """Gravity, linear acceleration and gyro remapped into the body frame."""
    return tuple(w.mount.remap_array(v) for v in (w.gravity_ms2, w.linear_acc_ms2, w.gyro_rads))


def longest_run_s(mask: np.ndarray, rate_hz: float) -> float:
    """Longest run of consecutive True samples, in seconds."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return lengths.max() / rate_hz if len(lengths) else 0.0


def test_same_seed_same_walk_and_different_seeds_differ():
    a, b, c = simulate("bend-and-go", 3), simulate("bend-and-go", 3), simulate("bend-and-go", 4)
    for name in ("gravity_ms2", "linear_acc_ms2", "gyro_rads"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.truth.step_times_s, b.truth.step_times_s)
    assert a.truth.to_json() == b.truth.to_json()
    assert a.truth.steps != c.truth.steps or len(a.t_s) != len(c.t_s)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_shapes_time_axis_and_read_only_arrays(scenario):
    w = walk(scenario)
    n = len(w.t_s)
    assert w.t_s[0] == 0.0 and np.allclose(np.diff(w.t_s), 1.0 / w.rate_hz)
    assert w.duration_s == pytest.approx(n / w.rate_hz)
    for v in (w.gravity_ms2, w.linear_acc_ms2, w.gyro_rads):
        assert v.shape == (n, 3) and v.dtype == np.float64 and np.isfinite(v).all()
        assert not v.flags.writeable
    assert w.truth.walking.shape == w.truth.lean_deg.shape == (n,)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_truth_is_consistent(scenario):
    w = walk(scenario)
    truth = w.truth
    segments = np.array(truth.walk_segments).reshape(-1, 2)
    assert truth.steps == len(truth.step_times_s)
    assert np.all(np.diff(truth.step_times_s) > 0)
    inside = [(truth.step_times_s > a) & (truth.step_times_s < b) for a, b in segments]
    assert sum(int(m.sum()) for m in inside) == truth.steps  # every heel strike in exactly one segment
    expected = np.zeros_like(truth.walking)
    for a, b in segments:
        expected |= (w.t_s >= a) & (w.t_s < b)
    np.testing.assert_array_equal(truth.walking, expected)
    closing_s = np.asarray(truth.closing_contacts_s)
    assert len(closing_s) == len(segments) and not np.isin(closing_s, truth.step_times_s).any()
    for (a, b), m, close_s in zip(segments, inside, closing_s, strict=True):
        strikes_s = truth.step_times_s[m]
        step_s = np.median(np.diff(strikes_s))
        assert strikes_s[0] - a == pytest.approx(0.5 * step_s, rel=0.5)  # first heel strike half a step in
        # gait termination: after the last heel strike the closing step (about a step time), then standing
        # still within a second
        assert 0.5 * step_s <= close_s - strikes_s[-1] <= 2.0 * step_s
        assert 0.0 < b - close_s <= 1.0
    # Walk time as the Mobilise-D reference sums it: each walk from its first initial contact to the
    # contact before its closing one (the last stride before a break removed), so a walk of N heel
    # strikes and its closing contact lasts N - 1 step times.
    assert len(truth.bouts_s) == len([m for m in inside if m.any()])
    for (first_s, last_s), m, close_s in zip(truth.bouts_s, [m for m in inside if m.any()], closing_s, strict=True):
        contacts_s = np.sort(np.concatenate([truth.step_times_s[m], [close_s]]))
        assert (first_s, last_s) == (contacts_s[0], contacts_s[-2]) and contacts_s[-1] == close_s
    assert truth.walk_s == pytest.approx(sum(float(np.ptp(truth.step_times_s[m])) for m in inside if m.any()))
    if truth.steps:
        intervals_s = [np.diff(truth.step_times_s[m]) for m in inside]
        mean_step_s = np.mean(np.concatenate(intervals_s))
        assert truth.walk_s == pytest.approx(sum(len(i) for i in intervals_s) * mean_step_s, rel=0.05)
    json = truth.to_json()
    assert set(json) == {"walk_s", "steps", "lean_episodes"}
    assert all(set(e) == {"start_s", "end_s", "max_deg"} for e in json["lean_episodes"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gravity_magnitude_is_one_g_in_the_sensor_frame(scenario):
    magnitude = np.linalg.norm(walk(scenario).gravity_ms2, axis=1)
    np.testing.assert_allclose(magnitude, G_MS2, atol=0.05)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s not in ("fidget", "daily-living", "seated-start")])
def test_every_scenario_starts_with_still_upright_standing(scenario):
    w = walk(scenario)
    first = w.t_s < 4.0
    gravity, linear_acc, gyro = body(w)
    assert not w.truth.walking[first].any()
    assert np.abs(w.truth.lean_deg[first]).max() < 1.0
    assert np.linalg.norm(gyro[first], axis=1).max() < 0.2
    assert np.sqrt(np.mean(linear_acc[first] ** 2)) < 0.4
    up = gravity[first] / G_MS2
    assert np.degrees(np.arccos(np.clip(up[:, 2], -1, 1))).max() < 20.0  # mount up axis is up


def test_a_rotated_mount_gives_the_same_body_frame_signals():
    plain = simulate("leaning-walk", 5, misalignment_deg=0.0)
    mounted = simulate("leaning-walk", 5, mount=Mount(forward="-y", up="+x"), misalignment_deg=0.0)
    assert not np.allclose(plain.gravity_ms2, mounted.gravity_ms2)
    for a, b in zip(body(plain), body(mounted), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_the_direct_imu_reads_each_sample_through_the_mount_across_its_chunks_then_ends(monkeypatch):
    """`walkcoach sim`'s IMU: at the clock's k-th tick, sample k remapped as the belt's driver remaps
    (``Mount.remapper``, per sample), over many of DirectImu's conversion chunks and the last, partial
    one; then EndOfStream."""
    from walkcoach.hal.clock import VirtualClock
    from walkcoach.hal.errors import EndOfStream
    from walkcoach.sim import backend

    monkeypatch.setattr(backend, "CHUNK_SAMPLES", 64)
    mount = Mount(forward="-y", up="+x")
    walk = simulate("standing", 2, mount=mount)
    remap = mount.remapper()
    clock = VirtualClock()
    imu = backend.DirectImu(walk, clock, mount)
    n = len(walk.t_s)
    assert n % 64 and n > 10 * 64
    for k in range(n):
        clock.sleep_until(k / walk.rate_hz)
        sample = imu.read()
        assert sample.t_s == clock.monotonic()
        assert sample.gravity_ms2 == remap(tuple(walk.gravity_ms2[k].tolist()))
        assert sample.linear_acc_ms2 == remap(tuple(walk.linear_acc_ms2[k].tolist()))
    clock.sleep_until(n / walk.rate_hz)
    with pytest.raises(EndOfStream):
        imu.read()


def test_misalignment_is_a_few_degrees_and_zero_leaves_only_the_pelvic_tilt():
    def standing_up(w):  # mean body-frame gravity direction while standing at the start
        up = np.mean(body(w)[0][w.t_s < 4.0], axis=0)
        return up / np.linalg.norm(up)

    for seed in range(5):
        exact = standing_up(simulate("standing", seed, misalignment_deg=0.0))
        assert abs(exact[1]) < 0.01  # pelvic tilt is about the left axis: no sideways component
        assert -4.0 < np.degrees(np.arctan2(-exact[0], exact[2])) < 9.0
        for misalignment_deg in (None, 10.0):
            tilted = standing_up(simulate("standing", seed, misalignment_deg=misalignment_deg))
            limit_deg = 4.2 if misalignment_deg is None else 10.2
            assert np.degrees(np.arccos(np.clip(exact @ tilted, -1, 1))) < limit_deg


@pytest.mark.parametrize("scenario", ["upright-walk", "lbp-walk", "slow-walk"])
def test_vertical_acceleration_peaks_at_heel_strikes(scenario):
    w = walk(scenario)
    _, linear_acc, _ = body(w)
    strikes = np.rint(w.truth.step_times_s * w.rate_hz).astype(int)
    half = int(0.5 * np.median(np.diff(w.truth.step_times_s)) * w.rate_hz)
    lag_s = np.array([np.argmax(linear_acc[k - half : k + half, 2]) - half for k in strikes]) / w.rate_hz
    assert np.mean(np.abs(lag_s) <= 0.1) > 0.9


@pytest.mark.parametrize("scenario, low_ms2, high_ms2", [("upright-walk", 3.0, 6.5), ("slow-walk", 0.6, 2.0)])
def test_vertical_peaks_have_realistic_size(scenario, low_ms2, high_ms2):
    w = walk(scenario)
    _, linear_acc, _ = body(w)
    strikes = np.rint(w.truth.step_times_s * w.rate_hz).astype(int)
    peaks = [linear_acc[k - 10 : k + 10, 2].max() for k in strikes]
    assert low_ms2 < np.median(peaks) < high_ms2


@pytest.mark.parametrize("scenario", ["upright-walk", "lbp-walk"])
def test_mediolateral_acceleration_repeats_once_per_stride(scenario):
    w = walk(scenario)
    _, linear_acc, _ = body(w)
    start_s, end_s = w.truth.walk_segments[0]
    ml = linear_acc[int((start_s + 5) * w.rate_hz) : int((end_s - 5) * w.rate_hz), 1]
    freq_hz = np.fft.rfftfreq(len(ml), 1.0 / w.rate_hz)
    power = np.abs(np.fft.rfft(ml - ml.mean())) ** 2
    band = (freq_hz > 0.3) & (freq_hz < 4.0)
    dominant_hz = freq_hz[band][np.argmax(power[band])]
    stride_hz = 0.5 / np.median(np.diff(w.truth.step_times_s))
    assert dominant_hz == pytest.approx(stride_hz, rel=0.1)


def test_lbp_walk_is_slow_short_and_leans_below_the_threshold():
    truth = walk("lbp-walk").truth
    assert 60.0 * truth.steps / truth.walk_s == pytest.approx(90.0, abs=6.0)
    assert truth.walk_s == pytest.approx(590.0, abs=10.0)
    walking_lean = truth.lean_deg[truth.walking]
    assert 6.0 < np.median(walking_lean) < LEAN_THRESHOLD_DEG - 2.0
    assert walking_lean.max() < LEAN_THRESHOLD_DEG - 1.5 and not truth.lean_episodes


def test_slow_walk_is_slow_and_uneven():
    truth = walk("slow-walk").truth
    step_s = np.diff(truth.step_times_s)
    assert 48.0 < 60.0 / np.median(step_s) < 62.0
    assert 0.05 < np.std(step_s) / np.mean(step_s) < 0.14


def test_fidget_is_not_walking():
    truth = walk("fidget").truth
    assert truth.walk_s == 0.0 and truth.steps == 0 and not truth.walk_segments
    assert not truth.walking.any() and len(truth.step_times_s) == 0


def _peak_times_s(x: np.ndarray, rate_hz: float, threshold: float) -> np.ndarray:
    """Local maxima above ``threshold``, at least 0.25 s apart (the larger one kept)."""
    candidates = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:]) & (x[1:-1] > threshold)) + 1
    kept: list[int] = []
    for k in candidates:
        if kept and k - kept[-1] < 0.25 * rate_hz:
            if x[k] > x[kept[-1]]:
                kept[-1] = k
        else:
            kept.append(k)
    return np.array(kept) / rate_hz


def _rhythmic_windows(peaks_s, steps: int = 6, tolerance: float = 0.35, max_gap_s: float = 2.0) -> np.ndarray:
    """For each run of ``steps`` peaks: are its intervals < max_gap_s and within tolerance of their median?

    The coach's own rule (GaitSettings: min_bout_steps, rhythm_tolerance, max_gap_s), applied loosely.
    """
    if len(peaks_s) < steps:
        return np.zeros(0, dtype=bool)
    intervals = np.lib.stride_tricks.sliding_window_view(np.diff(peaks_s), steps - 1)
    median = np.median(intervals, axis=1, keepdims=True)
    return np.all((intervals < max_gap_s) & (np.abs(intervals - median) <= tolerance * median), axis=1)


def _vertical_peaks_s(w: SimulatedWalk, corner_hz: float, threshold_ms2: float) -> np.ndarray:
    gravity, linear_acc, _ = body(w)
    vertical = lowpass(np.sum(linear_acc * gravity, axis=1) / G_MS2, w.rate_hz, corner_hz)
    return _peak_times_s(vertical, w.rate_hz, threshold_ms2)


@pytest.mark.parametrize("seed", range(4))
def test_fidget_has_walking_sized_peaks_but_no_rhythm(seed):
    w = walk("fidget", seed)
    assert len(_vertical_peaks_s(w, 10.0, 2.5)) > 0
    for corner_hz in (5.0, 10.0):
        for threshold_ms2 in (0.35, 1.0):
            assert not _rhythmic_windows(_vertical_peaks_s(w, corner_hz, threshold_ms2)).any()


@pytest.mark.parametrize("scenario", ["upright-walk", "lbp-walk"])
def test_a_walk_has_rhythm_by_the_same_measure(scenario):
    assert np.mean(_rhythmic_windows(_vertical_peaks_s(walk(scenario), 10.0, 0.35))) > 0.9


def test_leaning_walk_has_three_sustained_leans_of_different_lengths():
    w = walk("leaning-walk")
    truth = w.truth
    assert len(truth.lean_episodes) == 3 and not truth.bends
    held_s = []
    for episode in truth.lean_episodes:
        inside = (w.t_s >= episode.start_s) & (w.t_s <= episode.end_s)
        assert truth.walking[inside].all()
        assert 18.0 <= episode.max_deg <= 40.0
        assert episode.max_deg == pytest.approx(truth.lean_deg[inside].max())
        held_s.append(longest_run_s(truth.lean_deg[inside] > LEAN_THRESHOLD_DEG, w.rate_hz))
        assert abs(truth.lean_deg[w.t_s < episode.start_s][-1]) < 3.0
    assert min(held_s) > LEAN_HOLD_S and max(held_s) > 3 * min(held_s)
    outside = np.ones_like(truth.walking)
    for episode in truth.lean_episodes:
        outside &= (w.t_s < episode.start_s) | (w.t_s > episode.end_s)
    assert truth.lean_deg[outside].max() < LEAN_THRESHOLD_DEG - 5.0


@pytest.mark.parametrize("scenario", ["bend-and-go", "sitting", "fidget", "full-session"])
def test_bends_are_quick(scenario):
    w = walk(scenario)
    assert w.truth.bends
    for bend in w.truth.bends:
        inside = (w.t_s >= bend.start_s) & (w.t_s <= bend.end_s)
        assert bend.max_deg > LEAN_THRESHOLD_DEG
        assert 0.0 < longest_run_s(w.truth.lean_deg[inside] > LEAN_THRESHOLD_DEG, w.rate_hz) < 3.5


def test_bend_and_go_has_no_sustained_lean():
    w = walk("bend-and-go")
    assert len(w.truth.bends) >= 3 and not w.truth.lean_episodes
    assert max(b.max_deg for b in w.truth.bends) >= 40.0
    assert longest_run_s(w.truth.lean_deg > LEAN_THRESHOLD_DEG, w.rate_hz) < LEAN_HOLD_S


def test_sitting_tilts_the_pelvis_back():
    w = walk("sitting")
    seated = (w.t_s > w.truth.bends[0].end_s) & (w.t_s < w.truth.bends[1].start_s)
    assert w.truth.walk_s == 0.0 and w.duration_s > 600.0
    assert -20.0 < np.median(w.truth.lean_deg[seated]) < -5.0


def test_full_session_walks_past_a_ten_minute_cap():
    w = walk(DEFAULT_SCENARIO)
    truth = w.truth
    assert 13 * 60 <= truth.walk_s <= 14.5 * 60
    assert 2 <= len(truth.walk_segments) <= 3 and 15 * 60 <= w.duration_s <= 17.5 * 60
    assert 1 <= len(truth.lean_episodes) <= 2 and truth.bends
    for episode in truth.lean_episodes:
        inside = (w.t_s >= episode.start_s) & (w.t_s <= episode.end_s)
        assert longest_run_s(truth.lean_deg[inside] > LEAN_THRESHOLD_DEG, w.rate_hz) > LEAN_HOLD_S


def test_gyro_is_the_rotation_rate_of_gravity():
    """A world-fixed vector seen from the sensor turns as dg/dt = g x omega."""
    w = walk("fidget", 1)
    rate_hz = w.rate_hz
    moving = slice(0, int(20 * rate_hz))  # belt handling: large rotations
    gravity = lowpass(w.gravity_ms2, rate_hz, 5.0)[moving]
    predicted = np.cross(gravity, lowpass(w.gyro_rads, rate_hz, 5.0)[moving])
    measured = np.gradient(gravity, 1.0 / rate_hz, axis=0)
    assert np.corrcoef(predicted.ravel(), measured.ravel())[0, 1] > 0.95


def test_turns_show_up_on_the_vertical_gyro():
    w = walk("slow-walk")  # one 180 deg turn
    _, _, gyro = body(w)
    standing = w.t_s < w.truth.walk_segments[0][0]  # sway ends where it began: the mean rate is the bias
    yaw_rate_rads = gyro[:, 2] - np.mean(gyro[standing, 2])
    turned_deg = np.degrees(np.sum(yaw_rate_rads[w.truth.walking]) / w.rate_hz)
    assert abs(turned_deg) == pytest.approx(180.0, abs=25.0)


def test_other_rates_work():
    w = simulate("bend-and-go", 1, rate_hz=50.0)
    assert np.allclose(np.diff(w.t_s), 0.02)
    assert w.duration_s == pytest.approx(walk("bend-and-go", 1).duration_s, abs=0.5)


def test_unknown_scenario_lists_the_names():
    with pytest.raises(KeyError, match="full-session"):
        simulate("moonwalk")



# --- The messy walkers (issue 9) against what real recordings show ----------------------------------
# The real figures, from the mobgap-lab recordings and their INDIP reference (8 bouts of one healthy adult,
# daily living and straight walks), as `.venv/bin/python tools/real_gait_stats.py` prints them; each is
# the median [min-max] over bouts. The simulated walker is measured by the same code (tools/real_gait_stats),
# with its truth (heel strikes, walk segments) in the reference's place. Slow and impaired gait is not in
# the recordings: there the figures are published ones (README: "The simulator against real recordings").
REAL_LAB = {  # statistic: (median, min, max)
    "bout_steps": (8.5, 6, 18),
    "cadence_spm": (97, 87, 104),
    "step_cv": (0.09, 0.04, 0.28),
    "step_ratio": (1.30, 1.15, 2.67),
    "peak_ratio": (5.64, 1.63, 10.70),
    "peak_ms2": (3.43, 1.38, 4.26),
    "odd_even_step": (1.07, 1.00, 1.22),
    "odd_even_peak": (1.17, 1.03, 1.65),
    "ac_step": (0.81, 0.23, 0.89),
    "ac_stride": (0.66, 0.06, 0.80),
}
REAL_LAB_GAP_S = (5.0, 26.0)  # between the daily-living bouts
REAL_LAB_GAP_TILTED_SHARE = 0.38  # of that time, the trunk > 10 deg from its walking upright (sitting, bending)
MESSY_SEEDS = range(4)


@cache
def measured(scenario: str) -> dict:
    from tools.real_gait_stats import measure_sim

    return measure_sim(scenario, MESSY_SEEDS)


def per_bout(scenario: str, key: str) -> np.ndarray:
    values = np.array([b[key] for b in measured(scenario)["bouts"]], dtype=float)
    return values[np.isfinite(values)]


@pytest.mark.parametrize("key", ["bout_steps", "cadence_spm", "step_cv", "step_ratio", "peak_ratio", "peak_ms2",
                                 "odd_even_step", "odd_even_peak", "ac_step", "ac_stride"])
def test_daily_living_bouts_are_distributed_like_the_real_ones(key):
    """The sim's median lies inside the real range, and its spread reaches the real median."""
    real_median, real_min, real_max = REAL_LAB[key]
    values = per_bout("daily-living", key)
    assert len(values) >= 15
    assert real_min <= np.median(values) <= real_max, (key, np.median(values))
    assert values.min() <= real_median <= values.max(), (key, values.min(), values.max())


def test_daily_living_walks_are_short_speed_up_slow_down_and_vary_tenfold():
    steps = per_bout("daily-living", "bout_steps")
    assert steps.min() >= 6 and steps.max() <= 20  # 4 strides (the reference's least bout) to 20 steps
    assert np.mean(steps < 10) >= 0.25  # "many real bouts have fewer than 10 steps"
    assert np.median(per_bout("daily-living", "step_ratio")) >= 1.25  # 30-40 % step-time changes
    assert per_bout("daily-living", "peak_ratio").max() >= 8.0  # heel strikes up to tenfold apart


def test_daily_living_starts_seated_and_sits_stands_and_handles_things_between_walks():
    gaps = measured("daily-living")["gaps"]
    assert min(gaps["gap_s"]) > 3.0  # more than the reference's longest break inside a bout
    assert REAL_LAB_GAP_S[0] <= np.median(gaps["gap_s"]) <= REAL_LAB_GAP_S[1]
    assert 0.5 * REAL_LAB_GAP_TILTED_SHARE <= gaps["gap_tilted_share"] <= 1.5 * REAL_LAB_GAP_TILTED_SHARE
    for seed in MESSY_SEEDS:
        w = walk("daily-living", seed)
        first = w.t_s < 4.0
        assert not w.truth.walking[first].any() and w.truth.lean_deg[first].max() < -5.0  # seated: tilted back
        assert len(w.truth.walk_segments) >= 4 and len(w.truth.bends) >= 4  # stand-ups, sit-downs, reaches


def test_asymmetric_walk_has_a_stride_rhythm_stronger_than_its_step_rhythm():
    """Healthy real bouts have step regularity >= stride regularity; here alternate steps are unalike."""
    step, stride = per_bout("asymmetric-walk", "ac_step"), per_bout("asymmetric-walk", "ac_stride")
    assert np.all(stride > step + 0.1)
    assert np.median(per_bout("asymmetric-walk", "odd_even_peak")) > REAL_LAB["odd_even_peak"][2]
    assert np.median(per_bout("asymmetric-walk", "odd_even_step")) > REAL_LAB["odd_even_step"][0]
    real_step, real_stride = REAL_LAB["ac_step"][0], REAL_LAB["ac_stride"][0]
    assert real_step > real_stride  # (the real, symmetric walker) and so is the daily-living sim:
    assert np.median(per_bout("daily-living", "ac_step")) > np.median(per_bout("daily-living", "ac_stride"))


# Published slow gait (README): low back pain, multiple sclerosis, walking aids: 40-80 steps/min, 0.15-0.4 m steps.
SLOW_CADENCE_SPM = (40.0, 80.0)


def test_shuffle_walk_is_slow_soft_and_has_two_peaks_per_step():
    cadence = per_bout("shuffle-walk", "cadence_spm")
    assert np.all((cadence >= SLOW_CADENCE_SPM[0]) & (cadence <= SLOW_CADENCE_SPM[1]))
    assert np.median(cadence) == pytest.approx(70.0, abs=6.0)
    assert np.median(per_bout("shuffle-walk", "peak_ms2")) < 0.5 * REAL_LAB["peak_ms2"][1]  # far below any real bout
    assert np.median(per_bout("shuffle-walk", "double_peak_share")) > 0.5  # real healthy bouts: median 0
    assert np.all(per_bout("shuffle-walk", "pelvis_rise_mm") < 8.0)  # 0.15 m steps barely lift the pelvis


def test_very_slow_walk_is_forty_steps_a_minute_and_the_pelvis_rises_about_6_mm():
    cadence = per_bout("very-slow-walk", "cadence_spm")
    assert np.all((cadence >= 0.9 * SLOW_CADENCE_SPM[0]) & (cadence <= 0.6 * SLOW_CADENCE_SPM[1]))
    rise_mm = per_bout("very-slow-walk", "pelvis_rise_mm")
    assert np.all((rise_mm > 3.0) & (rise_mm < 10.0)), rise_mm


@pytest.mark.parametrize("scenario", ["daily-living", "asymmetric-walk", "very-slow-walk"])
def test_messy_walkers_still_peak_at_their_heel_strikes(scenario):
    """The truth's heel strikes are where the signal says: the largest vertical acceleration in the
    surrounding step comes within 0.15 s of most of them (shuffling's push-off can outgrow them)."""
    lags = []
    for seed in MESSY_SEEDS:
        w = walk(scenario, seed)
        _, linear_acc, _ = body(w)
        smooth = lowpass(linear_acc[:, 2], w.rate_hz, 10.0)
        for start_s, end_s in w.truth.walk_segments:
            strikes_s = w.truth.step_times_s[(w.truth.step_times_s > start_s) & (w.truth.step_times_s < end_s)]
            half = int(0.4 * np.median(np.diff(strikes_s)) * w.rate_hz)
            for k in np.rint(strikes_s[1:-1] * w.rate_hz).astype(int):
                lags.append((np.argmax(smooth[k - half : k + half]) - half) / w.rate_hz)
    assert np.mean(np.abs(np.array(lags)) <= 0.15) > 0.8



@pytest.mark.parametrize("scenario", ["upright-walk", "slow-walk", "daily-living", "asymmetric-walk", "shuffle-walk"])
def test_a_walk_ends_with_a_closing_step_then_quiet_standing(scenario):
    """Gait termination (Jaeger & Vanitchatchavan 1992; Sparrow & Tirosh 2005): after the last walking heel
    strike the trailing foot is set down beside the other, with a smaller vertical excursion than a walking
    step's (the pelvis, over both feet, barely dips), and the walker stands still: in the second after the
    walk segment, vertical acceleration is at the level of standing, far under walking's."""
    ratios = []
    for seed in range(3):
        w = walk(scenario, seed)
        _, linear_acc, _ = body(w)
        vertical = lowpass(linear_acc[:, 2], w.rate_hz, 3.0)

        def peak(t_s, vertical=vertical, rate_hz=w.rate_hz):
            k = int(round(t_s * rate_hz))
            return vertical[max(0, k - 15) : k + 15].max()

        for (start_s, end_s), close_s in zip(w.truth.walk_segments, w.truth.closing_contacts_s, strict=True):
            strikes_s = w.truth.step_times_s[(w.truth.step_times_s > start_s) & (w.truth.step_times_s < end_s)]
            ratios.append(peak(close_s) / np.median([peak(t) for t in strikes_s]))
            walking_sd = np.std(vertical[int(start_s * w.rate_hz) : int(end_s * w.rate_hz)])  # (the belt's bias out)
            after_sd = np.std(vertical[int(end_s * w.rate_hz) : int((end_s + 1.0) * w.rate_hz)])
            assert after_sd < 0.2 * walking_sd, (seed, end_s, after_sd, walking_sd)
    assert np.median(ratios) < 0.8 and max(ratios) < 1.2, np.round(ratios, 2)
