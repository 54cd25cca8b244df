"""The BNO055 as a walkcoach ``Imu``: the Adafruit driver sets it up, one burst read per tick.

Per tick ``read()`` does ONE I2C transaction: a write of the register address
0x28 and, after a repeated start, a read of the 14 contiguous bytes 0x28..0x35
(linear acceleration 6, gravity 6, temperature 1, CALIB_STAT 1): 17 bytes on
the wire. The driver's properties are not used per tick: each one re-reads the
mode register first (two transactions per vector).

Set-up (and every re-initialisation) starts from a known state: register page
0 selected, then CONFIG mode, before the Adafruit driver reads the chip id. A
set-up cut short on page 1 (the driver sets ranges there) would otherwise leave
the chip on page 1, where 0x00 is reserved and reads 0x00: "bad chip id" for
every later attempt until a power cycle. During set-up every transaction is
tried up to ``SETUP_TRIES`` times (a transient NACK costs a retry, not the
set-up) and a failed attempt is repeated from the known state, all within
``SETUP_BUDGET_S`` so the caller's loop (and systemd's watchdog) is never
starved.

Calibration: the chip calibrates itself while it runs. The first time it
reports full readiness, the 22 offset + radius bytes are read back ONCE (that
needs CONFIG mode: fusion pauses for about 30 ms), twice, one step per tick
(CONFIG mode; first read; second read; fusion mode; read on), no tick waiting
for the chip's mode switches: the few ticks without fusion raise
:class:`SensorPaused` (lost time for the coach, not a read error),
and kept only if both reads agree and the values are plausible
(:func:`offsets_problem`); after every chip reset they are written back in
CONFIG mode, so calibration returns within a second or so. The file
``state_dir/bno055_calibration.bin`` is written atomically and durably (an
fsync: tens of ms on an SD card) by :class:`OffsetsSaver` on its own thread,
never in the loop's tick: a failed write is logged and retried with backoff,
and ``close()`` writes what is still unsaved before the process ends.
"""

from __future__ import annotations

import errno
import logging
import math
import struct
import threading
import time
from pathlib import Path

from walkcoach.hal.errors import ConfigError, ImuError, SensorPaused
from walkcoach.hal.mount import Mount
from walkcoach.hal.state_files import read_regular, write_atomic
from walkcoach.hal.types import G_MS2, Clock, ImuSample

CALIBRATION_FILE = "bno055_calibration.bin"
FUSION_MODES = {"IMUPLUS": 0x08, "NDOF": 0x0C}  # accel+gyro (relative), 9-dof (absolute)

_CONFIG_MODE = 0x00
_PAGE_ID = 0x07  # on both pages
_OPR_MODE = 0x3D
_SYS_STATUS = 0x39  # then SYS_ERR 0x3A
_SYS_STATUS_ERROR = 0x01
_OFFSETS = 0x55  # ACC/MAG/GYR offsets x,y,z then ACC/MAG radius: 22 bytes up to 0x6A
_OFFSETS_SIZE = 22
_TO_CONFIG_S = 0.020  # datasheet table 3-6: 19 ms
_FROM_CONFIG_S = 0.010  # datasheet table 3-6: 7 ms

_BURST_REGISTER = bytes([0x28])  # LIA_DATA_X_LSB
_BURST = struct.Struct("<6hbB")  # linear acc xyz, gravity xyz (100 LSB per m/s²), temp °C, CALIB_STAT
_MS2_PER_LSB = 0.01
_TEMPERATURE_RANGE_C = (-40, 85)  # operating range: anything else is garbage
_GYRO_NOT_READ = (0.0, 0.0, 0.0)

SETUP_TRIES = 4  # per transaction during set-up: at 5 % NACKs a step fails 4 times in 6e-6 of cases
SETUP_ATTEMPTS = 3  # whole set-ups from the known state, per reset()
SETUP_RETRY_WAIT_S = 0.005
SETUP_ATTEMPT_WAIT_S = 0.05
# One reset() gives up after this; with the driver's 0.7 s reset wait and one last
# transfer (a stuck bus times out after ~1 s) it blocks at most ~5 s: see WatchdogSec.
SETUP_BUDGET_S = 3.0
CAPTURE_BUDGET_S = 0.2
# the offset capture's steps, one per tick (Bno055Imu._capture_step)
_CAPTURE_IDLE, _CAPTURE_FIRST_READ, _CAPTURE_SECOND_READ, _CAPTURE_FUSION_ON, _CAPTURE_RESUMING = range(5)
CAPTURE_TRIES = 5  # offset read-backs per process (each pauses fusion ~30 ms) before giving up
SAVE_RETRY_FIRST_S = 1.0  # a failed save of the offsets is tried again after this, doubling...
SAVE_RETRY_MAX_S = 60.0  # ...up to this (a full SD card, a read-only remount: until someone fixes it)
SAVE_FLUSH_S = 2.0  # close() waits this long for the saver's write in progress, then tries itself

# Plausible offsets (datasheet 3.6.4, in fusion mode the accelerometer range is 4 G):
# accel offset +-4000 mg, mag +-6400 (1/16 uT), gyro +-32000 (1/16 dps), accel radius
# +-1000, mag radius +-960. One bad read (a chip mid-reset reads all zeros, a floating
# SDA line all 0xFF, corruption random bytes) fails these, or fails the second read.
_OFFSET_LIMITS = ((0, 3, 4000, "accelerometer offset"), (3, 6, 6400, "magnetometer offset"), (6, 9, 32000, "gyroscope offset"))
_ACC_RADIUS_MAX = 1000
_MAG_RADIUS_MAX = 960


def offsets_problem(offsets: bytes) -> str | None:
    """Why these 22 offset + radius bytes cannot be a real calibration, or None if they can."""
    if len(offsets) != _OFFSETS_SIZE:
        return f"{len(offsets)} bytes, expected {_OFFSETS_SIZE}"
    if not any(offsets):
        return "all zero (read during a chip reset?)"
    if offsets == b"\xff" * _OFFSETS_SIZE:
        return "all 0xFF (a floating bus?)"
    values = struct.unpack("<11h", offsets)
    for lo, hi, limit, what in _OFFSET_LIMITS:
        if any(abs(v) > limit for v in values[lo:hi]):
            return f"{what} {values[lo:hi]} outside +-{limit}"
    acc_radius, mag_radius = values[9], values[10]
    if not 0 < acc_radius <= _ACC_RADIUS_MAX:
        return f"accelerometer radius {acc_radius} outside 1..{_ACC_RADIUS_MAX}"
    if not 0 <= mag_radius <= _MAG_RADIUS_MAX:
        return f"magnetometer radius {mag_radius} outside 0..{_MAG_RADIUS_MAX}"
    return None


class OffsetsSaver:
    """Writes the captured offsets to their file on its own thread; the loop's tick only hands them over.

    ``save()`` never blocks on the file system (it takes a lock and notifies). A failed
    write is logged (with the offsets, in hex, so they are not lost even if the disk never
    recovers) and tried again after ``retry_first_s``, doubling up to ``retry_max_s``.
    ``flush()`` (from ``Bno055Imu.close()``) waits for the write in progress and makes one
    last try itself if the offsets are still unsaved. Real time, not the loop's clock: the
    file system's troubles are in real time.
    """

    def __init__(self, path: Path, log: logging.Logger, *, retry_first_s: float = SAVE_RETRY_FIRST_S,
                 retry_max_s: float = SAVE_RETRY_MAX_S) -> None:
        self.path = path
        self._log = log
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self._cond = threading.Condition()
        self._pending: bytes | None = None  # the latest offsets not yet on disk
        self._closing = False
        self._thread: threading.Thread | None = None
        self.saved: bytes | None = None  # what the file holds since this process wrote it
        self.failures = 0  # failed writes (each one logged)

    def start(self) -> None:
        """Start the thread now (the chip's set-up, which waits anyway): starting it from the capture's
        tick cost that tick a thread start and the new thread's first turn with the GIL."""
        with self._cond:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="walkcoach-bno055-offsets", daemon=True)
                self._thread.start()

    def save(self, offsets: bytes) -> None:
        """Hand the offsets over (the loop's thread); the thread starts here if :meth:`start` was not called."""
        self.start()
        with self._cond:
            self._pending = offsets
            self._cond.notify_all()

    @property
    def unsaved(self) -> bytes | None:
        return self._pending

    def wait_saved(self, timeout_s: float) -> bool:
        """Wait until nothing handed over is left unsaved (or ``timeout_s``); True if so."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def flush(self, timeout_s: float = SAVE_FLUSH_S) -> bool:
        """Stop the thread, having written what is unsaved (one last try here if it keeps failing)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():  # stuck in the file system: leave it, it is a daemon
                self._log.error("BNO055 calibration: the write to %s did not finish within %.0f s", self.path, timeout_s)
                return False
        offsets = self._pending
        if offsets is not None and self._write(offsets, last_try=True):
            self._done(offsets)
        return self._pending is None

    def _run(self) -> None:
        delay_s = self._retry_first_s
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                offsets = self._pending
                if offsets is None:  # closing, nothing left
                    return
            if self._write(offsets, last_try=False):
                self._done(offsets)
                delay_s = self._retry_first_s
                continue
            with self._cond:
                if self._closing:
                    return  # flush() makes the last try
                self._cond.wait(delay_s)  # a flush() or newer offsets wake it early
            delay_s = min(self._retry_max_s, delay_s * 2)

    def _done(self, offsets: bytes) -> None:
        with self._cond:
            self.saved = offsets
            if self._pending == offsets:
                self._pending = None
            self._cond.notify_all()

    def _write(self, offsets: bytes, *, last_try: bool) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, offsets, mode=0o640, durable=True)
        except OSError as exc:
            self.failures += 1
            then = "not saved: restore them by hand if needed" if last_try else "retrying"
            self._log.error("could not save BNO055 calibration to %s: %s (offsets %s; %s)", self.path,
                            exc.strerror or exc, offsets.hex(), then)
            return False
        if self.failures:
            self._log.info("BNO055 calibration saved to %s after %d failed write(s)", self.path, self.failures)
        else:
            self._log.info("BNO055 calibration saved to %s", self.path)
        return True


class _RetryingBus:
    """The bus as the driver sees it during set-up: a failed transaction is tried again.

    Every set-up step is a register read or an idempotent register write, so a
    retry is safe; the chip's own reset trigger fails its retries while the chip
    boots, which the driver ignores. Once ``deadline_s`` has passed no
    transaction is tried at all, so a bus that stalls every transfer cannot keep
    a set-up going for long.
    """

    def __init__(self, bus, clock: Clock, deadline_s: float) -> None:
        self._bus = bus
        self._clock = clock
        self.deadline_s = deadline_s
        self.retries = 0

    def try_lock(self) -> bool:
        return self._bus.try_lock()

    def unlock(self) -> None:
        self._bus.unlock()

    def writeto(self, *args, **kwargs) -> None:
        self._retry(self._bus.writeto, args, kwargs)

    def readfrom_into(self, *args, **kwargs) -> None:
        self._retry(self._bus.readfrom_into, args, kwargs)

    def writeto_then_readfrom(self, *args, **kwargs) -> None:
        self._retry(self._bus.writeto_then_readfrom, args, kwargs)

    def _retry(self, transfer, args, kwargs) -> None:
        clock = self._clock
        if clock.monotonic() >= self.deadline_s:  # not even a first try: the caller's loop has waited enough
            raise OSError(errno.ETIMEDOUT, f"BNO055 set-up gave up after {SETUP_BUDGET_S:g} s")
        for tries in range(1, SETUP_TRIES + 1):
            try:
                return transfer(*args, **kwargs)
            except OSError:
                if tries == SETUP_TRIES or clock.monotonic() >= self.deadline_s:
                    raise
                self.retries += 1
                clock.sleep_until(clock.monotonic() + SETUP_RETRY_WAIT_S)


def _readiness_table(fusion_mode: str) -> tuple[int, ...]:
    """CALIB_STAT byte -> 0..3 readiness of the sensors the mode uses.

    IMUPLUS: min(gyro, accel) (its mag and sys fields stay 0 on the real chip);
    NDOF: the system status.
    """
    if fusion_mode == "IMUPLUS":
        return tuple(min((c >> 4) & 3, (c >> 2) & 3) for c in range(256))
    return tuple((c >> 6) & 3 for c in range(256))


class Bno055Imu:
    """A BNO055 on an I2C bus (``SMBusI2C`` or the simulator's bus), as an ``Imu``.

    Constructing it sets the chip up (raises ``ImuError`` if it cannot; see
    ``reset()``): page 0 and CONFIG mode first, then the Adafruit driver probes,
    checks the chip id and resets the chip (its own ``time.sleep`` waits, about
    0.8 s); then, in CONFIG mode, the saved offsets are written back, and the
    fusion mode is entered; failed transfers and attempts are retried. Our own
    waits use ``clock.sleep_until``.

    ``read()`` returns gravity and linear acceleration in the body frame
    (``mount``); ``gyro_rads`` is always zero: the gyro is not read per tick.
    Every sample is checked (gravity magnitude g +- ``gravity_tolerance_ms2``,
    temperature in the operating range) before it leaves; anything else, and
    every bus error, raises ``ImuError``. After a chip reset or an unplugged
    cable, ``read()`` keeps failing until ``reset()`` succeeds.

    ``calibration_poll_s``: how often ``read()`` looks at the calibration
    status for logging and for the one-off offset capture (the status itself
    comes with every burst).
    """

    def __init__(
        self,
        *,
        i2c,
        clock: Clock,
        mount: Mount = Mount(),
        fusion_mode: str = "IMUPLUS",
        address: int = 0x28,
        state_dir: Path | None = None,
        calibration_poll_s: float = 1.0,
        gravity_tolerance_ms2: float = 1.5,
        logger: logging.Logger | None = None,
        set_up_now: bool = True,
    ) -> None:
        if fusion_mode not in FUSION_MODES:
            raise ConfigError(f"fusion_mode {fusion_mode!r} is not one of {', '.join(FUSION_MODES)}")
        self.fusion_mode = fusion_mode
        self._i2c = i2c
        self._clock = clock
        self._address = address
        self._mode_byte = FUSION_MODES[fusion_mode]
        self._remap = mount.remapper()
        self._readiness = _readiness_table(fusion_mode)
        self._burst = bytearray(_BURST.size)
        # SMBusI2C prepares the burst's ioctl once (nothing built or copied per tick); other buses: writeto_then_readfrom
        prepare = getattr(i2c, "register_reader", None)
        self._read_burst = prepare(address, _BURST_REGISTER[0], _BURST.size) if prepare is not None else None
        g_min, g_max = G_MS2 - gravity_tolerance_ms2, G_MS2 + gravity_tolerance_ms2
        self._gravity_min_lsb2 = (g_min / _MS2_PER_LSB) ** 2
        self._gravity_max_lsb2 = (g_max / _MS2_PER_LSB) ** 2
        self._calibration_poll_s = calibration_poll_s
        self._next_calibration_check_s = -math.inf
        self._last_readiness = -1
        self._log = logger or logging.getLogger(__name__)
        self._calibration_path = None if state_dir is None else Path(state_dir) / CALIBRATION_FILE
        self.offsets_saver = None if self._calibration_path is None else OffsetsSaver(self._calibration_path, self._log)
        self._offsets = self._load_offsets()
        self._offsets_captured = False  # read back from the chip once per process
        self._capture_tries_left = CAPTURE_TRIES
        self._capture_stage = _CAPTURE_IDLE  # the offset capture's step in progress (see _capture_step)
        self._capture_due_s = 0.0  # when the chip's mode switch of the current step is over
        self._captured_first: bytes | None = None
        self._captured: tuple[bytes, bytes] | None = None  # both reads, kept once fusion is back on
        self._driver = None  # set once setup succeeded
        self.setup_attempts = 0  # whole set-ups tried (each reset() makes 1..SETUP_ATTEMPTS)
        self.setup_retries = 0  # single transactions tried again during set-up
        if set_up_now:  # False: the caller's fault handling sets it up (and retries) via reset()
            self.reset()

    # -- Imu ---------------------------------------------------------------------------
    def read(self) -> ImuSample:
        if self._driver is None:
            raise ImuError("BNO055 is not set up (closed, or the last reset() failed)")
        if self._capture_stage and not self._capture_step():
            raise SensorPaused("BNO055 paused: reading its calibration offsets back in CONFIG mode")
        i2c, read_burst = self._i2c, self._read_burst
        if not i2c.try_lock():
            raise ImuError("I2C bus is locked by another user")
        try:
            if read_burst is not None:
                lx, ly, lz, gx, gy, gz, temperature_c, calib = _BURST.unpack(read_burst())
            else:
                buf = self._burst
                i2c.writeto_then_readfrom(self._address, _BURST_REGISTER, buf)
                lx, ly, lz, gx, gy, gz, temperature_c, calib = _BURST.unpack(buf)
        except OSError as exc:
            raise ImuError(f"BNO055 read failed: {exc}") from exc
        finally:
            i2c.unlock()
        gravity_lsb2 = gx * gx + gy * gy + gz * gz
        if not self._gravity_min_lsb2 <= gravity_lsb2 <= self._gravity_max_lsb2:
            raise ImuError(self._bad_gravity_reason(gravity_lsb2))
        if not _TEMPERATURE_RANGE_C[0] <= temperature_c <= _TEMPERATURE_RANGE_C[1]:
            raise ImuError(f"BNO055 temperature {temperature_c} °C is implausible (garbage data?)")
        remap = self._remap
        t_s = self._clock.monotonic()
        sample = ImuSample(
            t_s,
            remap((gx * _MS2_PER_LSB, gy * _MS2_PER_LSB, gz * _MS2_PER_LSB)),
            remap((lx * _MS2_PER_LSB, ly * _MS2_PER_LSB, lz * _MS2_PER_LSB)),
            _GYRO_NOT_READ,
            self._readiness[calib],
        )
        if t_s >= self._next_calibration_check_s:
            self._check_calibration(self._readiness[calib], t_s)
        return sample

    def reset(self) -> None:
        """(Re-)initialise the chip from a known state, retrying; raises ImuError if it cannot.

        Blocks for the driver's reset wait (~0.8 s) and at most about
        ``SETUP_BUDGET_S`` + one transfer in all, whatever the bus does.
        """
        import adafruit_bno055  # the driver pulls in Blinka's busio; only the real backend needs it

        self._driver = None
        self._capture_stage = _CAPTURE_IDLE  # a capture cut short by a reset: the set-up leaves fusion on
        self._captured = None
        clock = self._clock
        bus = _RetryingBus(self._i2c, clock, clock.monotonic() + SETUP_BUDGET_S)
        problem = "no attempt"
        try:
            for attempt in range(1, SETUP_ATTEMPTS + 1):
                self.setup_attempts += 1
                try:
                    self._driver = self._set_up_once(adafruit_bno055, bus)
                except ImuError as exc:
                    problem = str(exc)
                except (OSError, RuntimeError, ValueError) as exc:  # bus error, bad chip id, no device
                    problem = f"BNO055 setup failed: {exc}"
                else:
                    break
                if clock.monotonic() >= bus.deadline_s:
                    break
                self._log.debug("BNO055 set-up attempt %d failed: %s", attempt, problem)
                clock.sleep_until(clock.monotonic() + SETUP_ATTEMPT_WAIT_S)
        finally:
            self.setup_retries += bus.retries
        if self._driver is None:
            raise ImuError(f"{problem} (after {attempt} attempt(s))")
        if self.offsets_saver is not None and not self._offsets_captured:
            self.offsets_saver.start()  # ready before the capture's tick hands it the offsets
        self._log.info(
            "BNO055 at 0x%02x set up in %s mode%s%s",
            self._address,
            self.fusion_mode,
            ", calibration offsets restored" if self._offsets is not None else "",
            f" (attempt {attempt}, {bus.retries} retried transfer(s))" if attempt > 1 or bus.retries else "",
        )

    def _set_up_once(self, adafruit_bno055, bus):
        # The known state first: page 0 (the driver reads the chip id without selecting
        # it) and CONFIG mode (set-up writes are only taken in CONFIG mode).
        self._write(_PAGE_ID, b"\x00", bus)
        self._enter_config(bus)
        driver = adafruit_bno055.BNO055_I2C(bus, self._address)  # resets, ends on page 0 in NDOF
        self._enter_config(bus)
        if self._offsets is not None:
            self._write(_OFFSETS, self._offsets, bus)
            if self._read(_OFFSETS, _OFFSETS_SIZE, bus) != self._offsets:
                raise ImuError("BNO055 did not take the saved calibration offsets")
        self._enter_fusion(bus)
        status, error_code = self._read(_SYS_STATUS, 2, bus)
        if status == _SYS_STATUS_ERROR:
            raise ImuError(f"BNO055 reports system error {error_code} after setup")
        return driver

    def close(self) -> None:
        """Stop using the chip (the bus belongs to the caller and stays open); offsets not yet saved are written now."""
        self._driver = None
        self._capture_stage = _CAPTURE_IDLE
        if self.offsets_saver is not None:
            self.offsets_saver.flush()

    def __enter__(self) -> Bno055Imu:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def calibration_offsets(self) -> bytes | None:
        """The 22 offset + radius bytes restored after resets (None until known)."""
        return self._offsets

    # -- internals ---------------------------------------------------------------------
    def _bad_gravity_reason(self, gravity_lsb2: int) -> str:
        if gravity_lsb2 == 0:
            return "BNO055 gravity is zero (chip reset into CONFIG mode?)"
        magnitude_ms2 = math.sqrt(gravity_lsb2) * _MS2_PER_LSB
        return f"BNO055 gravity magnitude {magnitude_ms2:.2f} m/s² is implausible (garbage data?)"

    def _check_calibration(self, readiness: int, t_s: float) -> None:
        self._next_calibration_check_s = t_s + self._calibration_poll_s
        if readiness != self._last_readiness:
            self._log.info("BNO055 calibration readiness %d/3", readiness)
            self._last_readiness = readiness
        if readiness == 3 and not self._offsets_captured and self._capture_tries_left > 0:
            self._capture_tries_left -= 1
            self._capture_offsets()

    def _capture_offsets(self) -> None:
        """Start reading the offsets back: CONFIG mode now; the reads, and fusion back on, in the next ticks.

        Done in one tick, the capture held that tick for the chip's two mode switches (19 + 7 ms by its
        datasheet) and four transactions; as steps (:meth:`_capture_step`) each tick carries at most one
        transaction and none waits for the chip. Fusion is off for the same ~30 ms either way: those
        ticks have no sample (:class:`SensorPaused`), which the loop counts as lost time, far below a fault."""
        # Retried like the set-up: a NACK here must not leave the chip in CONFIG mode (no data).
        now_s = self._clock.monotonic()
        try:
            self._write(_OPR_MODE, bytes([_CONFIG_MODE]), self._capture_bus(now_s))
        except OSError as exc:
            self._log.warning("BNO055 calibration offsets could not be read: %s", exc)
            self._capture_stage = _CAPTURE_FUSION_ON  # whatever the chip took, fusion goes back on next
        else:
            self._capture_stage = _CAPTURE_FIRST_READ
        self._capture_due_s = now_s + _TO_CONFIG_S
        self._captured_first = None

    def _capture_bus(self, now_s: float) -> _RetryingBus:
        return _RetryingBus(self._i2c, self._clock, now_s + CAPTURE_BUDGET_S)

    def _capture_step(self) -> bool:
        """One step of the offset capture (at most one transaction); True once fusion is back (read on)."""
        now_s = self._clock.monotonic()
        stage = self._capture_stage
        if now_s < self._capture_due_s:
            return False  # the chip's mode switch is not over
        if stage == _CAPTURE_RESUMING:
            self._capture_stage = _CAPTURE_IDLE
            return True
        if stage == _CAPTURE_FUSION_ON:
            try:
                self._write(_OPR_MODE, bytes([self._mode_byte]), self._capture_bus(now_s))
            except OSError as exc:  # the next read() fails and the loop re-initialises the chip
                self._log.warning("BNO055 fusion mode not resumed after reading the offsets: %s", exc)
                self._capture_stage = _CAPTURE_IDLE
                return True
            self._capture_stage = _CAPTURE_RESUMING
            self._capture_due_s = now_s + _FROM_CONFIG_S
            self._keep_captured()
            return False
        try:
            offsets = self._read(_OFFSETS, _OFFSETS_SIZE, self._capture_bus(now_s))
        except OSError as exc:
            self._log.warning("BNO055 calibration offsets could not be read: %s", exc)
            self._captured = None
            self._capture_stage = _CAPTURE_FUSION_ON
            return False
        if stage == _CAPTURE_FIRST_READ:
            self._captured_first = offsets
            self._capture_stage = _CAPTURE_SECOND_READ
        else:
            first, self._captured_first = self._captured_first, None
            self._captured = None if first is None else (first, offsets)
            self._capture_stage = _CAPTURE_FUSION_ON
        return False

    def _keep_captured(self) -> None:
        """Fusion is back on: keep the two reads if they agree and are plausible (else a later check tries again)."""
        captured, self._captured = self._captured, None
        if captured is None:
            return
        offsets, again = captured
        problem = "two reads disagree (a corrupted read?)" if offsets != again else offsets_problem(offsets)
        if problem is not None:
            self._log.warning("BNO055 calibration offsets not kept: %s", problem)
            return
        self._offsets = offsets
        self._offsets_captured = True
        if self.offsets_saver is not None:
            self.offsets_saver.save(offsets)  # the fsync on the saver's thread, not in this tick

    def _load_offsets(self) -> bytes | None:
        path = self._calibration_path
        if path is None:
            return None
        try:
            data = read_regular(path, max_bytes=64)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._log.warning("could not read BNO055 calibration %s: %s", path, exc)
            return None
        problem = offsets_problem(data)
        if problem is not None:
            self._log.warning("ignoring %s: %s", path, problem)
            return None
        return data

    def _enter_config(self, bus=None) -> None:
        self._write(_OPR_MODE, bytes([_CONFIG_MODE]), bus)
        self._clock.sleep_until(self._clock.monotonic() + _TO_CONFIG_S)

    def _enter_fusion(self, bus=None) -> None:
        self._write(_OPR_MODE, bytes([self._mode_byte]), bus)
        self._clock.sleep_until(self._clock.monotonic() + _FROM_CONFIG_S)

    def _write(self, register: int, data: bytes, bus=None) -> None:
        bus = bus or self._i2c
        self._locked(bus, bus.writeto, self._address, bytes([register]) + data)

    def _read(self, register: int, size: int, bus=None) -> bytes:
        bus = bus or self._i2c
        buf = bytearray(size)
        self._locked(bus, bus.writeto_then_readfrom, self._address, bytes([register]), buf)
        return bytes(buf)

    @staticmethod
    def _locked(bus, transfer, *args) -> None:
        if not bus.try_lock():
            raise ImuError("I2C bus is locked by another user")
        try:
            transfer(*args)
        finally:
            bus.unlock()
