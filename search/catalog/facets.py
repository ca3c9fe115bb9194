"""Facet counts for filter chips: how many images matching a filter set fall in each
collection, year, camera, tag and file type (`Catalog.facets`).

Years are those of `taken_at` in UTC, the zone it is stored in (on PostgreSQL the session's
zone would otherwise shift photos taken near midnight on 31 December). Cameras are counted by
the name results show (`search.images.metadata.camera_label`), which a `camera` filter takes
back. Images lacking a field (no taken time, no camera, untagged) count in `total` only.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, Select, desc, func, select
from sqlalchemy.orm import Session

from search.catalog.schema import Collection, Image, ImageTag
from search.images.metadata import camera_label
from search.schemas import FacetCount, FacetsResponse

__all__ = ["MAX_CAMERAS", "MAX_TAGS", "facet_counts"]

MAX_TAGS = 20  # the most frequent tags
MAX_CAMERAS = 50


def facet_counts(session: Session, matching: ColumnElement[bool], dialect: str) -> FacetsResponse:
    """The facets of the images `matching` selects (a `search.catalog.filters` clause)."""
    total = session.scalar(select(func.count()).select_from(Image).where(matching)) or 0
    return FacetsResponse(
        total=int(total),
        collections=_counts(
            session,
            select(Collection.name, func.count())
            .select_from(Image)
            .join(Collection, Image.collection_id == Collection.id)
            .where(matching)
            .group_by(Collection.name)
            .order_by(Collection.name),
        ),
        years=_years(session, matching, dialect),
        cameras=_cameras(session, matching),
        tags=_counts(
            session,
            select(ImageTag.label, func.count())
            .join(Image, Image.id == ImageTag.image_id)
            .where(matching)
            .group_by(ImageTag.label)
            .order_by(desc(func.count()), ImageTag.label)
            .limit(MAX_TAGS),
        ),
        file_types=_counts(
            session,
            select(Image.file_type, func.count())
            .where(matching, Image.file_type.is_not(None))
            .group_by(Image.file_type)
            .order_by(desc(func.count()), Image.file_type),
        ),
    )


def _counts(session: Session, query: Select[Any, Any]) -> list[FacetCount]:
    return [
        FacetCount(value=str(value), count=int(count)) for value, count in session.execute(query)
    ]


def _year_of_taken_at(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("year", func.timezone("UTC", Image.taken_at))
    return func.extract("year", Image.taken_at)  # SQLite holds the UTC text it was given


def _years(session: Session, matching: ColumnElement[bool], dialect: str) -> list[FacetCount]:
    year = _year_of_taken_at(dialect).label("year")
    query = (
        select(year, func.count())
        .where(matching, Image.taken_at.is_not(None))
        .group_by(year)
        .order_by(year)
    )
    return [FacetCount(value=str(int(y)), count=int(n)) for y, n in session.execute(query)]


def _cameras(session: Session, matching: ColumnElement[bool]) -> list[FacetCount]:
    query = (
        select(Image.camera_make, Image.camera_model, func.count())
        .where(matching)
        .group_by(Image.camera_make, Image.camera_model)
    )
    counts: Counter[str] = Counter()
    for make, model, count in session.execute(query):
        label = camera_label(make, model)
        if label:
            counts[label] += int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_CAMERAS]
    return [FacetCount(value=label, count=count) for label, count in ranked]
