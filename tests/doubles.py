"""Test doubles for the seams to the outside world (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from execdb.automation.senders import Sender


class RecordingSenders:
    """Stands in for execdb.automation.senders.Senders: every delivery is recorded as sent,
    except those for which `fails` raises (which the delivery then does)."""

    def __init__(self, fails: Callable[[Mapping[str, Any]], None] = lambda delivery: None):
        self.sent: list[Mapping[str, Any]] = []
        self.fails = fails

    def __call__(self, delivery: Mapping[str, Any]) -> Sender:
        return _Recording(self)


class _Recording:
    def __init__(self, senders: RecordingSenders) -> None:
        self.senders = senders

    async def send(self, delivery: Mapping[str, Any]) -> None:
        self.senders.fails(delivery)
        self.senders.sent.append(delivery)
