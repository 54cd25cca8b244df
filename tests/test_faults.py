"""The loop under sensor faults, through the real driver and the emulated chip.

The soaks are `walkcoach run --backend sim --faults FILE.toml --json` (run in process
through ``walkcoach.device.cli.cli.main``), held to the simulator's truth. The 30-seed soak is a
documented command (README, "Faults from the command line"); here a few seeds.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from tests.sim_runs import simulated
from walkcoach.device.cli import cli
from walkcoach.device.core.events import Cue
from walkcoach.device.core.feedback import CuePlayer
from walkcoach.device.core.settings import DeviceSettings
from walkcoach.device.shell.loop import CoachLoop
from walkcoach.device.shell.runner import make_coach, run_simulation
from walkcoach.hal.errors import SensorPaused
from walkcoach.hal.mount import Mount
from walkcoach.sim.chip_path import FaultPlan, load_fault_plan, open_chip_imu
from walkcoach.sim.clock import VirtualClock
from walkcoach.sim.walker import simulate

SOAK = "nack_rate = 0.01\nresets_s = [600, 1200]\nunplugs = [[900, 10]]\n"
OUTAGES_AT_S = (600.0, 900.0, 1200.0)
GRACE_S = DeviceSettings().imu.fault_grace_s


def run_cli(tmp_path, capsys, faults_text: str, *, scenario: str = "long-walk", name: str = "faults.toml") -> dict:
    path = tmp_path / name
    path.write_text(faults_text)
    assert cli.main(["run", "--backend", "sim", "--scenario", scenario, "--faults", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def fault_cue_times(result: dict) -> list[float]:
    return [cue["t_s"] for cue in result["cues"] if cue["kind"] == Cue.FAULT.value]


@pytest.mark.parametrize("bus_seed", [7, 8, 21])
def test_thirty_minute_soak_walk_time_within_2_percent_and_one_fault_cue_per_outage(tmp_path, capsys, bus_seed):
    result = run_cli(tmp_path, capsys, f"seed = {bus_seed}\n{SOAK}")
    truth = result["truth"]
    faults = result["faults"]
    assert faults["read_errors"] > 100  # ~1 % of 180 000 reads, plus the outages
    assert abs(result["walk_s"] - truth["walk_s"]) <= 0.02 * truth["walk_s"], (result["walk_s"], truth["walk_s"])
    assert abs(result["steps"] - truth["steps"]) <= 0.02 * truth["steps"]
    # the wearer walked on through the unplug and the resets: one bout, not lost, not counted twice
    assert len(result["bouts"]) == 1
    cues = fault_cue_times(result)
    assert faults["outages"] == faults["fault_cues"] == len(OUTAGES_AT_S) == len(cues), (faults, cues)
    for at_s, cue_s in zip(OUTAGES_AT_S, cues, strict=True):
        assert at_s + GRACE_S - 0.1 <= cue_s <= at_s + GRACE_S + 1.0, cues
    assert faults["sensor_ok_at_end"] and faults["offsets_restored"]
    assert faults["chip_resets"] >= 3  # two resets and the power cycle of the unplug
    assert result["fault_plan"]["chip_resets_at_s"] == [600, 1200]


def test_a_long_outage_repeats_the_fault_cue_at_the_configured_interval(tmp_path, capsys):
    result = run_cli(tmp_path, capsys, "unplugs = [[300, 200]]\n")
    cues = fault_cue_times(result)
    repeat_s = DeviceSettings().loop.fault_cue_repeat_s
    assert result["faults"]["outages"] == 1
    assert cues[0] == pytest.approx(300 + GRACE_S, abs=0.1)
    assert len(cues) == 1 + int((200 - GRACE_S) // repeat_s), cues  # 200 s out: at 2 s, then every 60 s
    assert np.allclose(np.diff(cues), repeat_s, atol=1.0), cues
    assert all(t < 300 + 200 + 1 for t in cues)  # none once the sensor is back
    assert result["faults"]["sensor_ok_at_end"]


def _walk_outside(bouts, truth_walking, t_s, window):
    """(coach, truth) walk time outside ``window`` (start_s, end_s)."""
    lo, hi = window
    coach_s = sum(max(0.0, min(b["end_s"], lo) - b["start_s"]) + max(0.0, b["end_s"] - max(b["start_s"], hi)) for b in bouts)
    dt_s = t_s[1] - t_s[0]
    outside = (t_s < lo) | (t_s >= hi)
    return coach_s, float(np.sum(truth_walking & outside) * dt_s)


@pytest.mark.parametrize(
    ("faults_text", "window"),
    [
        ("seed = 3\nfrozen = [[600, 30]]\n", (600.0, 630.0)),
        ("seed = 3\n[timeouts]\nrate = 0.01\nduration_s = 1.0\nfrom_s = 600\nuntil_s = 630\n", (600.0, 630.0)),
    ],
    ids=["frozen-30s", "timeouts-1s-at-1pct"],
)
def test_frozen_and_stalling_sensors_get_a_fault_cue_within_5_s_and_the_rest_is_counted(tmp_path, faults_text, window):
    path = tmp_path / "faults.toml"
    path.write_text(faults_text)
    run = run_simulation(DeviceSettings(), scenario="long-walk", seed=0, via_chip=True, faults=load_fault_plan(path))
    cues = [t for t, kind, _ in run.summary.cues if kind == Cue.FAULT]
    assert cues and window[0] < cues[0] <= window[0] + 5.0, cues
    assert all(window[0] < t <= window[1] + 5.0 for t in cues), cues  # none outside the fault
    stats = run.loop.stats
    assert stats.resets >= 1  # re-initialised
    assert (stats.frozen_detections if "frozen" in faults_text else stats.slow_reads) >= 1
    walk = run.walk
    bouts = [{"start_s": b.start_s, "end_s": b.end_s} for b in run.summary.bouts]
    coach_s, truth_s = _walk_outside(bouts, walk.truth.walking, walk.t_s, window)
    assert abs(coach_s - truth_s) <= 0.02 * truth_s, (coach_s, truth_s)
    assert run.loop.sensor_ok


def test_a_still_belt_is_never_taken_for_a_frozen_sensor():
    """The emulator's noise (like a real BNO055's) moves the low bits of every sample: no false frozen faults."""
    for scenario in ("standing", "sitting"):
        run = simulated(scenario, 0, via_chip=True)
        assert run.loop.stats.frozen_detections == 0 and run.loop.stats.outages == 0, scenario
        assert not [c for c in run.summary.cues if c[1] == Cue.FAULT]


def test_the_soak_cli_prints_the_fault_figures_and_a_human_line(tmp_path, capsys):
    path = tmp_path / "f.toml"
    path.write_text("seed = 2\nunplugs = [[60, 5]]\n")
    assert cli.main(["run", "--backend", "sim", "--scenario", "slow-walk", "--faults", str(path)]) == 0
    out = capsys.readouterr().out
    assert "faults: 1 outage(s), 1 fault cue(s)" in out and "sensor ok at the end" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nack_rate = 2\n", "nack_rate: 2 is not a number in 0..1"),
        ("unplugs = [[900]]\n", "unplugs[0]: [900] is not [t, duration_s]"),
        ("resets_s = 600\n", "resets_s: 600 is not a list"),
        ("seed = 'x'\n", "seed: 'x' is not an integer"),
        ("timeouts = {rate = 0.1, every = 3}\n", "timeouts:"),
        ("nack = 0.1\n", "unknown key 'nack'"),
        ("nack_rate = = 0.1\n", "not valid TOML"),
    ],
)
def test_a_malformed_faults_file_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert cli.main(["run", "--backend", "sim", "--scenario", "standing", "--faults", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err and str(path) in captured.err, captured.err
    assert "Traceback" not in captured.err


def test_faults_need_the_sim_backend(tmp_path, capsys):
    path = tmp_path / "f.toml"
    path.write_text("seed = 1\n")
    assert cli.main(["run", "--backend", "pi", "--faults", str(path)]) == 2
    assert "--faults needs --backend sim" in capsys.readouterr().err
    assert cli.main(["run", "--backend", "sim", "--faults", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the faults file" in capsys.readouterr().err


class RecordingOutput:
    """An output that keeps (virtual time, on?) for every change."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.changes: list[tuple[float, bool]] = []
        self.is_active = False

    def on(self) -> None:
        if not self.is_active:
            self.changes.append((self.clock.monotonic(), True))
        self.is_active = True

    def off(self) -> None:
        if self.is_active:
            self.changes.append((self.clock.monotonic(), False))
        self.is_active = False

    def close(self) -> None:
        pass

    def pulses(self) -> list[tuple[float, float]]:
        """(start_s, duration_s) of every on-period."""
        return [(a, b - a) for (a, on), (b, _) in zip(self.changes, self.changes[1:], strict=False) if on]


def test_the_fault_cue_after_a_chip_reset_plays_its_five_short_beeps_not_one_long_buzz():
    settings = DeviceSettings()
    clock = VirtualClock()
    walk = simulate("standing", 0, rate_hz=settings.loop.rate_hz)
    imu, _ = open_chip_imu(walk, clock, mount=Mount(), faults=FaultPlan(chip_resets_at_s=(30.0,)))
    buzzer = RecordingOutput(clock)
    loop = CoachLoop(
        imu=imu, coach=make_coach(settings, dt.date(2026, 1, 5)), player=CuePlayer({"buzzer": buzzer}), clock=clock,
        rate_hz=settings.loop.rate_hz, fault_grace_s=GRACE_S,
    )
    try:
        loop.run(until_s=40.0)
    finally:
        imu.close()
    fault_pulses = [(t, d) for t, d in buzzer.pulses() if t > 30.0]
    on_s, off_s = 0.05, 0.1  # the fault pattern: five of (50 ms on, 100 ms off)
    tick_s = 1 / settings.loop.rate_hz
    assert len(fault_pulses) == 5, buzzer.pulses()
    assert all(abs(d - on_s) <= tick_s + 1e-9 for _, d in fault_pulses), fault_pulses
    starts = [t for t, _ in fault_pulses]
    assert np.allclose(np.diff(starts), on_s + off_s, atol=tick_s + 1e-9), starts
    assert loop.stats.outages == 1 and loop.stats.resets >= 1 and loop.sensor_ok


class PausingImu:
    """The emulated chip's IMU, with no sample on purpose (``SensorPaused``) for ``count`` reads from read ``start``."""

    def __init__(self, imu, start: int, count: int) -> None:
        self.imu, self.start, self.count, self.reads = imu, start, count, 0

    def read(self):
        sample = self.imu.read()
        self.reads += 1
        if self.start < self.reads <= self.start + self.count:
            raise SensorPaused("paused for the test")
        return sample

    def __getattr__(self, name):
        return getattr(self.imu, name)


@pytest.mark.parametrize("pause_s", [0.05, 3.0 * GRACE_S])
def test_a_paused_sensor_is_lost_time_not_a_read_error_until_it_lasts_past_the_grace(pause_s):
    """A sensor busy on purpose for a few ticks (the BNO055's offset capture in CONFIG mode) is no fault:
    no read error, no outage, no fault given as the last one; paused past the fault grace, it is a fault."""
    settings = DeviceSettings()
    clock = VirtualClock()
    walk = simulate("standing", 0, rate_hz=settings.loop.rate_hz)
    chip_imu, _ = open_chip_imu(walk, clock, mount=Mount())
    paused_reads = round(pause_s * settings.loop.rate_hz)
    imu = PausingImu(chip_imu, start=2000, count=paused_reads)
    loop = CoachLoop(imu=imu, coach=make_coach(settings, dt.date(2026, 1, 5)), player=CuePlayer({}), clock=clock,
                     rate_hz=settings.loop.rate_hz, fault_grace_s=GRACE_S)
    try:
        loop.run(until_s=40.0)
    finally:
        chip_imu.close()
    stats = loop.stats
    if pause_s < GRACE_S:
        # (the chip's own offset capture, once the standing wearer's calibration is full, pauses too)
        assert stats.paused_ticks >= paused_reads
        assert (stats.read_errors, stats.outages, loop.last_fault) == (0, 0, "")
    else:
        assert stats.outages == 1 and stats.read_errors > 0
    assert loop.sensor_ok  # and back after it
