"""GET /api/v1/causes: the catalogue, so that clients and people can see what each code means."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from execdb.api.auth import ReadAccess
from execdb.api.deps import ServicesDep
from execdb.vocabulary import Blame

router = APIRouter(prefix="/api/v1", tags=["causes"])


class CausePublic(BaseModel):
    code: str
    family: str
    blame: Blame
    retryable: bool
    symptom: bool = Field(
        description="The cause says how a run ended, not why (status_file.missing ...): a "
        "crash reported with it is classified from its log, and no rule gives it."
    )
    description: str


class CauseList(BaseModel):
    data: list[CausePublic]


@router.get("/causes", response_model=CauseList, dependencies=[ReadAccess])
async def list_causes(services: ServicesDep) -> CauseList:
    """The crash-cause catalogue."""
    return CauseList(
        data=[
            CausePublic(
                code=c.code,
                family=c.family,
                blame=c.blame,
                retryable=c.retryable,
                symptom=c.symptom,
                description=c.description,
            )
            for c in services.catalogue.values()
        ]
    )
