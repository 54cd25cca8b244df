"""Reading a recording's rows in bounded chunks, strictly: straight into float arrays.

A file is read in blocks of about ``CHUNK_BYTES`` of whole lines. A block's
rows are parsed by numpy's C reader (``np.loadtxt`` on the block's lines);
anything it does not take (a comment, a blank line, a bad field) sends that
block through the line-by-line reader, which names the line and what is wrong.
Memory: one block's text, its lines and its arrays, whatever the file's length.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from walkcoach.device.shell.recording import RecordingError

CHUNK_BYTES = 1 << 20  # ~40 000 rows of a 4-column CSV
_BUTTON_MARK = re.compile(r"#\s*button\s+t=(\S+)\s+pressed=([01])\s*$")


def shown(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:27] + "...")


class LineSource:
    """The file's lines, decoded strictly as UTF-8, one at a time (the header) or a block at a time (the rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = open(path, "rb")
        except IsADirectoryError:
            raise RecordingError("is a directory, not a recording", path=path) from None
        except OSError as exc:
            raise RecordingError(f"cannot read: {exc.strerror or exc}", path=path) from None
        try:
            self.size_bytes = os.fstat(self._file.fileno()).st_size
        except OSError:
            self.size_bytes = 0
        self.bytes_read = 0
        self._next_line = 1
        self._carry = b""
        self._lines: list[str] = []  # the current block's lines
        self._pos = 0  # the next of them to hand out
        self._first = 0  # line number of self._lines[0]
        self._last_complete = True  # whether the current block's last line ended with a newline
        self._eof = False

    def close(self) -> None:
        self._file.close()

    def _read_block(self) -> bool:
        """Load the next block of whole lines into self._lines; False at the end of the file."""
        if self._eof:
            return False
        data = self._carry
        while True:
            more = self._file.read(CHUNK_BYTES)
            self.bytes_read += len(more)
            data += more
            cut = data.rfind(b"\n")
            if not more:
                raw, self._carry, complete = data, b"", True
                self._eof = True
                if not raw:
                    return False
                if not raw.endswith(b"\n"):
                    complete = False
                    raw += b"\n"
                break
            if cut >= 0:
                raw, self._carry, complete = data[: cut + 1], data[cut + 1 :], True
                break
        first = self._next_line
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = first + raw.count(b"\n", 0, exc.start)
            line_start = raw.rfind(b"\n", 0, exc.start) + 1
            raise RecordingError(
                f"not text: byte 0x{raw[exc.start]:02x} at column {exc.start - line_start + 1}", path=self.path, line=line
            ) from None
        if first == 1:
            text = text.lstrip("\ufeff")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # after the last newline
        self._lines, self._pos, self._first, self._last_complete = lines, 0, first, complete
        self._next_line = first + len(lines)
        return True

    def next_line(self):
        """(line number, text, complete) of the next line, or None at the end."""
        while self._pos >= len(self._lines):
            if not self._read_block():
                return None
        text = self._lines[self._pos]
        number = self._first + self._pos
        self._pos += 1
        complete = self._last_complete or self._pos < len(self._lines)
        return number, text, complete

    def first_content_line(self, missing: str = "empty file", line: int | None = None) -> tuple[int, str]:
        while (item := self.next_line()) is not None:
            number, text, _ = item
            if text.strip():
                return number, text
        raise RecordingError(missing, path=self.path, line=line)

    def blocks(self):
        """(first line number, lines, last line complete) for the rest of the file."""
        if self._pos < len(self._lines):
            lines, first = self._lines[self._pos :], self._first + self._pos
            self._lines, self._pos = [], 0
            yield first, lines, self._last_complete
        while self._read_block():
            lines, self._lines = self._lines, []
            yield self._first, lines, self._last_complete


@dataclass
class Chunk:
    """Parsed rows: values (n, k) in the table's column order, their line numbers, the comment lines among them."""

    values: np.ndarray
    lines: np.ndarray
    marks: list[tuple[int, str]] = field(default_factory=list)


class TableParser:
    """Rows of chosen numeric columns, validated strictly; see the module docstring."""

    def __init__(self, path: Path, names: list[str], indices: list[int], n_fields: int, delimiter: str) -> None:
        self.path = path
        self.names = names
        self.indices = indices
        self.n_fields = n_fields
        self.delimiter = delimiter
        self.cut_off_line: int | None = None
        self.rows_parsed = 0

    def parse(self, first_line: int, lines: list[str], last_complete: bool) -> Chunk:
        last = None
        if not last_complete and lines:
            last = lines.pop()
        chunk = self._fast(first_line, lines)
        if chunk is None:
            chunk = self._slow(first_line, lines)
        if last is not None:  # the last line, cut off mid-write: dropped with a warning if it does not parse
            number = first_line + len(lines)
            try:
                tail = self._slow(number, [last])
            except RecordingError:
                self.cut_off_line = number
            else:
                chunk = Chunk(
                    np.concatenate([chunk.values, tail.values]), np.concatenate([chunk.lines, tail.lines]), chunk.marks + tail.marks
                )
        self.rows_parsed += len(chunk.values)
        return chunk

    def _fast(self, first_line: int, lines: list[str]) -> Chunk | None:
        n = len(lines)
        if n == 0:
            return Chunk(np.empty((0, len(self.indices))), np.empty(0, dtype=np.int64))
        if lines[0].lstrip().startswith("#") or lines[-1].lstrip().startswith("#"):
            return None
        delimiter = self.delimiter
        try:
            values = np.loadtxt(
                lines, delimiter=delimiter, usecols=self.indices, dtype=float, comments=None, ndmin=2, quotechar=None
            )
        except ValueError:
            return None
        if values.shape[0] != n:  # comments or blank lines were skipped: the line numbers need the slow path
            return None
        if "".join(lines).count(delimiter) != n * (self.n_fields - 1):  # (one C count: the lines hold no newlines)
            return None  # a row with the wrong number of fields
        return Chunk(values, np.arange(first_line, first_line + n, dtype=np.int64))

    def _slow(self, first_line: int, lines: list[str]) -> Chunk:
        rows: list[list[float]] = []
        numbers: list[int] = []
        marks: list[tuple[int, str]] = []
        delimiter, n_fields, indices = self.delimiter, self.n_fields, self.indices
        for number, text in enumerate(lines, start=first_line):
            if not text.strip():
                continue
            if text.lstrip().startswith("#"):
                marks.append((number, text.strip()))
                continue
            parts = text.split(delimiter)
            if len(parts) != n_fields:
                raise RecordingError(f"{len(parts)} field(s), the header has {n_fields}", path=self.path, line=number)
            try:
                rows.append([float(parts[i]) for i in indices])
            except ValueError:
                for name, i in zip(self.names, indices, strict=True):
                    field_text = parts[i].strip()
                    try:
                        float(field_text)
                    except ValueError:
                        what = "is empty" if not field_text else f"{shown(field_text)} is not a number"
                        raise RecordingError(f"column {name!r} {what}", path=self.path, line=number) from None
                raise
            numbers.append(number)
        values = np.asarray(rows, dtype=float).reshape(len(rows), len(indices))
        return Chunk(values, np.asarray(numbers, dtype=np.int64), marks)

    def check_finite(self, chunk: Chunk) -> None:
        finite = np.isfinite(chunk.values)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise RecordingError(
                f"column {self.names[col]!r} is {float(chunk.values[row, col])!r}, not a finite number",
                path=self.path, line=int(chunk.lines[row]),
            )


class TimeOrder:
    """Time must advance (or, in a walkcoach recording, may stand still), checked across chunks."""

    def __init__(self, path: Path, *, repeats_allowed: bool) -> None:
        self.path = path
        self.repeats_allowed = repeats_allowed
        self._last_t: float | None = None
        self._last_line = 0

    def check(self, t: np.ndarray, lines: np.ndarray) -> None:
        if len(t) == 0:
            return
        if self._last_t is not None:
            t = np.concatenate([[self._last_t], t])
            lines = np.concatenate([[self._last_line], lines])
        steps = np.diff(t)
        bad = np.flatnonzero(steps < 0.0 if self.repeats_allowed else steps <= 0.0)
        if len(bad):
            i = bad[0] + 1
            if steps[bad[0]] == 0.0:
                why = f"time {t[i]:g} s repeats the previous sample's (line {lines[i - 1]})"
            else:
                why = f"time goes backwards: {t[i]:g} s after {t[i - 1]:g} s (line {lines[i - 1]})"
            raise RecordingError(why, path=self.path, line=int(lines[i]))
        self._last_t, self._last_line = float(t[-1]), int(lines[-1])


def button_marks(path: Path, marks: list[tuple[int, str]]) -> list[tuple[float, bool]]:
    button = []
    for mark_line, text in marks:
        if text.startswith("# button") or text.startswith("#button"):
            m = _BUTTON_MARK.match(text)
            if m is None:
                raise RecordingError(f"malformed button mark {shown(text)}", path=path, line=mark_line)
            try:
                button.append((float(m.group(1)), m.group(2) == "1"))
            except ValueError:
                raise RecordingError(f"button mark time {m.group(1)!r} is not a number", path=path, line=mark_line) from None
    return button
