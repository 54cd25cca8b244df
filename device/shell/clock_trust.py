"""When the belt may believe its wall clock: a Raspberry Pi has no battery-backed clock.

At boot a Pi's clock says 1970, or whatever ``fake-hwclock`` saved at the last shutdown
(days or months stale if the belt sat in a drawer), until NTP sets it, if there is a
network at all. So:

- Inside a session everything runs on the monotonic clock (the loop's, and
  ``time.monotonic()`` on the host, which counts from boot and never jumps).
- The wall clock is **synchronized** once systemd-timesyncd says so (it creates
  ``/run/systemd/timesync/synchronized`` when it has set the clock from NTP).
- Without that signal it is **plausible** if it is after :data:`EARLIEST_PLAUSIBLE_DATE`
  (no walkcoach ran before it) and not behind the last stored session: an offline belt
  (a walk outdoors has no Wi-Fi) with fake-hwclock only loses its powered-off time.
- Otherwise it is **unsynchronized**: the plan uses the last date it knows instead of
  today (never a date from 1970, which once gave week 2970 and the 30-minute maximum).

Every stored session carries the host's boot id and ``wall - monotonic`` it was dated
with (``device.store``). A session not dated by a synchronized clock is re-dated when
the clock of the same boot becomes trustworthy (or moves while plausible): its rows are
shifted by the change of that offset, which is exact because both readings are of one
monotonic clock. A session of an earlier boot never synchronized keeps its date.

Every source (wall, monotonic, boot id, the timesyncd flag, the earliest date) is
injectable, so tests set the clock to 1970 or 150 days stale and then "synchronize".
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from walkcoach.device.core.plan import EARLIEST_PLAUSIBLE_DATE

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
SYNCHRONIZED, PLAUSIBLE, UNSYNCHRONIZED = "synchronized", "plausible", "unsynchronized"
LAST_SESSION_SLACK_S = 60.0  # "behind the last stored session" by more than this (rounding, a short stop)
FLAG_CHECK_EVERY_S = 10.0  # tick_reading() looks at timesyncd's flag this often (monotonic seconds) until it appears


def read_boot_id(path: Path = BOOT_ID_PATH) -> str:
    """The kernel's id of this boot (a fresh random one per process where there is none)."""
    try:
        return path.read_text().strip() or f"process-{uuid.uuid4()}"
    except OSError:
        return f"process-{uuid.uuid4()}"


def earliest_plausible_wall_s() -> float:
    return dt.datetime.combine(EARLIEST_PLAUSIBLE_DATE, dt.time()).astimezone().timestamp()


class Trust(NamedTuple):
    level: str  # SYNCHRONIZED | PLAUSIBLE | UNSYNCHRONIZED
    why: str

    @property
    def trusted(self) -> bool:
        return self.level != UNSYNCHRONIZED

    def to_json(self) -> dict:
        return {"trusted": self.trusted, "level": self.level, "why": self.why}


class ClockReading(NamedTuple):
    """What the host's clocks said at one moment: read on the loop's thread at a tick, judged later."""

    offset_s: float  # wall - monotonic
    wall_s: float
    synchronized: bool


class WallClock:
    """The host's wall and monotonic clocks and how far the wall clock can be trusted."""

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        boot_id: str | None = None,
        sync_flag: Path | str | Callable[[], bool] | None = TIMESYNC_FLAG,
        earliest_wall_s: float | None = None,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.boot_id = boot_id if boot_id is not None else read_boot_id()
        if sync_flag is None or callable(sync_flag):
            self._synchronized = sync_flag
        else:
            flag = Path(sync_flag)
            self._synchronized = lambda: os.path.lexists(flag)
        self.earliest_wall_s = earliest_plausible_wall_s() if earliest_wall_s is None else earliest_wall_s
        self._flag_seen = False  # tick_reading's: once synchronized, for the rest of the boot
        self._next_flag_check_s = -float("inf")

    def offset_s(self) -> float:
        """``wall - monotonic`` now: constant until someone sets the clock."""
        return self.wall() - self.monotonic()

    def reading(self) -> ClockReading:
        """The clocks now (the timesyncd flag's lstat and two clock reads: a few microseconds).

        The flag first: timesyncd sets the clock, then creates the flag, so a wall time read
        after seeing the flag is the synchronized one (read before, it could be the old one)."""
        synchronized = self._synchronized is not None and self._synchronized()
        wall = self.wall()
        return ClockReading(wall - self.monotonic(), wall, synchronized)

    def tick_reading(self) -> ClockReading:
        """:meth:`reading` for the loop's tick (the store's puts, about once a second): the flag's lstat
        (15-25 us after a stretch of Python on a virtual machine, where the two clock reads cost ~2) only
        every :data:`FLAG_CHECK_EVERY_S` and never again once the flag was seen. A reading may then call a
        synchronized clock unsynchronized for up to that long, never the reverse: the flag was seen
        before the wall clock was read. Meant for one thread (the loop's)."""
        mono = self.monotonic()
        if not self._flag_seen and mono >= self._next_flag_check_s:
            self._next_flag_check_s = mono + FLAG_CHECK_EVERY_S
            self._flag_seen = self._synchronized is not None and self._synchronized()
        wall = self.wall()
        return ClockReading(wall - mono, wall, self._flag_seen)

    def trust(self, last_stored_wall_s: float | None = None) -> Trust:
        return self.judge(self.reading(), last_stored_wall_s)

    def judge(self, reading: ClockReading, last_stored_wall_s: float | None = None) -> Trust:
        """How far the wall clock could be trusted when ``reading`` was taken."""
        if reading.synchronized:
            return Trust(SYNCHRONIZED, "synchronized (systemd-timesyncd)")
        wall = reading.wall_s
        if wall < self.earliest_wall_s:
            return Trust(UNSYNCHRONIZED, f"the clock says {_day(wall)}, before any walkcoach ran")
        if last_stored_wall_s is not None and wall < last_stored_wall_s - LAST_SESSION_SLACK_S:
            return Trust(UNSYNCHRONIZED, f"the clock says {_day(wall)}, behind the last stored session ({_day(last_stored_wall_s)})")
        return Trust(PLAUSIBLE, "not synchronized, but after the last stored session")


def _day(wall_s: float) -> str:
    try:
        return dt.datetime.fromtimestamp(wall_s).astimezone().strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return f"{wall_s:.0f} s after 1970"
