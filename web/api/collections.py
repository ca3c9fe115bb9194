"""Routes over whole collections: counts, and groups of near-identical images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from search.query.duplicates import DEFAULT_DUPLICATE_THRESHOLD
from search.schemas import DuplicatesResponse, StatsResponse
from web.deps import Engine

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["search"])


@router.get("/stats", response_model=StatsResponse, summary="Counts for the data directory")
def stats(engine: Engine) -> StatsResponse:
    return engine.stats()


@router.get(
    "/duplicates", response_model=DuplicatesResponse, summary="Groups of near-identical images"
)
def duplicates(
    engine: Engine,
    threshold: Annotated[
        float, Query(gt=0, le=1, description="Cosine similarity threshold.")
    ] = DEFAULT_DUPLICATE_THRESHOLD,
    collection: Annotated[str | None, Query(description="Only this collection.")] = None,
) -> DuplicatesResponse:
    return engine.duplicates(threshold=threshold, collection=collection)
