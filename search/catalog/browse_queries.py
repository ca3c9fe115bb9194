"""Catalog queries behind browsing without a query (`search.query.browse`): one page of the
images matching a filter set in a fixed order, the folders they lie in, the years and months
they were taken in, and per-collection counts by status.

Pages are read by keyset: each page starts strictly after the sort key of the previous page's
last row (`BrowseKey`), never at an offset, so rows inserted or deleted while someone scrolls
do not shift the pages (no duplicate, no gap). Every order ends in the catalog id, which makes
it total. Undated images sort after dated ones in both date orders.

Folders are computed in SQL as the stored path up to its last `/` (`rtrim(path, <path without
'/'>)` strips every character but the slash from the right: the same on SQLite and
PostgreSQL), grouped, so a collection of a million images in a thousand folders reads a
thousand rows. Paths sort byte-wise on both databases (collation "C" on PostgreSQL; SQLite's
default is binary), so a folder's images stay together in the path order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, extract, func, or_, select
from sqlalchemy.orm import Session

from search.browse_schemas import BrowseSort
from search.catalog.schema import Image

__all__ = [
    "BrowseKey",
    "folder_counts",
    "month_counts",
    "page_keys",
    "status_counts",
    "undated_count",
]


@dataclass(frozen=True, slots=True)
class BrowseKey:
    """Where a row sits in a browse order: its taken time (date orders) or stored path (path
    order), and its id. The values are kept as the database returned them, so comparing the
    next page against them compares like with like (SQLite holds naive UTC text)."""

    image_id: int
    taken_at: datetime | None = None
    path: str | None = None


def _path_column(dialect: str) -> Any:  # a column, or it with a collation
    return Image.path.collate("C") if dialect == "postgresql" else Image.path


def _order_by(sort: BrowseSort, dialect: str) -> list[Any]:
    if sort == "path":
        return [_path_column(dialect).asc(), Image.id.asc()]
    undated_last = Image.taken_at.is_(None).asc()
    if sort == "date_asc":
        return [undated_last, Image.taken_at.asc(), Image.id.asc()]
    return [undated_last, Image.taken_at.desc(), Image.id.desc()]


def _after(key: BrowseKey, sort: BrowseSort, dialect: str) -> ColumnElement[bool]:
    """Rows strictly after `key` in the `sort` order."""
    if sort == "path":
        path = _path_column(dialect)
        return or_(path > key.path, and_(path == key.path, Image.id > key.image_id))
    newest_first = sort == "date_desc"
    next_id = Image.id < key.image_id if newest_first else Image.id > key.image_id
    if key.taken_at is None:  # among the undated rows, which come last
        return and_(Image.taken_at.is_(None), next_id)
    later = Image.taken_at < key.taken_at if newest_first else Image.taken_at > key.taken_at
    return or_(Image.taken_at.is_(None), later, and_(Image.taken_at == key.taken_at, next_id))


def page_keys(
    session: Session,
    matching: ColumnElement[bool],
    *,
    sort: BrowseSort,
    dialect: str,
    after: BrowseKey | None,
    limit: int,
) -> list[BrowseKey]:
    """The sort keys of at most `limit` rows `matching` selects, in `sort` order, after `after`
    (from the first row when None)."""
    query = select(Image.id, Image.taken_at, Image.path).where(matching)
    if after is not None:
        query = query.where(_after(after, sort, dialect))
    query = query.order_by(*_order_by(sort, dialect)).limit(limit)
    keys = []
    for image_id, taken_at, path in session.execute(query):
        if sort == "path":
            keys.append(BrowseKey(int(image_id), path=path))
        else:
            keys.append(BrowseKey(int(image_id), taken_at=taken_at))
    return keys


def folder_counts(session: Session, matching: ColumnElement[bool]) -> dict[str, int]:
    """Stored folder (with its trailing `/`) -> images directly in it, of the rows selected."""
    folder = func.rtrim(Image.path, func.replace(Image.path, "/", "")).label("folder")
    query = select(folder, func.count()).where(matching).group_by(folder)
    return {str(name): int(count) for name, count in session.execute(query)}


def _part_of_taken_at(part: str, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":  # the session's zone would shift photos taken near midnight
        return extract(part, func.timezone("UTC", Image.taken_at))
    return extract(part, Image.taken_at)  # SQLite holds the UTC text it was given


def month_counts(
    session: Session, matching: ColumnElement[bool], dialect: str
) -> dict[int, dict[int, int]]:
    """Year -> month -> images taken then (UTC), of the rows selected that have a taken time."""
    year = _part_of_taken_at("year", dialect).label("year")
    month = _part_of_taken_at("month", dialect).label("month")
    query = (
        select(year, month, func.count())
        .where(matching, Image.taken_at.is_not(None))
        .group_by(year, month)
    )
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    for y, m, n in session.execute(query):
        counts[int(y)][int(m)] = int(n)
    return dict(counts)


def undated_count(session: Session, matching: ColumnElement[bool]) -> int:
    """How many of the rows selected have no taken time."""
    query = select(func.count()).select_from(Image).where(matching, Image.taken_at.is_(None))
    return int(session.scalar(query) or 0)


def status_counts(session: Session) -> dict[int, dict[str, int]]:
    """Collection id -> status -> images, for every collection with images."""
    query = select(Image.collection_id, Image.status, func.count()).group_by(
        Image.collection_id, Image.status
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for collection_id, status, n in session.execute(query):
        counts[int(collection_id)][str(status)] = int(n)
    return dict(counts)
