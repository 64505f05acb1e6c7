"""Time-ordered UUIDs (RFC 9562 version 7), so new jobs land at the end of the uuid index."""

from __future__ import annotations

import os
import time
import uuid


def uuid7(now_ns: int | None = None) -> uuid.UUID:
    """48 bits of Unix milliseconds, 12 bits of sub-millisecond time, 62 random bits."""
    ns = time.time_ns() if now_ns is None else now_ns
    ms, sub_ms = divmod(ns, 1_000_000)
    frac = sub_ms * 4096 // 1_000_000
    rand = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | frac << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)
