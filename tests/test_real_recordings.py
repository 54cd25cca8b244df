"""The coach on real lower-back recordings (tests/data/real/), scored by `walkcoach evaluate`.

Thresholds are the issue's targets (issue 9) where the coach reaches them. Where it does not
yet, the threshold is the level it reaches, in a constant named ``REACHED_...`` with the target
beside it, so a regression fails and the gap stays visible (see the README's table).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.real_data import body_frame
from walkcoach.device.core.events import Bout
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.offline.evaluate import IC_TOLERANCE_S, ReferenceError, evaluate_recording, load_reference, score
from walkcoach.device.offline.replay import read_recording, replay

DATA = Path(__file__).parent / "data" / "real"
LAB = DATA / "mobgap-lab"
RECORDINGS = ["HA001_Test5_Trial1", "HA001_Test5_Trial2", "HA001_Test11_Trial1"]

TARGET_WALKING_TIME = 0.9  # sensitivity and PPV
TARGET_IC = 0.9  # sensitivity and PPV within 0.25 s
TARGET_STEP_COUNT_ERROR = 0.05
TARGET_CADENCE_ERROR = 0.05
TARGET_WALK_TIME_PER_BOUT_S = 2.0

# Not met yet (peak detector + Mobilise-D bout rules + regularity test). A bout ends at the contact
# before its last (the closing step of gait termination starts no stride: mobgap's
# MaxBreakCriteria(remove_last_ic=True); the INDIP lists no contact for it, in 7 of 7 bouts the coach
# sees one). The lab walks: the coach still counts one lumbar contact before the INDIP bout's first
# (the push-off of gait initiation), so its walking time starts early (PPV 0.84 / 0.86, was ~0.75 with
# the closing step in) and its walk time is ~0.9 s long. Daily living (turns, sit/stand): walking time
# 0.85 / 0.94, ICs 0.83 / 0.91, steps 9.5 % off (all of it the missed 6-step bout at 28.6 s), walk time
# per bout within 0.91 s (2.1 s with the closing step in). Cadence meets its target (3.0 % mean; 7.2 %
# with the median of the detection times' step intervals).
REACHED_WALKING_TIME_PPV = 0.84
# The 119.9-125.2 s bout ends at 124.76 s, the coach's contact before its closing one, 0.4 s before the
# reference's last IC (125.16 s); the coach's last contacts there, 123.65 and 124.76 s, do not sit on the
# INDIP's 123.35 and 125.16 s.
# The steps the coach reports for a walk (its history's) count the missed steps it infers between contacts: a
# pause or a turn inside a bout (Test11's 38.5 s bout: 19 contacts, 22 steps) and gait initiation's contact
# before the INDIP's first (the lab walks: 10 for 9) count too. Safe for the cap (walk time is unaffected),
# but not the reference's count: 14.4 % in daily living, 11.1 % on the lab walks.
REACHED_REPORTED_STEPS_ERROR = 0.12
REACHED_DAILY_LIVING_REPORTED_STEPS_ERROR = 0.15
REACHED_DAILY_LIVING_WALKING_TIME_SENSITIVITY = 0.85
REACHED_DAILY_LIVING_IC_SENSITIVITY = 0.82
REACHED_DAILY_LIVING_IC_PPV = 0.9
# Steps are reported at the heel strike's impact (the sharpest raw rise before the pelvis's lowest
# point): mean |step - IC| 0.014 s on the lab walks, 0.032 s in daily living (mobgap 0.09 / 0.06 s).
# 0.11 / 0.14 s at the filtered peak; 0.037 / 0.071 s at the lowest point (the filter's delay taken
# back), late by the loading response.
REACHED_IC_TIMING_ERROR_S = 0.02
REACHED_DAILY_LIVING_IC_TIMING_ERROR_S = 0.04
REACHED_DAILY_LIVING_STEP_COUNT_ERROR = 0.15


@pytest.fixture(scope="module")
def scores():
    return {
        name: evaluate_recording(LAB / f"{name}.csv", LAB / f"{name}.reference.json", DeviceSettings(), units="g")
        for name in RECORDINGS
    }


@pytest.mark.parametrize("name", ["HA001_Test5_Trial1", "HA001_Test5_Trial2"])
def test_straight_lab_walk(scores, name):
    s = scores[name]
    assert s["reference_bouts_found"] == s["reference_bouts"] == s["detected_bouts"] == 1
    assert s["walking_time_sensitivity"] >= TARGET_WALKING_TIME
    assert s["walking_time_ppv"] >= REACHED_WALKING_TIME_PPV
    assert s["ic_sensitivity"] >= TARGET_IC and s["ic_ppv"] >= TARGET_IC
    assert s["ic_timing_error_s"] <= REACHED_IC_TIMING_ERROR_S
    assert abs(s["ic_timing_offset_s"]) <= REACHED_IC_TIMING_ERROR_S  # not late by the loading response
    assert s["step_count_error"] <= TARGET_STEP_COUNT_ERROR
    assert s["reported_steps_error_mean"] <= REACHED_REPORTED_STEPS_ERROR
    assert s["cadence_error_max"] <= TARGET_CADENCE_ERROR
    assert s["walk_time_error_per_bout_max_s"] <= TARGET_WALK_TIME_PER_BOUT_S


def test_daily_living(scores):
    """Short walks between sitting, standing, turning and handling objects (138 s, 6 reference bouts)."""
    s = scores["HA001_Test11_Trial1"]
    assert s["reference_bouts_found"] >= 5
    assert s["walking_time_sensitivity"] >= REACHED_DAILY_LIVING_WALKING_TIME_SENSITIVITY
    assert s["walking_time_ppv"] >= TARGET_WALKING_TIME
    assert s["ic_sensitivity"] >= REACHED_DAILY_LIVING_IC_SENSITIVITY
    assert s["ic_ppv"] >= REACHED_DAILY_LIVING_IC_PPV
    assert s["ic_timing_error_s"] <= REACHED_DAILY_LIVING_IC_TIMING_ERROR_S
    assert s["step_count_error"] <= REACHED_DAILY_LIVING_STEP_COUNT_ERROR
    assert s["reported_steps_error_mean"] <= REACHED_DAILY_LIVING_REPORTED_STEPS_ERROR
    assert s["cadence_error_mean"] <= TARGET_CADENCE_ERROR
    assert s["walk_time_error_per_bout_max_s"] <= TARGET_WALK_TIME_PER_BOUT_S


def test_contacts_keep_their_timing_at_half_the_rate(tmp_path):
    """The filter delay taken back is the filter's own (it depends on the rate): the lab walk
    decimated to 50 Hz scores its contacts as well as at 100 Hz."""
    lines = (LAB / "HA001_Test5_Trial1.csv").read_text().splitlines()
    half = tmp_path / "HA001_Test5_Trial1_50Hz.csv"
    half.write_text("\n".join([lines[0], *lines[1::2]]) + "\n")
    s = evaluate_recording(half, LAB / "HA001_Test5_Trial1.reference.json", DeviceSettings(), units="g")
    assert s["ic_sensitivity"] >= TARGET_IC and s["ic_ppv"] >= TARGET_IC
    assert s["ic_timing_error_s"] <= REACHED_IC_TIMING_ERROR_S


def test_the_reference_bounds_a_bout_by_its_first_and_last_initial_contact():
    """What walkcoach's bouts and walk time follow: in the INDIP reference each bout's start is its
    first initial contact and its end its last listed one (one sample later: mobgap's end index is
    exclusive), and walk_s is the sum of those spans. It lists no contact for the closing step of gait
    termination, so walkcoach's bouts end at the contact before their closing one."""
    for name in RECORDINGS:
        data = json.loads((LAB / f"{name}.reference.json").read_text())
        for bout in data["bouts"]:
            ics = [t for t in data["ics_s"] if bout["start_s"] - 0.02 <= t <= bout["end_s"] + 0.02]
            assert len(ics) == bout["n_ic"]
            assert ics[0] == pytest.approx(bout["start_s"], abs=0.011)
            assert ics[-1] == pytest.approx(bout["end_s"], abs=0.011)
        assert data["walk_s"] == pytest.approx(sum(b["end_s"] - b["start_s"] for b in data["bouts"]), abs=0.05)


def test_daily_living_first_walk_starts_once_standing_up_is_over():
    """The recording starts seated: the first walk comes after a sit-to-stand, whose trunk flexion
    (measured here from the recording: the largest excursion of the gravity direction from the
    walk's posture in the first 10 s) ends before the first initial contact. No counted step
    belongs to the rising, and none of the walk's first steps is lost."""
    t_s, gravity, _ = body_frame("mobgap-lab/HA001_Test11_Trial1.csv")
    up = gravity / np.linalg.norm(gravity, axis=1)[:, None]
    reference = load_reference(LAB / "HA001_Test11_Trial1.reference.json")
    first_bout = reference.bouts[0]
    walk = up[(t_s > first_bout.start_s + 1.0) & (t_s < first_bout.end_s)].mean(axis=0)
    off_deg = np.degrees(np.arccos(np.clip(up @ (walk / np.linalg.norm(walk)), -1.0, 1.0)))
    peak = int(np.argmax(np.where(t_s < 10.0, off_deg, 0.0)))
    assert off_deg[peak] > 30.0  # a sit-to-stand is there
    risen_s = float(t_s[peak + int(np.argmax(off_deg[peak:] < 20.0))])
    bouts = replay(read_recording(LAB / "HA001_Test11_Trial1.csv", units="g", settings=DeviceSettings().coach),
                   DeviceSettings(), cap_s=float("inf")).summary.bouts
    first_step_s = bouts[0].step_times_s[0]
    assert risen_s <= first_step_s <= first_bout.start_s + IC_TOLERANCE_S, (risen_s, first_step_s)


# gaitpy-demo: the belt is handled before it is worn and after it is taken off (large irregular
# knocks, seen in the signal before ~24 s and after ~156 s); three walks in between.
HANDLING_S = [(0.0, 24.0), (156.0, 170.0)]
WALKS_S = [(24.0, 58.0), (58.0, 100.0), (116.0, 156.0)]


@pytest.fixture(scope="module")
def gaitpy_demo():
    settings = DeviceSettings()
    recording = read_recording(DATA / "gaitpy-demo" / "demo.csv", units="g", settings=settings.coach)
    peers = json.loads((DATA / "gaitpy-demo" / "peers.json").read_text())
    return replay(recording, settings, cap_s=float("inf")).summary, peers


def test_gaitpy_demo_no_bout_while_the_belt_is_handled(gaitpy_demo):
    summary, _ = gaitpy_demo
    for start_s, end_s in HANDLING_S:
        assert not [b for b in summary.bouts if b.end_s > start_s and b.start_s < end_s], (start_s, end_s)


@pytest.mark.parametrize("walk", range(len(WALKS_S)))
def test_gaitpy_demo_steps_per_walk_within_what_the_peers_find(gaitpy_demo, walk):
    summary, peers = gaitpy_demo
    start_s, end_s = WALKS_S[walk]

    def steps(bouts):
        return sum(b[2] for b in bouts if b[0] < end_s and b[1] > start_s)

    peer_steps = [steps(p["bouts"]) for p in peers.values()]
    ours = sum(b.steps for b in summary.bouts if b.start_s < end_s and b.end_s > start_s)
    assert min(peer_steps) <= ours <= max(peer_steps), (ours, peer_steps)


def test_a_malformed_reference_is_one_clear_error(tmp_path):
    for text, why in [
        ("{", "not JSON"),
        ('{"bouts": [], "ics_s": "x"}', "'ics_s' is missing or not a list"),
        ('{"bouts": [{"start_s": 3, "end_s": 1}], "ics_s": []}', "ends"),
        ('{"bouts": [{"start_s": "a", "end_s": 1}], "ics_s": []}', "finite number"),
    ]:
        path = tmp_path / "ref.json"
        path.write_text(text)
        with pytest.raises(ReferenceError, match=why) as info:
            load_reference(path)
        assert "\n" not in str(info.value)


def test_the_cli_reports_a_malformed_reference_in_one_line_and_exits_2(tmp_path, capsys):
    from walkcoach.device.cli.cli import main

    bad = tmp_path / "ref.json"
    bad.write_text('{"bouts": 3}')
    assert main(["evaluate", str(LAB / "HA001_Test5_Trial1.csv"), str(bad), "--units", "g"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bouts" in err


def test_scoring_on_a_known_answer():
    """Two reference bouts; one found, with one extra step and one missed, the other missed. The detected
    bout's extent is its own start and end (the coach's: its first step, the contact before its closing
    one), here 10.1-16.0 s."""
    reference_path = {"bouts": [{"start_s": 10.0, "end_s": 14.0, "n_ic": 5, "cadence_spm": 60.0},
                                {"start_s": 30.0, "end_s": 34.0, "n_ic": 5}],
                      "ics_s": [10.0, 11.0, 12.0, 13.0, 14.0, 30.0, 31.0, 32.0, 33.0, 34.0]}
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(reference_path, f)
    reference = load_reference(f.name)
    steps = (10.1, 11.1, 12.6, 13.1, 14.1, 16.0)  # 12.6 is 0.6 s off: no match; 16.0 outside the reference
    bout = Bout(10.1, 16.0, len(steps), 60.0, 0.0, step_times_s=steps)
    s = score([bout], reference)
    assert s["walking_time_sensitivity"] == pytest.approx(3.9 / 8.0)
    assert s["walking_time_ppv"] == pytest.approx(3.9 / 5.9)
    assert s["ic_sensitivity"] == pytest.approx(4 / 10)
    assert s["ic_ppv"] == pytest.approx(4 / 5)
    assert s["unmatched_detected_ics_s"] == [12.6]  # 16.0 is outside the reference bouts: not among them
    assert s["unmatched_reference_ics_s"] == [12.0, 30.0, 31.0, 32.0, 33.0, 34.0]
    assert s["ic_timing_error_s"] == pytest.approx(0.1)
    assert s["ic_timing_offset_s"] == pytest.approx(0.1)  # all four matched steps 0.1 s late
    assert s["step_count_error"] == pytest.approx(5 / 10)
    assert s["reference_bouts_found"] == 1
    assert s["reported_steps_error_mean"] == pytest.approx((6 - 5) / 5)  # the bout's own count, its 6 steps
    assert s["cadence_error_mean"] == pytest.approx(0.0)
    assert s["bouts"][0]["walk_time_error_s"] == pytest.approx(5.9 - 4.0)
