"""Recording and replay: strict reading, resampling and gaps, live == replay, foreign CSVs with unknown axes."""

import json
import math

import numpy as np
import pytest

from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.offline.replay import ReplayImu, read_recording, replay, replay_json
from walkcoach.device.shell.recording import MAGIC, RecordingButton, RecordingError, RecordingImu, RecordingWriter
from walkcoach.hal.clock import VirtualClock
from walkcoach.hal.errors import EndOfStream, WalkcoachError
from walkcoach.hal.types import ImuSample

G = 9.80665


def csv_text(rows=100, rate_hz=100.0, header="t,ax,ay,az", extra=None):
    """A valid plain CSV: standing still, gravity along +z."""
    lines = [header]
    n_cols = len(header.split(","))
    for k in range(rows):
        values = [f"{k / rate_hz:.4f}", "0.01", "-0.02", f"{G:.4f}"] + ["0.0"] * (n_cols - 4)
        lines.append(",".join(values))
    if extra:
        extra(lines)
    return "\n".join(lines) + "\n"


def replace_line(number, text):
    def edit(lines):
        lines[number - 1] = text
    return edit


def write(tmp_path, text, name="rec.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


BAD_FILES = [
    ("empty", "", None, "empty file"),
    ("blank lines only", "\n\n  \n", None, "empty file"),
    ("header only", "t,ax,ay,az\n", 1, "no samples after the header"),
    ("comments only", "# exported by something\n# nothing else\n", 2, "no header line, only comments"),
    ("missing az", csv_text(header="t,ax,ay").replace(f",{G:.4f}", ""), 1, "missing column(s) az"),
    ("no time", "x,ax,ay,az\n" + csv_text().split("\n", 1)[1], 1, "missing column(s) time (t)"),
    ("same quantity twice", csv_text(header="t,ax,ay,az,acc_x"), 1, "columns 'ax' and 'acc_x' are the same quantity"),
    ("two of three gyro axes", csv_text(header="t,ax,ay,az,gx,gy"), 1, "all three columns gx, gy, gz or none"),
    ("text in a number", csv_text(extra=replace_line(6, "0.0400,0.01,abc,9.8")), 6, "column 'ay' 'abc' is not a number"),
    ("empty field", csv_text(extra=replace_line(7, "0.0500,,0.0,9.8")), 7, "column 'ax' is empty"),
    ("too few fields", csv_text(extra=replace_line(9, "0.0700,0.01,9.8")), 9, "3 field(s), the header has 4"),
    ("NaN", csv_text(extra=replace_line(12, "0.1000,0.01,NaN,9.8")), 12, "column 'ay' is nan, not a finite number"),
    ("infinity", csv_text(extra=replace_line(13, "0.1100,inf,0.0,9.8")), 13, "column 'ax' is inf"),
    ("time backwards", csv_text(extra=replace_line(21, "0.1500,0.01,0.0,9.8")), 21, "time goes backwards: 0.15 s after 0.18 s"),
    ("time repeats", csv_text(extra=replace_line(31, "0.2800,0.01,0.0,9.8")), 31, "time 0.28 s repeats the previous sample's"),
    ("rate too low", csv_text(rate_hz=10.0), None, "sample rate 10 Hz (median time step 0.1 s) is outside 25-200 Hz"),
    ("rate too high", csv_text(rate_hz=1000.0), None, "sample rate 1e+03 Hz"),
    ("milliseconds", "t,ax,ay,az\n" + "".join(f"{k * 10},0,0,9.8\n" for k in range(50)), None, "is t in milliseconds?"),
    ("too short", csv_text(rows=3), None, "only 3 sample(s)"),
    ("linear acceleration only", csv_text().replace(f",{G:.4f}", ",0.05"), None, "acceleration must include gravity"),
    ("in g without --units g", csv_text().replace(f",{G:.4f}", ",1.0"), None, "it looks like g, use --units g"),
    ("gyro in deg/s", csv_text(header="t,ax,ay,az,gx,gy,gz", extra=replace_line(40, "0.3800,0,0,9.8,120.0,0,0")), None,
     "looks like deg/s"),
    ("binary", b"t,ax,ay,az\n0.0,0,0,9.8\n\xff\xfe\x00garbage\n", 3, "not text: byte 0xff at column 1"),
    ("v1 without its column header", MAGIC + " rate_hz=100\n", 1, "no column header after the first line"),
    ("v1 wrong columns", MAGIC + " rate_hz=100\nt,ax,ay,az\n", 2, "expected the column header t,gx,gy,gz,ax,ay,az"),
    ("v1 without rate", MAGIC + " frame=body\nt,gx,gy,gz,ax,ay,az\n", 1, "the header has no rate_hz"),
    ("v1 bad fact", MAGIC + " rate_hz=100 oops\nt,gx,gy,gz,ax,ay,az\n", 1, "header fact 'oops' is not key=value"),
    ("v1 bad button mark",
     MAGIC + " rate_hz=100\nt,gx,gy,gz,ax,ay,az\n" + "".join(f"{k / 100:.4f},0,0,9.8,0,0,0\n" for k in range(20))
     + "# button t=0.1 pressed=yes\n", 23, "malformed button mark"),
]


@pytest.mark.parametrize("name, content, line, reason", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_names_the_line_and_what_is_wrong(tmp_path, name, content, line, reason):
    path = write(tmp_path, content)
    with pytest.raises(RecordingError) as caught:
        read_recording(path)
    error = caught.value
    assert isinstance(error, WalkcoachError) and isinstance(error, ValueError)
    assert error.line == line, str(error)
    assert reason in error.reason, str(error)
    assert str(error).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert "\n" not in str(error)


def test_a_missing_file_and_a_directory_are_errors_too(tmp_path):
    with pytest.raises(RecordingError, match="cannot read: No such file"):
        read_recording(tmp_path / "nope.csv")
    with pytest.raises(RecordingError, match="is a directory"):
        read_recording(tmp_path)


def test_headers_are_matched_by_name_case_insensitively_with_other_delimiters(tmp_path):
    text = "# from a phone app\nTimestamp;Acc_X;ACC_Y;acc_z;Mag_X\n" + "".join(
        f"{k / 50:.3f};0.0;0.0;{G};12\n" for k in range(200)
    )
    rec = read_recording(write(tmp_path, text))
    assert rec.kind == "csv" and rec.source_rate_hz == pytest.approx(50.0)
    assert any("ignoring column(s) Mag_X" in w for w in rec.warnings)


def test_plain_csv_is_resampled_to_the_loop_rate_by_linear_interpolation(tmp_path):
    rate_hz, n = 40.0, 400
    t = np.arange(n) / rate_hz
    ramp = 0.5 * t  # a linear signal: interpolation is exact
    text = "t,ax,ay,az\n" + "".join(f"{t[k]:.4f},{ramp[k]:.6f},0.0,{G:.6f}\n" for k in range(n))
    rec = read_recording(write(tmp_path, text), rate_hz=100.0)
    assert rec.rate_hz == 100.0 and rec.source_rate_hz == pytest.approx(40.0)
    assert np.allclose(np.diff(rec.t_s), 0.01)
    assert rec.t_s[0] == 0.0 and t[-1] - 0.01 < rec.t_s[-1] <= t[-1]
    assert len(rec.t_s) == int(math.floor(t[-1] * 100)) + 1
    total = rec.gravity_ms2 + rec.linear_acc_ms2  # rotations keep the total's length
    assert np.linalg.norm(total, axis=1) == pytest.approx(np.hypot(0.5 * rec.t_s, G), abs=1e-4)
    assert rec.frame is not None and rec.frame.gravity_method.startswith("0.4 Hz")


@pytest.mark.parametrize("source_hz, loop_hz, replayed_hz", [
    (50.0, 100.0, 50.0),  # at its own rate: interpolating up adds samples, not information
    (62.5, 100.0, 62.5),
    (100.0, 100.0, 100.0),
    (40.0, 100.0, 100.0),  # slower than the coach is checked at: up to the loop rate
    (200.0, 100.0, 100.0),  # faster than the loop: down to it
    (100.0, 50.0, 50.0),
])
def test_a_plain_csv_replays_at_its_own_rate_from_50_hz_up_to_the_loop_rate(tmp_path, source_hz, loop_hz, replayed_hz):
    rec = read_recording(write(tmp_path, csv_text(rows=600, rate_hz=source_hz)), default_rate_hz=loop_hz)
    assert rec.source_rate_hz == pytest.approx(source_hz, rel=1e-3)
    assert rec.rate_hz == replayed_hz and np.allclose(np.diff(rec.t_s), 1.0 / replayed_hz)
    assert read_recording(write(tmp_path, csv_text(rows=600, rate_hz=source_hz)), rate_hz=80.0).rate_hz == 80.0  # --rate wins


def test_a_short_gap_is_bridged_and_a_long_one_left_as_a_hole(tmp_path):
    rate_hz = 50.0
    t = list(np.arange(0, 10, 1 / rate_hz))
    t = [x for x in t if not (4.0 < x < 4.5)]  # 0.5 s gap: bridged
    t = [x for x in t if not (7.0 < x < 9.0)]  # 2 s gap: a hole
    text = "t,ax,ay,az\n" + "".join(f"{x:.4f},0.0,0.0,{G}\n" for x in t)
    rec = read_recording(write(tmp_path, text), rate_hz=100.0)  # a 50 Hz file replays at 50 Hz unless asked
    after_short = t.index(next(x for x in t if x >= 4.499))
    after_long = t.index(next(x for x in t if x >= 8.999))
    short_s, long_s = t[after_short] - t[after_short - 1], t[after_long] - t[after_long - 1]
    assert f"line {after_short + 2}: {short_s:.2f} s gap bridged by interpolation" in rec.warnings
    assert f"line {after_long + 2}: {long_s:.2f} s without samples, left as a hole" in rec.warnings
    steps = np.diff(rec.t_s)
    assert steps.max() == pytest.approx(long_s, abs=0.011)  # only the hole remains
    assert np.sum(steps > 0.011) == 1
    assert ((rec.t_s > 4.0) & (rec.t_s < 4.5)).sum() == 49  # the bridged gap is filled on the 100 Hz grid


def test_a_recording_cut_off_mid_line_loses_only_that_line(tmp_path):
    text = MAGIC + " rate_hz=100\nt,gx,gy,gz,ax,ay,az\n" + "".join(
        f"{k / 100:.4f},0.0000,0.0000,9.8066,0.0000,0.0000,0.0100\n" for k in range(50)
    ) + "0.5000,0.0000,0.00"
    rec = read_recording(write(tmp_path, text))
    assert len(rec.t_s) == 50
    assert rec.warnings == ["line 53: the last line is incomplete (recording cut off) and was dropped"]


def test_writer_streams_flushes_about_once_a_second_and_closes_cleanly(tmp_path):
    path = tmp_path / "live.csv"
    writer = RecordingWriter(path, rate_hz=100.0, meta={"cap_s": 600, "scenario": "upright walk"})
    first = path.read_text().splitlines()
    assert first[0].startswith(MAGIC + " rate_hz=100 frame=body units=ms2 started=")
    assert "cap_s=600 scenario=upright_walk" in first[0] and first[1] == "t,gx,gy,gz,ax,ay,az"
    for k in range(250):
        writer.write(ImuSample(k / 100, (0.1, -0.2, 9.8), (0.01234567, 0.0, -0.5), (0.0, 0.0, 0.0), 3))
        if k == 150:
            on_disk = path.read_text().splitlines()
    assert 95 <= len(on_disk) - 2 <= 151  # flushed within about a second of sample time
    assert on_disk[2] == "0.0,0.1000,-0.2000,9.8000,0.0123,0.0000,-0.5000"
    writer.close()
    writer.close()
    assert len(path.read_text().splitlines()) == 252
    writer.write(ImuSample(3.0, (0.0, 0.0, 9.8), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 3))  # after close: ignored
    assert not writer.healthy


def test_an_unwritable_recording_is_an_error_before_the_loop_starts(tmp_path):
    with pytest.raises(RecordingError, match="cannot write the recording"):
        RecordingWriter(tmp_path / "no" / "such" / "dir.csv", rate_hz=100.0)


def test_replay_imu_ends_the_stream_and_moves_the_clock():
    from walkcoach.device.offline.replay import Recording

    t = np.array([5.0, 5.01, 5.02, 9.0])
    rec = Recording("x", "walkcoach-v1", 100.0, 100.0, t, np.tile([0, 0, G], (4, 1)), np.zeros((4, 3)))
    clock = VirtualClock(0.0)
    imu = ReplayImu(rec, clock, t0_s=5.0)
    assert [imu.read().t_s for _ in range(3)] == pytest.approx([0.0, 0.01, 0.02])
    assert imu.read().t_s == pytest.approx(4.0) and clock.monotonic() == pytest.approx(4.0)
    with pytest.raises(EndOfStream):
        imu.read()


# -- live run == replay -----------------------------------------------------------------------
def live_run(tmp_path, scenario="full-session", seed=2, presses_s=(100.0, 130.0)):
    """The loop over the simulated belt, recording every sample and the button; pain presses at ``presses_s``."""
    from walkcoach import hal
    from walkcoach.device.core.coach import Coach
    from walkcoach.device.core.feedback import CuePlayer
    from walkcoach.device.core.summary import RunSummary
    from walkcoach.device.shell.loop import CoachLoop

    settings = DeviceSettings()
    backend = hal.open_backend("sim", scenario=scenario, seed=seed, rate_hz=100.0)
    path = tmp_path / "live.wcrec"
    writer = RecordingWriter(path, rate_hz=100.0, meta={"cap_s": 600.0, "scenario": scenario})
    coach = Coach(settings.coach, rate_hz=100.0, cap_s=600.0)
    summary = RunSummary(hold_s=settings.coach.lean.hold_s)
    pin = backend.pin_factory.pin("GPIO22")
    schedule = sorted([(t, "press") for t in presses_s] + [(t + 0.3, "release") for t in presses_s])

    def on_tick(now_s):
        while schedule and now_s >= schedule[0][0]:
            _, what = schedule.pop(0)
            pin.drive_low() if what == "press" else pin.drive_high()

    loop = CoachLoop(
        imu=RecordingImu(backend.imu, writer), coach=coach, player=CuePlayer(backend.outputs), clock=backend.clock,
        rate_hz=100.0, sinks=[summary], button=RecordingButton(backend.button, writer), on_tick=on_tick,
    )
    try:
        loop.run()
    finally:
        writer.close()
        backend.close()
    return path, summary, backend.walk


def test_replaying_a_recording_gives_the_live_runs_bouts_steps_and_cues(tmp_path):
    path, live, walk = live_run(tmp_path)
    rec = read_recording(path)
    assert rec.kind == "walkcoach-v1" and len(rec.button) == 4 and rec.warnings == []
    result = replay(rec, DeviceSettings())
    again = result.summary
    assert result.cap_s == 600.0  # from the recording's header
    assert again.steps == live.steps and len(again.bouts) == len(live.bouts)
    for a, b in zip(again.bouts, live.bouts, strict=True):
        assert a.steps == b.steps
        assert a.start_s == pytest.approx(b.start_s, abs=1e-9) and a.end_s == pytest.approx(b.end_s, abs=1e-9)
        assert a.cadence_spm == pytest.approx(b.cadence_spm, abs=1e-2)
    assert [(kind, why) for _, kind, why in again.cues] == [(kind, why) for _, kind, why in live.cues]
    assert [t for t, _, _ in again.cues] == pytest.approx([t for t, _, _ in live.cues], abs=1e-9)
    kinds = [kind for _, kind, _ in live.cues]
    assert kinds.count("pain_ack") == 2 and "stop" in kinds  # the button presses were replayed
    assert len(again.lean_episodes) == len(live.lean_episodes)
    assert abs(live.steps - walk.truth.steps) <= 0.03 * walk.truth.steps


def test_replay_json_has_the_sim_keys_without_truth(tmp_path):
    path, live, _ = live_run(tmp_path, scenario="bend-and-go", seed=0, presses_s=())
    rec = read_recording(path)
    data = replay_json(rec, replay(rec, DeviceSettings()))
    sim_keys = set(live.to_json(1.0)) | {"scenario", "seed", "cap_s", "speed_x"}
    assert sim_keys <= set(data) and "truth" not in data
    assert data["steps"] == live.steps
    json.dumps(data)


def test_a_v1_recording_replays_at_another_rate(tmp_path):
    path, live, _ = live_run(tmp_path, scenario="upright-walk", seed=1, presses_s=())
    rec = read_recording(path, rate_hz=50.0)
    assert rec.rate_hz == 50.0 and np.allclose(np.diff(rec.t_s), 0.02)
    summary = replay(rec, DeviceSettings()).summary
    assert abs(summary.steps - live.steps) <= 0.01 * live.steps


# -- a foreign sensor: plain CSV, 50 Hz, in g, axes unknown -----------------------------------------
def random_rotation(rng):
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def foreign_csv(tmp_path, scenario, seed, *, gyro, rate_hz=50.0):
    from walkcoach.sim import walker
    walk = walker.simulate(scenario, seed, rate_hz=rate_hz)
    rotation = random_rotation(np.random.default_rng(100 + seed))  # sensor axes -> unknown axes
    total_g = (np.asarray(walk.gravity_ms2) + np.asarray(walk.linear_acc_ms2)) @ rotation.T / G
    gyro_rads = np.asarray(walk.gyro_rads) @ rotation.T
    header = "time,acc_x,acc_y,acc_z" + (",gyr_x,gyr_y,gyr_z" if gyro else "")
    lines = [header]
    for k, t in enumerate(walk.t_s):
        values = [f"{t:.3f}"] + [f"{v:.5f}" for v in total_g[k]] + ([f"{v:.5f}" for v in gyro_rads[k]] if gyro else [])
        lines.append(",".join(values))
    path = tmp_path / f"{scenario}-{seed}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, walk


@pytest.mark.parametrize("scenario, seed, gyro", [
    ("upright-walk", 0, False),
    ("lbp-walk", 1, False),
    ("slow-walk", 2, True),
    ("leaning-walk", 0, True),
    ("full-session", 1, False),
])
def test_a_plain_csv_of_a_simulated_walk_finds_the_steps_and_the_leans(tmp_path, scenario, seed, gyro):
    path, walk = foreign_csv(tmp_path, scenario, seed, gyro=gyro)
    truth = walk.truth
    summaries = {}
    for asked_hz, replayed_hz in ((None, 50.0), (100.0, 100.0)):  # at the file's own rate, and interpolated to 100 Hz
        rec = read_recording(path, units="g", rate_hz=asked_hz)
        assert rec.rate_hz == replayed_hz and rec.source_rate_hz == pytest.approx(50.0)
        assert rec.frame.forward_confidence > 0.3 and rec.warnings == []
        summary = summaries[replayed_hz] = replay(rec, DeviceSettings(), cap_s=3600.0).summary
        assert abs(summary.steps - truth.steps) <= 0.03 * truth.steps
        assert summary.walk_s == pytest.approx(truth.walk_s, rel=0.03)
        assert len(summary.lean_episodes) == len(truth.lean_episodes)
        for found, true in zip(summary.lean_episodes, truth.lean_episodes, strict=True):
            assert found.max_deg == pytest.approx(true.max_deg, abs=3.0)
        # the estimated frame is the body's: up is up and forward is forward, within the belt's few degrees
        body_up = np.mean(rec.gravity_ms2[: int(2 * rec.rate_hz)], axis=0)
        assert math.degrees(math.acos(body_up[2] / np.linalg.norm(body_up))) < 2.0
    # the coach takes the rate it is given: the same bouts at 50 Hz as at 100 Hz
    own, interpolated = summaries[50.0].bouts, summaries[100.0].bouts
    assert len(own) == len(interpolated)
    for a, b in zip(own, interpolated, strict=True):
        assert a.start_s == pytest.approx(b.start_s, abs=0.5) and a.end_s == pytest.approx(b.end_s, abs=0.5)
        assert abs(a.steps - b.steps) <= max(1, 0.02 * b.steps)


def test_first_still_needs_a_still_period_and_auto_skips_a_sensor_lying_on_a_table(tmp_path):
    path, walk = foreign_csv(tmp_path, "upright-walk", 0, gyro=False)
    lines = path.read_text().splitlines()
    table = ["0.000,1.00000,0.00000,0.00000".replace("0.000", f"{k / 50:.3f}", 1) for k in range(300)]  # 6 s flat
    shifted = [lines[0]] + table + [
        f"{float(line.split(',', 1)[0]) + 7.0:.3f}," + line.split(",", 1)[1] for line in lines[1:]  # then worn
    ]
    path.write_text("\n".join(shifted) + "\n")
    rec = read_recording(path, units="g")
    assert rec.frame.upright_method.startswith("first still period at 7.")  # not the table at 0 s
    assert rec.warnings == ["line 302: 1.02 s without samples, left as a hole"]  # putting the belt on
    first_still = read_recording(path, units="g", upright="first-still")
    assert first_still.frame.upright_method == "first still period at 0.0 s"
    walking = path.with_name("walking-only.csv")
    walking.write_text("\n".join([lines[0]] + [line for line in lines[1:] if 20.0 <= float(line.split(",", 1)[0]) <= 200.0]) + "\n")
    with pytest.raises(RecordingError, match="no still period of 2 s"):
        read_recording(walking, units="g", upright="first-still")
    assert read_recording(walking, units="g").frame.upright_method == "median gravity direction while walking"


# -- streaming: long files in bounded memory ------------------------------------------------------
@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunk, check-prefix, filter-block and frame-window sizes small enough that a few minutes are many chunks."""
    import walkcoach.device.offline.recording_csv as recording_csv
    import walkcoach.device.offline.recording_reader as reader_module

    monkeypatch.setattr(recording_csv, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(reader_module, "PREFIX_ROWS", 500)
    monkeypatch.setattr(reader_module, "FILTER_BLOCK", 3000)
    monkeypatch.setattr(reader_module, "FRAME_WINDOW_S", 240.0)


@pytest.mark.parametrize("gyro", [False, True])
def test_a_streamed_replay_matches_the_whole_file_read_at_once(tmp_path, monkeypatch, gyro):
    path, walk = foreign_csv(tmp_path, "lbp-walk", 3, gyro=gyro)
    whole = read_recording(path, units="g")
    assert not whole.is_streamed
    expected = replay(whole, DeviceSettings(), cap_s=3600.0).summary
    import walkcoach.device.offline.recording_csv as recording_csv
    import walkcoach.device.offline.recording_reader as reader_module

    monkeypatch.setattr(recording_csv, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(reader_module, "PREFIX_ROWS", 500)
    monkeypatch.setattr(reader_module, "FILTER_BLOCK", 3000)
    monkeypatch.setattr(reader_module, "FRAME_WINDOW_S", 1e9)  # the frame from the whole file, as above
    streamed = read_recording(path, units="g")
    assert streamed.is_streamed is False  # a frame window longer than the file reads it whole...
    assert np.array_equal(streamed.t_s, whole.t_s)  # ...through the chunked reader, resampler and filter blocks
    assert np.allclose(streamed.gravity_ms2, whole.gravity_ms2, atol=1e-6)
    monkeypatch.setattr(reader_module, "FRAME_WINDOW_S", 240.0)
    windowed = read_recording(path, units="g")
    assert windowed.is_streamed
    summary = replay(windowed, DeviceSettings(), cap_s=3600.0).summary
    truth = walk.truth
    assert abs(summary.steps - truth.steps) <= 0.03 * truth.steps  # the frame from the first 4 minutes is good enough
    assert [b.steps for b in summary.bouts] == pytest.approx([b.steps for b in expected.bouts], abs=2)
    assert len(summary.lean_episodes) == len(truth.lean_episodes)


def test_a_clock_jump_is_a_hole_not_a_grid_and_the_bout_ends_at_it(tmp_path, tiny_chunks):
    path, walk = foreign_csv(tmp_path, "upright-walk", 0, gyro=False)
    lines = path.read_text().splitlines()
    middle = next(k for k, line in enumerate(lines[1:], start=1) if float(line.split(",", 1)[0]) >= 200.0)
    jump_s = 86400.0  # the recorder's clock jumps a day ahead in the middle of a walk
    jumped = lines[:middle] + [f"{float(line.split(',', 1)[0]) + jump_s:.3f}," + line.split(",", 1)[1] for line in lines[middle:]]
    path.write_text("\n".join(jumped) + "\n")
    rec = read_recording(path, units="g")
    result = replay(rec, DeviceSettings(), cap_s=3600.0)
    assert any(f"line {middle + 1}: " in w and "left as a hole" in w for w in rec.warnings)
    assert result.loop.stats.samples == pytest.approx(walk.duration_s * rec.rate_hz, abs=3)  # no sample inside the day
    bouts = result.summary.bouts
    assert not any(b.start_s < 200.0 < b.end_s - jump_s for b in bouts)  # the walk in progress ended at the jump
    assert any(b.end_s <= 200.1 for b in bouts) and any(b.start_s >= jump_s for b in bouts)
    truth = walk.truth
    assert abs(result.summary.steps - truth.steps) <= 0.05 * truth.steps


@pytest.mark.parametrize("edit, reason", [
    (lambda line: line.replace(",", ",x", 1), "is not a number"),
    (lambda line: "1.000," + line.split(",", 1)[1], "time goes backwards: 1 s after"),  # at a chunk's first row or not
])
def test_a_bad_row_far_into_a_streamed_file_names_its_line(tmp_path, tiny_chunks, edit, reason):
    path, _ = foreign_csv(tmp_path, "upright-walk", 1, gyro=False)
    lines = path.read_text().splitlines()
    lines[20000] = edit(lines[20000])
    path.write_text("\n".join(lines) + "\n")
    rec = read_recording(path, units="g")  # the first minutes are fine
    with pytest.raises(RecordingError) as caught:
        replay(rec, DeviceSettings(), cap_s=3600.0)
    assert caught.value.line == 20001 and reason in caught.value.reason


def test_windows_line_ends_read_like_unix_ones(tmp_path):
    unix = read_recording(write(tmp_path, csv_text(rows=300), "unix.csv"))
    windows = read_recording(write(tmp_path, csv_text(rows=300).replace("\n", "\r\n"), "windows.csv"))
    assert np.array_equal(unix.t_s, windows.t_s) and np.array_equal(unix.linear_acc_ms2, windows.linear_acc_ms2)
    assert windows.warnings == unix.warnings


def test_progress_bar_goes_to_stderr_when_asked(tmp_path, tiny_chunks, capsys):
    path, _ = foreign_csv(tmp_path, "upright-walk", 1, gyro=False)
    rec = read_recording(path, units="g")
    replay(rec, DeviceSettings(), cap_s=3600.0, progress=True)
    captured = capsys.readouterr()
    assert "\rreplay upright-walk-1.csv [" in captured.err and captured.out == ""


def test_the_low_pass_halves_at_its_corner_forward_backward_and_is_fast_at_any_length():
    from walkcoach.device.offline.lowpass import five_smooth_length, zero_phase_lowpass

    assert [five_smooth_length(n) for n in (1, 7, 11, 19349, 1000)] == [1, 8, 12, 19440, 1000]
    rate_hz, corner_hz = 100.0, 2.0
    t = np.arange(19349) / rate_hz  # 11 * 1759: a length numpy's FFT is slow at
    x = np.sin(2 * np.pi * corner_hz * t)
    middle = slice(2000, -2000)
    for passes, gain in ((2, 0.5), (1, 1 / math.sqrt(2))):
        y = zero_phase_lowpass(x, rate_hz, corner_hz, passes=passes)
        assert np.max(np.abs(y[middle])) == pytest.approx(gain, abs=2e-3)
        assert np.allclose(y[middle], gain * x[middle], atol=3e-3)  # zero phase


@pytest.mark.parametrize("n", [97144, 98304, 4099])  # 8 * 12143 and the prime 4099: the kernel path; 2^15 * 3: direct
def test_the_periodic_low_pass_keeps_a_periodic_signal_at_its_gain_at_any_length(n):
    from walkcoach.device.offline.lowpass import zero_phase_lowpass

    rate_hz, corner_hz = 100.0, 1.5
    t = np.arange(n) / rate_hz
    cycles = (round(corner_hz * n / rate_hz), round(0.2 * n / rate_hz), round(6.0 * n / rate_hz))  # whole periods in n
    freqs_hz = [k * rate_hz / n for k in cycles]
    x = np.stack([np.sin(2 * np.pi * f * t + 0.3) for f in freqs_hz], axis=1)  # three columns at three frequencies
    y = zero_phase_lowpass(x, rate_hz, corner_hz, passes=1, edges="periodic")
    for column, f in enumerate(freqs_hz):  # periodic: no edge at all, every sample at the exact gain, no phase
        gain = 1.0 / math.sqrt(1.0 + (f / corner_hz) ** 4)
        assert np.allclose(y[:, column], gain * x[:, column], atol=1e-9)


def test_a_streamed_walkcoach_recording_replays_the_live_run_with_late_button_presses(tmp_path, tiny_chunks):
    path, live, _ = live_run(tmp_path, presses_s=(700.0, 730.0))
    rec = read_recording(path)
    assert rec.is_streamed  # longer than the (shrunk) frame window: the presses are read as the replay gets there
    again = replay(rec, DeviceSettings()).summary
    assert again.steps == live.steps and len(again.bouts) == len(live.bouts)
    assert [(kind, why) for _, kind, why in again.cues] == [(kind, why) for _, kind, why in live.cues]
    assert [t for t, _, _ in again.cues] == pytest.approx([t for t, _, _ in live.cues], abs=1e-9)
    assert [kind for _, kind, _ in again.cues].count("pain_ack") == 2
    assert len(rec.button) == 4 and rec.warnings == []


def test_with_no_walking_in_the_first_window_the_frame_comes_from_a_later_one(tmp_path, tiny_chunks):
    path, walk = foreign_csv(tmp_path, "upright-walk", 0, gyro=False)
    lines = path.read_text().splitlines()
    table_s = 360.0  # six minutes on a table (flat, sensor x up) before the belt is worn: longer than the 4-min window
    table = [f"{k / 50:.3f},1.00000,0.00000,0.00000" for k in range(int(table_s * 50))]
    worn = [f"{float(line.split(',', 1)[0]) + table_s + 1.0:.3f}," + line.split(",", 1)[1] for line in lines[1:]]
    path.write_text("\n".join([lines[0]] + table + worn) + "\n")
    rec = read_recording(path, units="g")
    assert rec.is_streamed and "from the window at 4 min" in rec.frame.forward_method
    assert rec.frame.forward_confidence > 0.3
    summary = replay(rec, DeviceSettings(), cap_s=3600.0).summary
    truth = walk.truth
    assert abs(summary.steps - truth.steps) <= 0.03 * truth.steps
    assert summary.walk_s == pytest.approx(truth.walk_s, rel=0.03)
    assert not any("forward is arbitrary" in w for w in rec.warnings)
