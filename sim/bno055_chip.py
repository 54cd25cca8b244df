"""An emulated BNO055 at register level, so the real Adafruit driver and our IMU class run in tests.

What is modelled (datasheet BST-BNO055-DS000-14 section numbers in brackets):

- Register pages [4.2, table 4-2]: PAGE_ID 0x07 exists on both pages and reads
  the selected page; page 0 holds the ID registers 0x00..0x06, data, status and
  config; page 1 holds the sensor config registers 0x08..0x1F (ACC_Config etc.,
  written by the driver's constructor, taken only in CONFIG mode) and the
  16-byte UNIQUE_ID at 0x50..0x5F; everything else on page 1 is reserved and
  reads 0x00, so a chip id read at 0x00 while page 1 is selected returns 0x00
  (the driver's "bad chip id (0x0 != 0xa0)"). Page 0's registers (OPR_MODE,
  SYS_TRIGGER, ...) ignore writes while page 1 is selected. A reset selects
  page 0.
- OPR_MODE with CONFIG, the non-fusion and the fusion modes; switching takes
  7 ms from CONFIG and 19 ms back to CONFIG [table 3-6]. Output registers read
  zero until a switch into an operating mode completes and while in CONFIG mode;
  config-only registers ignore writes until a switch into CONFIG completes.
- SYS_TRIGGER bit 5 (RST_SYS) and power-on: the chip does not acknowledge its
  address for 650 ms, then it is in CONFIG mode with reset values, offsets zero
  and calibration lost [4.3.63, 1.2 "POR time"].
- SYS_STATUS (0 idle, 5 fusion running, 6 running without fusion), SYS_ERR 0,
  ST_RESULT 0x0F, UNIT_SEL (acc m/s² or mg, gyro dps or rps, euler deg or rad,
  temperature °C or °F), AXIS_MAP_CONFIG/SIGN applied to every vector output,
  an invalid map keeps the previous one [3.4].
- Data registers 0x08..0x35, little-endian int16: accel/linear/gravity 100 LSB
  per m/s² (or 1 LSB per mg), gyro 16 LSB per dps (or 900 per rps), euler 16
  LSB per degree (or 900 per rad), quaternion 2^14, TEMP 1 LSB per °C [3.6.5].
  Magnetometer data read zero (no field is modelled); euler and quaternion are
  tilt-only (heading 0) from the gravity vector, with approximate sign
  conventions: walkcoach reads gravity, not orientation.
- CALIB_STAT 0x35 rising with time spent in a fusion mode since the last reset
  (a time-based stand-in for "hold still, then move it around"): gyro within
  1.5 s, accel within 6 s, mag within 3 s. In IMUPLUS the mag and sys fields
  stay 0, as users observe on the real chip (Adafruit_BNO055 PR #55). After
  offsets were written back in CONFIG mode it comes back 10x faster.
- Offsets + radii 0x55..0x6A (22 bytes): read as zero and ignore writes outside
  CONFIG mode [3.6.4]; once the chip has calibrated on its own they hold
  ``learned_offsets``.
- Register reads and writes auto-increment (burst access).

A frozen sensor (``freeze(from_s, until_s)``): in an operating mode the data
registers keep the bytes of the first read in the window, resets or not (a
hung fusion core or a stuck sensor element, as opposed to a bus fault).

The chip is fed by a ``source(t_s) -> (gravity_xyz, linear_acc_xyz, gyro_xyz)``
in the SENSOR frame (m/s², rad/s), evaluated at the clock's current time when
the data registers are read. ``WalkSignal`` adapts a simulated walk's arrays and
pre-encodes them once, so a read costs a dict lookup and a 44-byte slice.
"""

from __future__ import annotations

import errno
import math
import os
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from walkcoach.hal.errors import EndOfStream
from walkcoach.hal.types import G_MS2

ADDRESS = 0x28
CHIP_ID = 0xA0

CONFIG_MODE = 0x00
IMUPLUS_MODE = 0x08
NDOF_MODE = 0x0C

BOOT_S = 0.65  # POR / RST_SYS until the chip answers again, in CONFIG mode
TO_OPERATION_S = 0.007  # CONFIG -> any operating mode
TO_CONFIG_S = 0.019  # any operating mode -> CONFIG

# Seconds of fusion running (since the last reset) at which a sensor's status reaches 1, 2, 3.
GYRO_CALIBRATION_S = (0.5, 1.0, 1.5)
ACCEL_CALIBRATION_S = (2.0, 4.0, 6.0)
MAG_CALIBRATION_S = (1.0, 2.0, 3.0)
RESTORED_SPEEDUP = 10.0  # after offsets were written back, calibration comes back this much faster

# A plausible calibration profile: acc, mag, gyr offsets (x, y, z), acc radius, mag radius.
DEFAULT_LEARNED_OFFSETS = np.array(
    [-18, 35, -9, -210, 88, 402, -1, 2, 0, 1000, 712], dtype="<i2"
).tobytes()

# Page 0 registers
_PAGE_ID = 0x07
_DATA_START = 0x08  # ACC_DATA_X_LSB: acc, mag, gyr, eul, qua, lia, grv (22 int16, 44 bytes)
_DATA_END = 0x34
_TEMP = 0x34
_CALIB_STAT = 0x35
_ST_RESULT = 0x36
_SYS_STATUS = 0x39
_SYS_ERR = 0x3A
_UNIT_SEL = 0x3B
_OPR_MODE = 0x3D
_PWR_MODE = 0x3E
_SYS_TRIGGER = 0x3F
_TEMP_SOURCE = 0x40
_AXIS_MAP_CONFIG = 0x41
_AXIS_MAP_SIGN = 0x42
_OFFSETS_START = 0x55
_OFFSETS_END = 0x6B  # exclusive: 22 bytes
_CONFIG_ONLY_PAGE0 = frozenset({_UNIT_SEL, _PWR_MODE, _TEMP_SOURCE, *range(_OFFSETS_START, _OFFSETS_END)})

_PAGE0_DEFAULTS = {
    0x00: CHIP_ID, 0x01: 0xFB, 0x02: 0x32, 0x03: 0x0F,  # chip, ACC, MAG, GYR ids
    0x04: 0x11, 0x05: 0x03, 0x06: 0x15,  # SW_REV_ID 0x0311, BL_REV_ID
    _ST_RESULT: 0x0F, _UNIT_SEL: 0x80, _AXIS_MAP_CONFIG: 0x24, _AXIS_MAP_SIGN: 0x00,
}
_PAGE1_DEFAULTS = {
    _PAGE_ID: 0x01,
    0x08: 0x0D,  # ACC_Config: 4 G, 62.5 Hz, normal
    0x09: 0x0B,  # MAG_Config: 10 Hz, regular, normal
    0x0A: 0x38,  # GYR_Config_0: 2000 dps, 32 Hz
    0x0B: 0x00,  # GYR_Config_1: normal
}
_PAGE1_WRITABLE = range(0x08, 0x20)
_UNIQUE_ID = 0x50  # page 1, 16 bytes, read-only
DEFAULT_UNIQUE_ID = bytes.fromhex("a0fb320f1103150b0c0d0e0f10111213")

_ACC_MODES = frozenset({0x01, 0x04, 0x05, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C})
_GYR_MODES = frozenset({0x03, 0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C})
_MAG_MODES = frozenset({0x02, 0x04, 0x06, 0x07, 0x09, 0x0A, 0x0B, 0x0C})
_FUSION_MODES = frozenset({0x08, 0x09, 0x0A, 0x0B, 0x0C})

_DATA_SIZE = _DATA_END - _DATA_START  # 44
_ZEROS = bytes(_CALIB_STAT - _DATA_START)  # data + temperature

Vector3 = tuple[float, float, float]
Source = Callable[[float], tuple[Vector3, Vector3, Vector3]]


def _nack() -> OSError:
    return OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))


class DataEncoding(NamedTuple):
    """Everything that decides how a signal becomes data-register bytes (a cache key)."""

    axis_map_config: int
    axis_map_sign: int
    unit_sel: int
    acc_on: bool
    gyr_on: bool
    fusion_on: bool


_ENCODE_CHUNK = 2048  # samples per pass: float64 scratch stays small however long the walk


def encode_data_block(gravity_ms2, linear_acc_ms2, gyro_rads, encoding: DataEncoding) -> np.ndarray:
    """(N, 3) sensor-frame arrays -> (N, 22) little-endian int16: registers 0x08..0x33.

    Encoded in chunks of samples straight into the int16 result, so a long walk
    never needs (N, 22) float64 scratch arrays (every step is per sample).
    """
    axes = [(encoding.axis_map_config >> shift) & 3 for shift in (0, 2, 4)]
    signs = np.array([-1.0 if encoding.axis_map_sign & bit else 1.0 for bit in (4, 2, 1)])
    g_all, lin_all, w_all = (np.asarray(v, dtype=float).reshape(-1, 3) for v in (gravity_ms2, linear_acc_ms2, gyro_rads))
    unit = encoding.unit_sel
    acc_lsb = 1000.0 / G_MS2 if unit & 0x01 else 100.0  # per m/s² (1 mg, or 0.01 m/s²)
    gyr_lsb = 900.0 if unit & 0x02 else 16.0 * 180.0 / math.pi  # per rad/s
    eul_lsb = 900.0 if unit & 0x04 else 16.0 * 180.0 / math.pi  # per rad
    n = len(g_all)
    result = np.zeros((n, 22), dtype="<i2")
    if not (encoding.acc_on or encoding.gyr_on or encoding.fusion_on):
        return result
    for lo in range(0, n, _ENCODE_CHUNK):
        hi = min(n, lo + _ENCODE_CHUNK)
        g, lin, w = (v[lo:hi][:, axes] * signs for v in (g_all, lin_all, w_all))
        out = np.zeros((hi - lo, 22))
        if encoding.acc_on:
            out[:, 0:3] = (g + lin) * acc_lsb
        if encoding.gyr_on:
            out[:, 6:9] = w * gyr_lsb
        if encoding.fusion_on:
            roll = np.arctan2(g[:, 1], g[:, 2])
            pitch = np.arctan2(-g[:, 0], np.hypot(g[:, 1], g[:, 2]))
            out[:, 10] = roll * eul_lsb  # heading (column 9) stays 0
            out[:, 11] = pitch * eul_lsb
            cr, sr, cp, sp = np.cos(roll / 2), np.sin(roll / 2), np.cos(pitch / 2), np.sin(pitch / 2)
            out[:, 12:16] = np.stack([cr * cp, sr * cp, cr * sp, -sr * sp], axis=1) * 16384.0
            out[:, 16:19] = lin * acc_lsb
            out[:, 19:22] = g * acc_lsb
        np.rint(out, out=out)
        np.clip(out, -32768, 32767, out=out)
        result[lo:hi] = out
    return result


class WalkSignal:
    """A simulated walk's arrays as a chip source, pre-encoded for fast burst reads.

    ``walk`` has ``t_s (N,)``, ``gravity_ms2``, ``linear_acc_ms2``, ``gyro_rads``
    (N, 3) in the sensor frame and ``rate_hz``. Sample ``round((t_s - start_s) * rate_hz)``
    plays at virtual time ``t_s`` (clamped at 0); past the last sample it raises
    ``EndOfStream``. Each encoding (axis map, units, mode) is built once with numpy
    (44 bytes per sample), so a register read is a slice.
    """

    def __init__(self, walk, *, start_s: float = 0.0) -> None:
        self.rate_hz = float(walk.rate_hz)
        self.start_s = start_s
        self._gravity_ms2 = np.asarray(walk.gravity_ms2, dtype=float)
        self._linear_acc_ms2 = np.asarray(walk.linear_acc_ms2, dtype=float)
        self._gyro_rads = np.asarray(walk.gyro_rads, dtype=float)
        self._n = len(self._gravity_ms2)
        self._blocks: dict[DataEncoding, bytes] = {}

    def index(self, t_s: float) -> int:
        i = int((t_s - self.start_s) * self.rate_hz + 0.5)
        if i >= self._n:
            raise EndOfStream(f"simulated walk ended ({self._n} samples at {self.rate_hz:g} Hz)")
        return i if i > 0 else 0

    def __call__(self, t_s: float) -> tuple[Vector3, Vector3, Vector3]:
        i = self.index(t_s)
        return (
            tuple(self._gravity_ms2[i]),
            tuple(self._linear_acc_ms2[i]),
            tuple(self._gyro_rads[i]),
        )

    def data_block(self, t_s: float, encoding: DataEncoding) -> bytes:
        """The 44 bytes of registers 0x08..0x33 at ``t_s``."""
        blocks = self._blocks.get(encoding)
        if blocks is None:
            if len(self._blocks) >= 4:
                self._blocks.clear()
            blocks = self._blocks[encoding] = encode_data_block(
                self._gravity_ms2, self._linear_acc_ms2, self._gyro_rads, encoding
            ).tobytes()
        k = self.index(t_s) * _DATA_SIZE
        return blocks[k : k + _DATA_SIZE]


class EmulatedBno055:
    """The BNO055 as its registers, on an ``EmulatedI2CBus`` at ``address``.

    ``source`` is a callable (or a ``WalkSignal``); ``clock`` the simulator's
    virtual clock. The chip starts powered and booted, in CONFIG mode.
    """

    def __init__(
        self,
        *,
        clock,
        source: Source,
        address: int = ADDRESS,
        temperature_c: int = 25,
        learned_offsets: bytes = DEFAULT_LEARNED_OFFSETS,
    ) -> None:
        if len(learned_offsets) != _OFFSETS_END - _OFFSETS_START:
            raise ValueError("learned_offsets must be 22 bytes")
        self.address = address
        self.temperature_c = temperature_c
        self.learned_offsets = bytes(learned_offsets)
        self._clock = clock
        self._source = source
        fast = getattr(source, "data_block", None)
        self._data_block = fast if fast is not None else self._encode_from_call
        self.resets = -1  # RST_SYS, scheduled resets and power cycles so far (boot below counts)
        self._freezes: list[tuple[float, float]] = []  # (from_s, until_s), sorted
        self._frozen_block: bytes | None = None
        self._boot(ready_at_s=clock.monotonic())

    # -- the bus side ----------------------------------------------------------------
    def i2c_write(self, data) -> None:
        """One write message: register address, then bytes for it and the following ones."""
        now_s = self._clock.monotonic()
        if now_s < self._busy_until_s:
            raise _nack()
        if not data:
            return  # address-only probe
        register = data[0]
        for value in data[1:]:
            self._write_register(register, value, now_s)
            register += 1
        self._pointer = register & 0x7F if len(data) > 1 else data[0]

    def i2c_read(self, n: int) -> bytearray:
        """One read message: ``n`` bytes from the register pointer on, auto-incrementing."""
        now_s = self._clock.monotonic()
        if now_s < self._busy_until_s:
            raise _nack()
        start = self._pointer
        end = start + n
        if self._page == 0:
            if start <= _CALIB_STAT and end > _DATA_START:
                self._refresh_outputs(now_s)
            out = self._page0[start:end]
            if start < _OFFSETS_END and end > _OFFSETS_START and not self._config_ready(now_s):
                lo, hi = max(start, _OFFSETS_START) - start, min(end, _OFFSETS_END) - start
                out[lo:hi] = bytes(hi - lo)  # offsets read as zero outside CONFIG mode
        else:
            out = self._page1[start:end]
        if len(out) < n:
            out += bytes(n - len(out))
        self._pointer = end & 0x7F
        return out

    # -- faults the bus drives -------------------------------------------------------
    def reset(self, *, at_s: float) -> None:
        """A spontaneous reset at ``at_s`` (brown-out, watchdog): busy 650 ms, then CONFIG."""
        self._boot(ready_at_s=at_s + BOOT_S)

    def power_cycle(self, *, off_at_s: float, on_at_s: float) -> None:
        """Power lost at ``off_at_s`` and back at ``on_at_s``; answers 650 ms later."""
        self._boot(ready_at_s=max(off_at_s, on_at_s) + BOOT_S)

    def freeze(self, *, from_s: float, until_s: float) -> None:
        """From ``from_s`` to ``until_s`` the data registers repeat the same bytes (resets do not help)."""
        self._freezes = sorted([*self._freezes, (from_s, until_s)])

    # -- inspection for tests (no side effects on the register pointer) --------------
    @property
    def mode(self) -> int:
        return self._mode

    @property
    def offsets(self) -> bytes:
        """The 22 offset + radius bytes as stored, whatever the mode."""
        return bytes(self._page0[_OFFSETS_START:_OFFSETS_END])

    @property
    def offsets_restored(self) -> bool:
        """True once offsets were written in CONFIG mode since the last reset."""
        return self._restored

    def calibration_status(self) -> int:
        """CALIB_STAT now: sys, gyr, acc, mag, 2 bits each."""
        return self._calibration_byte(self._clock.monotonic())

    def register(self, address: int, *, page: int = 0) -> int:
        return (self._page1 if page else self._page0)[address]

    @property
    def page(self) -> int:
        """The register page selected now (0 after a reset)."""
        return self._page

    # -- internals -------------------------------------------------------------------
    def _boot(self, *, ready_at_s: float) -> None:
        self.resets += 1
        self._busy_until_s = ready_at_s
        self._page0 = bytearray(0x80)
        self._page1 = bytearray(0x80)
        for reg, value in _PAGE0_DEFAULTS.items():
            self._page0[reg] = value
        for reg, value in _PAGE1_DEFAULTS.items():
            self._page1[reg] = value
        self._page1[_UNIQUE_ID : _UNIQUE_ID + len(DEFAULT_UNIQUE_ID)] = DEFAULT_UNIQUE_ID
        self._page = 0
        self._pointer = 0
        self._mode = CONFIG_MODE
        self._mode_ready_s = ready_at_s
        self._fusion_before_s = 0.0  # fusion running time before the current interval
        self._fusion_start_s: float | None = None
        self._restored = False
        self._learned = False
        # ((mode, restored), valid below fusion s, byte)
        self._calibration_cache: tuple[tuple[int, bool] | None, float, int] = (None, 0.0, 0)
        self._update_encoding()

    def _config_ready(self, now_s: float) -> bool:
        return self._mode == CONFIG_MODE and now_s >= self._mode_ready_s

    def _write_register(self, reg: int, value: int, now_s: float) -> None:
        if reg == _PAGE_ID:
            self._page = value & 1
            self._page0[_PAGE_ID] = self._page
            return
        if self._page == 1:
            if reg in _PAGE1_WRITABLE and self._config_ready(now_s):
                self._page1[reg] = value
            return
        if reg == _OPR_MODE:
            self._set_mode(value & 0x0F, now_s)
        elif reg == _SYS_TRIGGER:
            if value & 0x20:  # RST_SYS
                self._boot(ready_at_s=now_s + BOOT_S)
            else:
                self._page0[reg] = value & 0x80  # CLK_SEL; the other bits are triggers
        elif reg in _CONFIG_ONLY_PAGE0:
            if self._config_ready(now_s):
                self._page0[reg] = value
                if reg == _UNIT_SEL:
                    self._update_encoding()
                elif _OFFSETS_START <= reg < _OFFSETS_END:
                    self._restored = True
        elif reg == _AXIS_MAP_CONFIG:
            axes = {(value >> shift) & 3 for shift in (0, 2, 4)}
            if self._config_ready(now_s) and axes == {0, 1, 2}:  # invalid: keep the previous map
                self._page0[reg] = value & 0x3F
                self._update_encoding()
        elif reg == _AXIS_MAP_SIGN:
            if self._config_ready(now_s):
                self._page0[reg] = value & 0x07
                self._update_encoding()
        # everything else is read-only or reserved: ignored

    def _set_mode(self, mode: int, now_s: float) -> None:
        if mode > NDOF_MODE or mode == self._mode:
            return
        if self._fusion_start_s is not None:
            self._fusion_before_s += max(0.0, now_s - self._fusion_start_s)
            self._fusion_start_s = None
        self._mode = mode
        self._page0[_OPR_MODE] = mode
        if mode == CONFIG_MODE:
            self._mode_ready_s = now_s + TO_CONFIG_S
            self._page0[_SYS_STATUS] = 0  # idle
        else:
            self._mode_ready_s = now_s + TO_OPERATION_S
            fusion = mode in _FUSION_MODES
            if fusion:
                self._fusion_start_s = self._mode_ready_s
            self._page0[_SYS_STATUS] = 5 if fusion else 6
        self._update_encoding()

    def _update_encoding(self) -> None:
        regs, mode = self._page0, self._mode
        self._encoding = DataEncoding(
            regs[_AXIS_MAP_CONFIG],
            regs[_AXIS_MAP_SIGN],
            regs[_UNIT_SEL],
            mode in _ACC_MODES,
            mode in _GYR_MODES,
            mode in _FUSION_MODES,
        )
        unit_f = regs[_UNIT_SEL] & 0x10
        temp = round((self.temperature_c * 9 / 5 + 32) / 2) if unit_f else self.temperature_c
        self._temperature_byte = temp & 0xFF

    def _encode_from_call(self, t_s: float, encoding: DataEncoding) -> bytes:
        gravity, linear, gyro = self._source(t_s)
        return encode_data_block(gravity, linear, gyro, encoding).tobytes()

    def _refresh_outputs(self, now_s: float) -> None:
        regs = self._page0
        if self._mode != CONFIG_MODE and now_s >= self._mode_ready_s:
            freezes = self._freezes
            while freezes and freezes[0][1] <= now_s:
                freezes.pop(0)
                self._frozen_block = None
            if freezes and freezes[0][0] <= now_s:
                if self._frozen_block is None:
                    self._frozen_block = self._data_block(now_s, self._encoding)
                regs[_DATA_START:_DATA_END] = self._frozen_block
            else:
                regs[_DATA_START:_DATA_END] = self._data_block(now_s, self._encoding)
            regs[_TEMP] = self._temperature_byte
        else:
            regs[_DATA_START:_CALIB_STAT] = _ZEROS
        regs[_CALIB_STAT] = self._calibration_byte(now_s)

    def _calibration_byte(self, now_s: float) -> int:
        fusion_s = self._fusion_before_s
        if self._fusion_start_s is not None and now_s > self._fusion_start_s:
            fusion_s += now_s - self._fusion_start_s
        key = (self._mode, self._restored)
        cached_key, valid_until_s, byte = self._calibration_cache
        if key == cached_key and fusion_s < valid_until_s:
            return byte
        speed = RESTORED_SPEEDUP if self._restored else 1.0
        thresholds_s = (GYRO_CALIBRATION_S, ACCEL_CALIBRATION_S, MAG_CALIBRATION_S)
        gyr, acc, mag = (sum(fusion_s * speed >= t for t in ts) for ts in thresholds_s)
        if self._mode == IMUPLUS_MODE:
            mag = system = 0
            complete = gyr == acc == 3
        else:
            system = min(gyr, acc, mag)
            complete = system == 3
        if complete and not self._learned and not self._restored:
            self._page0[_OFFSETS_START:_OFFSETS_END] = self.learned_offsets
        self._learned = self._learned or complete
        byte = system << 6 | gyr << 4 | acc << 2 | mag
        later_s = [t / speed for ts in thresholds_s for t in ts if t > fusion_s * speed]
        self._calibration_cache = (key, min(later_s, default=math.inf), byte)
        return byte


class _DriverTime:
    """Stands in for ``time`` inside adafruit_bno055: ``sleep`` advances the virtual clock."""

    def __init__(self, clock) -> None:
        self._clock = clock

    def sleep(self, duration_s: float) -> None:
        self._clock.sleep_until(self._clock.monotonic() + max(0.0, duration_s))

    def __getattr__(self, name: str):
        return getattr(time, name)


class DriverSleepPatch:
    """``adafruit_bno055.time`` replaced until ``restore()`` (or the end of a ``with`` block)."""

    def __init__(self, clock) -> None:
        import adafruit_bno055

        self._module = adafruit_bno055
        self._saved = adafruit_bno055.time
        adafruit_bno055.time = _DriverTime(clock)

    def restore(self) -> None:
        if self._saved is not None:
            self._module.time = self._saved
            self._saved = None

    def __enter__(self) -> DriverSleepPatch:
        return self

    def __exit__(self, *exc_info) -> None:
        self.restore()


def patch_driver_sleep(clock) -> DriverSleepPatch:
    """Make the driver's ``time.sleep`` (0.7 s at reset, 10-20 ms at mode switches) virtual.

    Patches at once; use as ``with patch_driver_sleep(clock): ...`` or keep the
    returned handle and call ``restore()``.
    """
    return DriverSleepPatch(clock)
