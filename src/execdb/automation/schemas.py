"""What the API shows of deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from execdb.automation.models import Kind, Status


class DeliveryPublic(BaseModel):
    uuid: UUID = Field(description="Stable across attempts: receivers drop duplicates by it.")
    kind: Kind
    sink: str = Field(
        description="buildbot, webhook, webhook:NAME, email, or a bus message's topic."
    )
    recipients: list[str]
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
