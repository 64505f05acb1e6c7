"""Bounded reads of a log: only its tail is classified, cut on a line boundary.

A crashed run's log ends with what went wrong; its first megabytes are the task's business.
Reading a bounded tail keeps memory and time fixed whatever the file's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

TAIL_BYTES = 256 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Tail:
    text: bytes
    skipped: int  # bytes before the tail that were not read or were dropped


def cut(data: bytes, limit: int = TAIL_BYTES, *, skipped: int = 0) -> Tail:
    """The last `limit` bytes of `data`, starting on a line boundary.

    When the cut falls inside a line, that partial line is dropped, unless it is the only
    line there is (one huge line is still worth a look).
    """
    if len(data) <= limit:
        return Tail(data, skipped)
    start = len(data) - limit
    if data[start - 1 : start] != b"\n":
        newline = data.find(b"\n", start)
        if 0 <= newline < len(data) - 1:
            start = newline + 1
    return Tail(data[start:], skipped + start)


def read_tail(stream: BinaryIO, limit: int = TAIL_BYTES) -> Tail:
    """The tail of a file or a pipe: a regular file is read from `limit` bytes before its
    end; anything else is read through, keeping only the last `limit` bytes in memory."""
    try:
        size = os.fstat(stream.fileno()).st_size
        seekable = stream.seekable() and size > 0
    except (OSError, ValueError):
        seekable = False
    if seekable:
        # One byte more than the tail, to see whether the cut falls on a line boundary.
        start = max(0, size - limit - 1)
        stream.seek(start)
        return cut(stream.read(limit + 1), limit, skipped=start)
    kept = bytearray()
    dropped = 0
    while chunk := stream.read(_CHUNK):
        kept += chunk
        if len(kept) > 2 * limit:
            excess = len(kept) - limit - 1
            del kept[:excess]
            dropped += excess
    return cut(bytes(kept), limit, skipped=dropped)
