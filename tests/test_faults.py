"""The loop under sensor faults, through the real driver and the emulated chip."""

import pytest

from device.events import Cue
from device.runner import run_simulation
from device.settings import DeviceSettings
from sim.chip_path import FaultPlan
from tests.sim_runs import simulated

RESETS_AT_S = (600.0, 1200.0)
UNPLUG = (900.0, 10.0)


@pytest.fixture(scope="module")
def faulty_long_walk():
    chips = []
    run = run_simulation(
        DeviceSettings(),
        scenario="long-walk",
        seed=0,
        via_chip=True,
        faults=FaultPlan(nack_probability=0.01, chip_resets_at_s=RESETS_AT_S, unplugs=(UNPLUG,), seed=7),
        on_loop=lambda loop: chips.append(loop.imu.chip),
    )
    return run, chips[0]


def test_thirty_minutes_with_faults_no_crash_and_walk_time_within_2_percent(faulty_long_walk):
    run, _ = faulty_long_walk
    truth = run.walk.truth
    assert run.loop.stats.read_errors > 100  # ~1 % of 180 000 reads, plus the outages
    assert abs(run.summary.walk_s - truth.walk_s) <= 0.02 * truth.walk_s, (run.summary.walk_s, truth.walk_s)
    assert abs(run.summary.steps - truth.steps) <= 0.02 * truth.steps


def test_fault_cue_for_the_unplug_and_not_for_single_nacks(faulty_long_walk):
    run, _ = faulty_long_walk
    faults = [t for t, kind, _ in run.summary.cues if kind == Cue.FAULT]
    at_s, duration_s = UNPLUG
    grace_s = DeviceSettings().imu.fault_grace_s
    assert any(at_s + grace_s - 0.1 <= t <= at_s + grace_s + 1.0 for t in faults), faults
    # every fault cue belongs to the unplug or a chip reset, none to the scattered 1 % NACKs
    outages = [UNPLUG[0], *RESETS_AT_S]
    assert all(any(o <= t <= o + duration_s + 5 for o in outages) for t in faults), faults


def test_calibration_restored_after_each_reset(faulty_long_walk):
    run, chip = faulty_long_walk
    assert chip.resets >= 3  # two resets and the power cycle of the unplug
    assert run.loop.stats.resets >= 3 and run.loop.stats.faults >= 3
    assert chip.offsets_restored
    assert run.loop.sensor_ok
    assert run.backend.imu.imu.calibration_offsets is not None


def test_walk_is_neither_lost_nor_counted_twice_across_the_outages(faulty_long_walk):
    """The wearer walked on through the unplug and the resets: one bout, its full length."""
    run, _ = faulty_long_walk
    assert len(run.summary.bouts) == 1
    assert abs(run.summary.walk_s - run.walk.truth.walk_s) <= 2.0


@pytest.mark.parametrize("scenario", ["full-session", "leaning-walk"])
def test_chip_path_gives_the_same_detections_as_the_direct_path(scenario):
    direct = simulated(scenario, 0)
    chip = simulated(scenario, 0, via_chip=True)
    assert abs(chip.summary.steps - direct.summary.steps) <= 0.01 * direct.summary.steps
    direct_cues = [(t, k) for t, k, _ in direct.summary.cues if k != Cue.READY]
    chip_cues = [(t, k) for t, k, _ in chip.summary.cues if k != Cue.READY]
    assert [k for _, k in chip_cues] == [k for _, k in direct_cues]
    assert all(abs(a - b) <= 0.1 for (a, _), (b, _) in zip(chip_cues, direct_cues))
