"""The BNO055 as a walkcoach ``Imu``: the Adafruit driver sets it up, one burst read per tick.

Per tick ``read()`` does ONE I2C transaction: a write of the register address
0x28 and, after a repeated start, a read of the 14 contiguous bytes 0x28..0x35
(linear acceleration 6, gravity 6, temperature 1, CALIB_STAT 1): 17 bytes on
the wire. The driver's properties are not used per tick: each one re-reads the
mode register first (two transactions per vector).

Calibration: the chip calibrates itself while it runs. The first time it
reports full readiness, the 22 offset + radius bytes are read back ONCE (that
needs CONFIG mode: fusion pauses for about 30 ms, one tick or three) and saved
atomically to ``state_dir/bno055_calibration.bin``; after every chip reset they
are written back in CONFIG mode, so calibration returns within a second or so.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from pathlib import Path

from .errors import ConfigError, ImuError
from .mount import Mount
from .types import Clock, ImuSample

CALIBRATION_FILE = "bno055_calibration.bin"
FUSION_MODES = {"IMUPLUS": 0x08, "NDOF": 0x0C}  # accel+gyro (relative), 9-dof (absolute)

_CONFIG_MODE = 0x00
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

    Constructing it sets the chip up (raises ``ImuError`` if it cannot): the
    Adafruit driver probes, checks the chip id and resets the chip (its own
    ``time.sleep`` waits, about 0.8 s); then, in CONFIG mode, the saved offsets
    are written back, and the fusion mode is entered. Our own waits use
    ``clock.sleep_until``.

    ``read()`` returns gravity and linear acceleration in the body frame
    (``mount``); ``gyro_rads`` is always zero: the gyro is not read per tick.
    Every sample is checked (gravity magnitude 9.81 +- ``gravity_tolerance_ms2``,
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
        g_min, g_max = 9.81 - gravity_tolerance_ms2, 9.81 + gravity_tolerance_ms2
        self._gravity_min_lsb2 = (g_min / _MS2_PER_LSB) ** 2
        self._gravity_max_lsb2 = (g_max / _MS2_PER_LSB) ** 2
        self._calibration_poll_s = calibration_poll_s
        self._next_calibration_check_s = -math.inf
        self._last_readiness = -1
        self._log = logger or logging.getLogger(__name__)
        self._calibration_path = None if state_dir is None else Path(state_dir) / CALIBRATION_FILE
        self._offsets = self._load_offsets()
        self._offsets_captured = False  # read back from the chip once per process
        self._driver = None  # set once setup succeeded
        if set_up_now:  # False: the caller's fault handling sets it up (and retries) via reset()
            self.reset()

    # -- Imu ---------------------------------------------------------------------------
    def read(self) -> ImuSample:
        if self._driver is None:
            raise ImuError("BNO055 is not set up (closed, or the last reset() failed)")
        i2c, buf = self._i2c, self._burst
        if not i2c.try_lock():
            raise ImuError("I2C bus is locked by another user")
        try:
            i2c.writeto_then_readfrom(self._address, _BURST_REGISTER, buf)
        except OSError as exc:
            raise ImuError(f"BNO055 read failed: {exc}") from exc
        finally:
            i2c.unlock()
        lx, ly, lz, gx, gy, gz, temperature_c, calib = _BURST.unpack(buf)
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
        """(Re-)initialise the chip: driver setup, offsets back in CONFIG mode, fusion mode."""
        import adafruit_bno055  # the driver pulls in Blinka's busio; only the real backend needs it

        self._driver = None
        try:
            driver = adafruit_bno055.BNO055_I2C(self._i2c, self._address)  # resets, ends in NDOF
            self._enter_config()
            if self._offsets is not None:
                self._write(_OFFSETS, self._offsets)
                if self._read(_OFFSETS, _OFFSETS_SIZE) != self._offsets:
                    raise ImuError("BNO055 did not take the saved calibration offsets")
            self._enter_fusion()
            status, error_code = self._read(_SYS_STATUS, 2)
        except ImuError:
            raise
        except (OSError, RuntimeError, ValueError) as exc:  # bus error, bad chip id, no device
            raise ImuError(f"BNO055 setup failed: {exc}") from exc
        if status == _SYS_STATUS_ERROR:
            raise ImuError(f"BNO055 reports system error {error_code} after setup")
        self._driver = driver
        self._log.info(
            "BNO055 at 0x%02x set up in %s mode%s",
            self._address,
            self.fusion_mode,
            ", calibration offsets restored" if self._offsets is not None else "",
        )

    def close(self) -> None:
        """Stop using the chip; the bus belongs to the caller and stays open."""
        self._driver = None

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
        if readiness == 3 and not self._offsets_captured:
            self._capture_offsets()

    def _capture_offsets(self) -> None:
        """Read the offsets (CONFIG mode, ~30 ms without fusion) and save them: once per process."""
        try:
            self._enter_config()
            offsets = self._read(_OFFSETS, _OFFSETS_SIZE)
            self._enter_fusion()
        except OSError as exc:  # the next read() will tell whether the chip is still usable
            self._log.warning("BNO055 calibration offsets could not be read: %s", exc)
            return
        self._offsets = offsets
        self._offsets_captured = True
        if self._calibration_path is None:
            return
        try:
            _write_atomically(self._calibration_path, offsets)
        except OSError as exc:
            self._log.error("could not save BNO055 calibration to %s: %s", self._calibration_path, exc)
        else:
            self._log.info("BNO055 calibration saved to %s", self._calibration_path)

    def _load_offsets(self) -> bytes | None:
        path = self._calibration_path
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._log.warning("could not read BNO055 calibration %s: %s", path, exc)
            return None
        if len(data) != _OFFSETS_SIZE:
            self._log.warning("ignoring %s: %d bytes, expected %d", path, len(data), _OFFSETS_SIZE)
            return None
        return data

    def _enter_config(self) -> None:
        self._write(_OPR_MODE, bytes([_CONFIG_MODE]))
        self._clock.sleep_until(self._clock.monotonic() + _TO_CONFIG_S)

    def _enter_fusion(self) -> None:
        self._write(_OPR_MODE, bytes([self._mode_byte]))
        self._clock.sleep_until(self._clock.monotonic() + _FROM_CONFIG_S)

    def _write(self, register: int, data: bytes) -> None:
        self._locked(self._i2c.writeto, self._address, bytes([register]) + data)

    def _read(self, register: int, size: int) -> bytes:
        buf = bytearray(size)
        self._locked(self._i2c.writeto_then_readfrom, self._address, bytes([register]), buf)
        return bytes(buf)

    def _locked(self, transfer, *args) -> None:
        if not self._i2c.try_lock():
            raise ImuError("I2C bus is locked by another user")
        try:
            transfer(*args)
        finally:
            self._i2c.unlock()


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file + fsync + rename + fsync of the directory: the file is old or new, never torn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
