"""Reading files that a runner left behind, without hanging and without reading too much.

A path handed to the executor may name a FIFO (reading it blocks until someone writes),
/dev/zero (never ends) or a 100 MB log. Only regular files are read: the file is opened with
O_NONBLOCK, so opening a FIFO returns at once, and fstat decides before any byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from execdb.client.text import MARKER

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path names something other than a regular file; the message says what."""


def read_head(path: Path, max_bytes: int) -> bytes:
    """At most `max_bytes` from the start of the regular file at `path`.

    Raises NotRegularFile, or OSError when the file cannot be opened or read.
    """
    fd = _open_regular(path)
    try:
        return _pread(fd, max_bytes, 0)
    finally:
        os.close(fd)


def read_text(path: Path, max_bytes: int) -> str:
    """The regular file at `path` as text, at most about `max_bytes` of it.

    A longer file is cut as execdb.client.text.shorten cuts text (head and tail around its
    marker), reading only the two ends. Bytes that are not UTF-8 become U+FFFD.
    """
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size <= max_bytes:
            return _pread(fd, max_bytes, 0).decode("utf-8", "replace")
        kept = (max_bytes - len(MARKER) - 32) // 2
        head = _whole_characters(_pread(fd, kept, 0), at_end=True)
        tail = _whole_characters(_pread(fd, kept, size - kept), at_end=False)
    finally:
        os.close(fd)
    marker = MARKER.format(omitted=size - 2 * kept, kept=kept)
    return head.decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace")


def read_tail(path: Path, max_bytes: int) -> str:
    """The end of the regular file at `path` as text: its last `max_bytes` at most, starting
    on a line boundary (a partial first line is dropped, unless it is the only line). Only
    the tail is read, whatever the file's size; bytes that are not UTF-8 become U+FFFD.
    """
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        # One byte more than the tail, to see whether the cut falls on a line boundary.
        start = max(0, size - max_bytes - 1)
        data = _pread(fd, size - start, start)
    finally:
        os.close(fd)
    return tail_text(data, max_bytes)


def tail_text(data: bytes, max_bytes: int) -> str:
    """The last `max_bytes` of `data` as text. When that cuts `data`, it starts on a line
    boundary: a partial first line is dropped, unless it is the only line. (To see whether
    the cut falls on a boundary, pass one byte more than `max_bytes` of a longer stream.)
    Bytes that are not UTF-8 become U+FFFD."""
    if len(data) > max_bytes:
        cut = len(data) - max_bytes
        newline = data.find(b"\n", cut - 1)
        data = data[newline + 1 :] if 0 <= newline < len(data) - 1 else data[cut:]
    return _whole_characters(data, at_end=False).decode("utf-8", "replace")


def _open_regular(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise NotRegularFile(f"it is {kind}, not a regular file")
    return fd


def _pread(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 20), offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _whole_characters(data: bytes, *, at_end: bool) -> bytes:
    """`data` without the piece of a UTF-8 character that the cut split at its end or start."""
    if not at_end:
        skip = 0
        while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
            skip += 1
        return data[skip:]
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte: is its character whole?
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= length else data[:-back]
    return data
