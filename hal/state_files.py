"""Files in the state and runtime directories, opened without following symlinks.

In ``hal`` because both the shell (``device/``: status, saved session, last-good config,
locks) and the sensor driver (the BNO055's saved calibration offsets) keep files there.

``/var/lib/walkcoach`` and ``/run/walkcoach`` belong to the service user. A command run
as root (``sudo walkcoach calibrate``, ``sudo walkcoach run``, ``sudo walkcoach config
set``) that followed a symlink planted there could overwrite or read any file on the
system, so every open of a file in them goes through here: ``O_NOFOLLOW`` on the last
component (the directories themselves sit in root-owned parents), and a symlink or
anything but a regular file is refused with :class:`UnsafeFile`, whose message is one
line naming the file.

Atomic writes create their temp file with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and the
final mode (the umask can only narrow it; ``fchmod`` sets it exactly before any data is
written), then rename it over the target: a rename replaces a planted symlink itself
and never writes through it. A file is never, even for a moment, wider than its mode.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFile(OSError):
    """A path in the state or runtime directory is a symlink or not a regular file."""


def _refuse(path: Path, what: str) -> UnsafeFile:
    return UnsafeFile(errno.ELOOP, f"refusing {path}: {what} (a file there must be a regular file, not a link)")


def open_nofollow(path: Path | str, flags: int, mode: int = 0o600) -> int:
    """``os.open`` that refuses a symlink (and, once open, anything but a regular file)."""
    path = Path(path)
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "it is a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, "it is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str, max_bytes: int = 1 << 20) -> bytes:
    """The bytes of a regular file (at most ``max_bytes``); UnsafeFile for a symlink, FIFO, directory."""
    fd = open_nofollow(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(max_bytes)


def write_atomic(path: Path | str, data: bytes, *, mode: int = 0o600, durable: bool = False,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` atomically; the file is created with ``mode`` and never wider.
    ``durable``: the data and the rename reach the disk before this returns (fsync of file and directory).
    ``owner``: (uid, gid) the new file is given before the rename (an edited file keeps its owner)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.unlink(temp)  # a leftover of a killed writer with this PID (or a planted link): never opened
    except FileNotFoundError:
        pass
    fd = open_nofollow(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            if owner is not None:
                now = os.fstat(handle.fileno())
                if (now.st_uid, now.st_gid) != owner:
                    os.fchown(handle.fileno(), *owner)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temp, path)
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


@contextlib.contextmanager
def exclusive_lock(path: Path | str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing, 0600, never through a symlink)."""
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
