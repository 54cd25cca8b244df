"""The simulated belt through the real driver: walker -> emulated BNO055 -> emulated I2C bus
-> Adafruit driver + our Bno055Imu, with optional fault injection."""

from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from walkcoach.hal.bno055 import Bno055Imu
from walkcoach.hal.errors import ConfigError, EndOfStream, ImuError
from walkcoach.hal.mount import Mount
from walkcoach.hal.types import Clock
from walkcoach.sim.bno055_chip import DriverSleepPatch, EmulatedBno055, WalkSignal, patch_driver_sleep
from walkcoach.sim.i2c_bus import EmulatedI2CBus
from walkcoach.sim.walker import SimulatedWalk

log = logging.getLogger("walkcoach.sim")


@dataclass(frozen=True)
class FaultPlan:
    """Faults to inject on the emulated bus and chip, by virtual time (``walkcoach run --faults``)."""

    nack_probability: float = 0.0  # per transaction, once the first set-up is done
    chip_resets_at_s: tuple[float, ...] = ()
    unplugs: tuple[tuple[float, float], ...] = ()  # (at_s, duration_s); at 0: no sensor at boot
    seed: int = 0
    setup_nack_probability: float = 0.0  # per transaction during the first set-up
    frozen: tuple[tuple[float, float], ...] = ()  # (at_s, duration_s): the same data bytes every read
    timeout_probability: float = 0.0  # per transaction: ETIMEDOUT after timeout_duration_s
    timeout_duration_s: float = 0.0
    timeout_window_s: tuple[float, float] = (0.0, math.inf)  # when the timeouts happen
    corrupt_probability: float = 0.0  # per reading transaction: random bytes


    def to_json(self) -> dict:
        def plain(value):
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return None if value == math.inf else value  # JSON has no infinity

        return {key: plain(value) for key, value in asdict(self).items()}


FAULT_FILE_KEYS = {
    "seed": "integer: the bus's random seed",
    "nack_rate": "0..1: NACK probability per transaction once the sensor is set up",
    "setup_nack_rate": "0..1: NACK probability per transaction during the first set-up",
    "resets_s": "[t, ...]: chip resets at these seconds",
    "unplugs": "[[t, duration_s], ...]: cable pulled (t = 0: no sensor at boot)",
    "frozen": "[[t, duration_s], ...]: the chip repeats the same data bytes",
    "timeouts": "{rate = 0..1, duration_s = s, from_s = t, until_s = t}: transactions that stall, then fail with ETIMEDOUT",
    "corrupt_rate": "0..1: reads that return random bytes",
}


def load_fault_plan(path: Path) -> FaultPlan:
    """A faults file (TOML, keys in ``FAULT_FILE_KEYS``) as a FaultPlan; ConfigError (one line) if malformed."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the faults file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return fault_plan_from_dict(data, where=str(path))


def fault_plan_from_dict(data: dict, *, where: str = "faults") -> FaultPlan:
    def fail(key: str, why: str):
        raise ConfigError(f"{where}: {key}: {why} (expected {FAULT_FILE_KEYS.get(key.split('.')[0], '')})")

    def number(key: str, value, lo: float = 0.0, hi: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            fail(key, f"{value!r} is not a number in {lo:g}..{hi:g}")
        return float(value)

    def windows(key: str, value) -> tuple[tuple[float, float], ...]:
        if not isinstance(value, list):
            fail(key, f"{value!r} is not a list")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, list) or len(item) != 2:
                fail(f"{key}[{i}]", f"{item!r} is not [t, duration_s]")
            out.append((number(f"{key}[{i}]", item[0]), number(f"{key}[{i}]", item[1])))
        return tuple(out)

    unknown = sorted(set(data) - set(FAULT_FILE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(FAULT_FILE_KEYS)})")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        fail("seed", f"{seed!r} is not an integer")
    resets = data.get("resets_s", [])
    if not isinstance(resets, list):
        fail("resets_s", f"{resets!r} is not a list")
    timeouts = data.get("timeouts", {})
    if not isinstance(timeouts, dict) or set(timeouts) - {"rate", "duration_s", "from_s", "until_s"}:
        fail("timeouts", f"{timeouts!r} is not a table of rate, duration_s, from_s, until_s")
    return FaultPlan(
        nack_probability=number("nack_rate", data.get("nack_rate", 0.0), 0.0, 1.0),
        chip_resets_at_s=tuple(number(f"resets_s[{i}]", t) for i, t in enumerate(resets)),
        unplugs=windows("unplugs", data.get("unplugs", [])),
        seed=seed,
        setup_nack_probability=number("setup_nack_rate", data.get("setup_nack_rate", 0.0), 0.0, 1.0),
        frozen=windows("frozen", data.get("frozen", [])),
        timeout_probability=number("timeouts.rate", timeouts.get("rate", 0.0), 0.0, 1.0),
        timeout_duration_s=number("timeouts.duration_s", timeouts.get("duration_s", 0.0), 0.0, 60.0),
        timeout_window_s=(
            number("timeouts.from_s", timeouts.get("from_s", 0.0)),
            number("timeouts.until_s", timeouts.get("until_s", math.inf)),
        ),
        corrupt_probability=number("corrupt_rate", data.get("corrupt_rate", 0.0), 0.0, 1.0),
    )


@dataclass
class ChipImu:
    """Bno055Imu over the emulated chip; closing it also restores the driver's real sleep."""

    imu: Bno055Imu
    bus: EmulatedI2CBus
    chip: EmulatedBno055
    _sleep_patch: DriverSleepPatch | None = field(repr=False, default=None)
    clock: Clock | None = None
    end_s: float = math.inf  # the simulated walk's end: the run ends there, sensor or not

    def read(self):
        if self.clock is not None and self.clock.monotonic() >= self.end_s:
            raise EndOfStream("simulated walk ended (no sensor)")
        return self.imu.read()

    def reset(self) -> None:
        self.imu.reset()

    def fault_figures(self) -> dict:
        """The driver's and the chip's side of `walkcoach run --faults --json`."""
        return {
            "setup_attempts": self.imu.setup_attempts,
            "setup_retries": self.imu.setup_retries,
            "chip_resets": self.chip.resets,
            "bus_errors": self.bus.stats.errors,
            "offsets_restored": self.chip.offsets_restored,
        }

    def close(self) -> None:
        self.imu.close()
        if self._sleep_patch is not None:
            self._sleep_patch.restore()
            self._sleep_patch = None


def open_chip_imu(
    walk: SimulatedWalk,
    clock,
    *,
    mount: Mount,
    state_dir: Path | None = None,
    fusion_mode: str = "IMUPLUS",
    faults: FaultPlan | None = None,
):
    """Returns (imu, bus). The driver's own sleeps advance ``clock`` while the sim runs."""
    faults = faults or FaultPlan()
    bus = EmulatedI2CBus(clock=clock, seed=faults.seed, timeout_duration_s=faults.timeout_duration_s)
    chip = EmulatedBno055(clock=clock, source=WalkSignal(walk))
    bus.attach(chip)
    for at_s in faults.chip_resets_at_s:
        bus.schedule_reset(at_s=at_s)
    for at_s, duration_s in faults.unplugs:
        bus.schedule_unplug(at_s=at_s, duration_s=duration_s)
    for at_s, duration_s in faults.frozen:
        chip.freeze(from_s=at_s, until_s=at_s + duration_s)
    bus.set_nack_probability(faults.setup_nack_probability)
    sleep_patch = patch_driver_sleep(clock)
    try:
        imu = Bno055Imu(
            i2c=bus, clock=clock, mount=mount, fusion_mode=fusion_mode, state_dir=state_dir, set_up_now=False
        )
        try:
            imu.reset()
        except ImuError as exc:  # as on the Pi: the loop's fault handling cues it and keeps trying
            log.warning("emulated BNO055 not ready yet: %s", exc)
    except BaseException:
        sleep_patch.restore()
        raise
    bus.set_nack_probability(faults.nack_probability)
    bus.set_timeout_probability(
        faults.timeout_probability, from_s=faults.timeout_window_s[0], until_s=faults.timeout_window_s[1]
    )
    bus.set_corrupt_probability(faults.corrupt_probability)
    chip_imu = ChipImu(imu=imu, bus=bus, chip=chip, _sleep_patch=sleep_patch, clock=clock, end_s=walk.duration_s)
    return chip_imu, bus
