"""The "sim" backend: the synthetic walker as the IMU, gpiozero's MockFactory as the pins.

Two IMU paths, one loop:
- direct: walker samples, remapped sensor->body by hal's mount code;
- chip: the real Adafruit driver and our Bno055Imu talking to an emulated BNO055
  on an emulated I2C bus (with optional fault injection).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from walkcoach.hal.errors import EndOfStream
from walkcoach.hal.gpio import close_all, open_button, open_outputs
from walkcoach.hal.mount import Mount
from walkcoach.hal.types import Button, Clock, Imu, ImuSample, VirtualTimeClock
from walkcoach.sim.clock import PacedClock, VirtualClock
from walkcoach.sim.walker import SimulatedWalk, simulate

ZERO3 = (0.0, 0.0, 0.0)
# ImuSample(...) runs the NamedTuple's Python-level __new__; tuple.__new__ builds the same ImuSample in C
# (a third of what a read costs: ~100 000 reads in the default scenario).
_new_tuple = tuple.__new__
CHUNK_SAMPLES = 4096  # samples DirectImu turns into Python floats at a time


class DirectImu:
    """Walker samples at the clock's time, in the body frame through the configured mount."""

    def __init__(self, walk: SimulatedWalk, clock: VirtualTimeClock, mount: Mount) -> None:
        self._clock = clock
        self._rate_hz = walk.rate_hz
        self._n = len(walk.t_s)
        # The body-frame arrays stay numpy; CHUNK_SAMPLES samples at a time become per-axis lists of Python
        # floats (made in C by tolist; floats are not tracked by the garbage collector), and each read builds
        # its two tuples. Converting the whole walk at once made ~600 000 floats (14 MB of fresh pages; on a
        # busy virtual machine their page faults cost up to 80 ms); a chunk reuses the memory of the one
        # before. Tuples built ahead (a chunk's, or all of them) cost more: the collector's passes over them.
        self._gravity_ms2 = mount.remap_array(walk.gravity_ms2)
        self._linear_acc_ms2 = mount.remap_array(walk.linear_acc_ms2)
        self._chunk_start = 0
        self._chunk_len = 0
        self._chunk: tuple[list[float], ...] = ()

    def read(self) -> ImuSample:
        t_s = self._clock.now_s  # the sim's clocks (VirtualClock, PacedClock) keep their time there: no call
        k = int(t_s * self._rate_hz + 0.5) - self._chunk_start
        if not 0 <= k < self._chunk_len:
            k = self._load_chunk(k + self._chunk_start)
        gx, gy, gz, lx, ly, lz = self._chunk
        return _new_tuple(ImuSample, (t_s, (gx[k], gy[k], gz[k]), (lx[k], ly[k], lz[k]), ZERO3, 3))

    def _load_chunk(self, i: int) -> int:
        """Make the chunk holding sample ``i`` current; ``i``'s place in it (EndOfStream past the walk)."""
        if i >= self._n:
            raise EndOfStream("scenario finished")
        i = max(i, 0)  # the clocks start at 0: a time before the first sample reads the first
        start = i - i % CHUNK_SAMPLES
        end = min(start + CHUNK_SAMPLES, self._n)
        self._chunk = ()  # the old chunk's memory is free for the new one
        self._chunk = (*self._gravity_ms2[start:end].T.tolist(), *self._linear_acc_ms2[start:end].T.tolist())
        self._chunk_start, self._chunk_len = start, end - start
        return i - start

    def all_samples(self, t_s: list[float]) -> list[ImuSample]:
        """Every sample of the walk at the times ``t_s`` (the walk's own), built at once (the bench's core timing)."""
        gx, gy, gz = self._gravity_ms2.T.tolist()
        lx, ly, lz = self._linear_acc_ms2.T.tolist()
        return [ImuSample(t, g, a, ZERO3, 3)
                for t, g, a in zip(t_s, zip(gx, gy, gz, strict=True), zip(lx, ly, lz, strict=True), strict=True)]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class MockPinButton:
    """The belt's button on gpiozero's mock pin, read from the pin: the loop polls it ~33 times a simulated
    second (31 000 times in the default scenario), and gpiozero's ``is_pressed`` is six Python calls deep
    (value, _read, the pin's state, the state-to-value mapping) where one attribute read of the pin does."""

    def __init__(self, button) -> None:
        self.button = button
        self.pin = button.pin  # the mock pin, for tests that press it by hand
        self._pressed_state = not button.pull_up  # pulled up: pressed pulls the pin low

    @property
    def is_pressed(self) -> bool:
        return self.pin.state == self._pressed_state

    def close(self) -> None:
        self.button.close()


PRESS_S = 0.2  # a short press ("pain got worse"): well past the debounce, far from the hold


class ScheduledButton:
    """The belt's button pressed by a script: ``presses`` are (start_s, held_s) in the clock's time
    (the scenario's own, ``sim --press``/``--hold``); the real (mock) button still counts too."""

    def __init__(self, button, clock, presses) -> None:
        self.button = button
        self.clock = clock
        self.presses = sorted((float(t), float(held)) for t, held in presses)

    @property
    def is_pressed(self) -> bool:
        now_s = self.clock.monotonic()
        if any(t <= now_s < t + held for t, held in self.presses):
            return True
        return bool(self.button.is_pressed) if self.button is not None else False

    @property
    def pin(self):  # the mock pin, for tests that press it by hand
        return self.button.pin

    def close(self) -> None:
        if self.button is not None:
            self.button.close()


@dataclass
class SimBackend:
    imu: Imu
    outputs: dict
    button: Button | None
    clock: Clock
    walk: SimulatedWalk
    pin_factory: object
    bus: object = None  # the emulated I2C bus (chip path only)

    def close(self) -> None:
        close_all(self.outputs)
        if self.button is not None:
            self.button.close()
        self.imu.close()


def open_backend(
    *,
    scenario: str,
    seed: int = 0,
    rate_hz: float = 100.0,
    mount: Mount = Mount(),
    true_mount: Mount | None = None,
    speed: str = "max",
    via_chip: bool = False,
    pins=None,
    state_dir: Path | None = None,
    fusion_mode: str = "IMUPLUS",
    faults=None,
    presses=(),
) -> SimBackend:
    """Open the simulated belt. ``true_mount`` is how the walker wears it (default: as configured).
    ``presses``: (start_s, held_s) button presses on top of the scenario's own."""
    from gpiozero.pins.mock import MockFactory

    walk = simulate(scenario, seed, rate_hz=rate_hz, mount=true_mount or mount)
    clock = VirtualClock() if speed == "max" else PacedClock()
    pin_factory = MockFactory()
    outputs = open_outputs(
        buzzer=getattr(pins, "buzzer", "GPIO17"),
        led=getattr(pins, "led", "GPIO27"),
        motor=getattr(pins, "motor", ""),
        pin_factory=pin_factory,
    )
    button = open_button(getattr(pins, "button", "GPIO22"), pin_factory=pin_factory)
    if button is not None:
        button = MockPinButton(button)
    from walkcoach.sim.scenarios import SCENARIOS

    scripted = tuple(getattr(SCENARIOS.get(scenario), "button", ())) + tuple(presses)
    if scripted:
        button = ScheduledButton(button, clock, scripted)
    bus = None
    if via_chip:
        from walkcoach.sim.chip_path import open_chip_imu

        imu, bus = open_chip_imu(
            walk, clock, mount=mount, state_dir=state_dir, fusion_mode=fusion_mode, faults=faults
        )
    else:
        imu = DirectImu(walk, clock, mount)
    return SimBackend(imu=imu, outputs=outputs, button=button, clock=clock, walk=walk, pin_factory=pin_factory, bus=bus)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> None:
    """For a whole simulation in one process (``walkcoach sim``): glibc's malloc keeps the memory numpy
    frees for the next arrays instead of giving it back to the system and taking fresh pages again.

    The walk's generation makes and frees dozens of arrays of 0.8-2.3 MB (one per signal and stage); by
    default each is a fresh mmap, whose pages fault in one by one: 30 000 page faults in the default
    scenario, 18 000 fewer with this, ~3 MB more peak memory. Only the simulator calls it; where there
    is no glibc (no ``mallopt``) it does nothing.
    """
    import ctypes  # numpy has imported it already

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest: anything smaller comes from the reusable heap
    mallopt(M_TRIM_THRESHOLD, 256 << 20)  # free memory at the heap's top is kept up to this


def list_scenarios() -> list[tuple[str, str]]:
    from walkcoach.sim.scenarios import SCENARIOS

    return [(name, scenario.description) for name, scenario in SCENARIOS.items()]


def load_fault_plan(path: Path):
    """`walkcoach run --backend sim --faults FILE`: the file as a FaultPlan (ConfigError if malformed)."""
    from walkcoach.sim.chip_path import load_fault_plan as load

    return load(path)


def default_scenario() -> str:
    from walkcoach.sim.scenarios import DEFAULT_SCENARIO

    return DEFAULT_SCENARIO
