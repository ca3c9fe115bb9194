"""Exact metadata filters as SQL: a `SearchFilters` becomes one where-clause over `images`.

Every filter is exact (a result matches all of them, or it is not a result), and only
`embedded` images ever match: the others have no vector to rank. What each filter means:

- `folder`: images whose path, as results show it, lies under this directory at any depth.
  Paths are stored in the catalog form of `search.images.paths` (plain UTF-8 text, or
  `fsbytes:` + percent-escaped bytes for names that are not UTF-8), so the folder is matched
  in both forms. The folder ends at a `/`: folder /photos/rome never matches /photos/rome2.
  A tar shard counts as a folder of its members (/data/a.tar matches /data/a.tar#x.jpg).
- `date_from` / `date_to`: inclusive days of `taken_at` (stored in UTC; `search.images.metadata`
  says how EXIF times without a zone are kept).
- `camera`: case-insensitive substring of "make model" (so of the make, of the model, or of
  the name results show, `search.images.metadata.camera_label`).
- `tag`: every one of these labels; `any_tag`: at least one (case-insensitive, whole labels;
  `image_tags`).
- `min_/max_width`, `_height`, `_megapixels`: inclusive ranges; `orientation`: landscape
  (wider than high), portrait, square; `file_type`: any of these sniffed formats (`jpg` is
  `jpeg`); `has_caption`: a non-empty caption or not.

An image lacking the field a filter asks about (no size, no taken time) does not match it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote_from_bytes

from sqlalchemy import BigInteger, ColumnElement, and_, cast, false, func, or_, select

from search.catalog.image_tags import normalise_label
from search.catalog.schema import Image, ImageStatus, ImageTag
from search.images.metadata import normalise_file_type
from search.schemas import SearchFilters

__all__ = ["day_end", "day_start", "filter_clause", "folder_clause", "matching_clause"]

_BYTES_PREFIX = "fsbytes:"  # search.images.paths: the stored form of a non-UTF-8 path


def matching_clause(filters: SearchFilters, collection_ids: Sequence[int]) -> ColumnElement[bool]:
    """Embedded images of `collection_ids` that match every filter (none when no collection)."""
    if not collection_ids:
        return false()
    return and_(Image.collection_id.in_(list(collection_ids)), filter_clause(filters))


def filter_clause(filters: SearchFilters) -> ColumnElement[bool]:
    """Embedded images that match every filter in `filters`, of any collection."""
    conditions: list[ColumnElement[bool]] = [Image.status == ImageStatus.EMBEDDED]
    if filters.folder is not None:
        conditions.append(folder_clause(filters.folder))
    if filters.date_from is not None:
        conditions.append(Image.taken_at >= day_start(filters.date_from))
    if filters.date_to is not None:
        conditions.append(Image.taken_at < day_end(filters.date_to))
    if filters.camera is not None:
        conditions.append(_camera_clause(filters.camera))
    conditions += _tag_clauses(filters.tag, filters.any_tag)
    conditions += _size_clauses(filters)
    if filters.file_type:
        wanted = sorted({normalise_file_type(value) for value in filters.file_type})
        conditions.append(Image.file_type.in_(wanted))
    if filters.has_caption is not None:
        captioned = and_(Image.caption.is_not(None), Image.caption != "")
        conditions.append(captioned if filters.has_caption else ~captioned)
    return and_(*conditions)


def day_start(day: date) -> datetime:
    """The first instant of `day` (UTC), as `taken_at` is stored."""
    return datetime.combine(day, time.min, UTC)


def day_end(day: date) -> datetime:
    """The first instant after `day` (UTC): `date_to` is inclusive."""
    return day_start(day + timedelta(days=1))


def _stored_prefixes(prefix: str) -> list[str]:
    """The stored forms a path starting with `prefix` (display form) can have: as written, and
    percent-escaped after `fsbytes:` (a path with a name that is not UTF-8 somewhere)."""
    raw = os.fsencode(prefix)  # a command-line folder with undecodable bytes keeps them
    forms = [_BYTES_PREFIX + quote_from_bytes(raw, safe="/")]
    try:
        prefix.encode("utf-8")
    except UnicodeEncodeError:
        return forms  # lone surrogates: only the escaped form can hold these bytes
    return [prefix, *forms]


def _starts_with(prefix: str) -> ColumnElement[bool]:
    # LIKE (with % and _ escaped) narrows; the exact substring comparison makes it case-exact,
    # since SQLite's LIKE ignores ASCII case.
    return and_(
        Image.path.startswith(prefix, autoescape=True),
        func.substr(Image.path, 1, len(prefix)) == prefix,
    )


def folder_clause(folder: str) -> ColumnElement[bool]:
    """Images under `folder` (display form, any depth; see the module docstring)."""
    base = folder.rstrip("/")
    prefixes = [base + "/"]
    if base.lower().endswith(".tar"):
        prefixes.append(base + "#")  # the members of a shard
    return or_(*(_starts_with(stored) for p in prefixes for stored in _stored_prefixes(p)))


def _camera_clause(camera: str) -> ColumnElement[bool]:
    name = func.lower(
        func.coalesce(Image.camera_make, "") + " " + func.coalesce(Image.camera_model, "")
    )
    return name.contains(camera.lower(), autoescape=True)


def _has_label(label: str) -> ColumnElement[bool]:
    labelled = select(ImageTag.image_id).where(ImageTag.label == normalise_label(label))
    return Image.id.in_(labelled)


def _tag_clauses(all_of: Sequence[str], any_of: Sequence[str]) -> list[ColumnElement[bool]]:
    conditions = [_has_label(label) for label in sorted(set(all_of))]
    if any_of:
        labels = sorted({normalise_label(label) for label in any_of})
        conditions.append(Image.id.in_(select(ImageTag.image_id).where(ImageTag.label.in_(labels))))
    return conditions


def _size_clauses(filters: SearchFilters) -> list[ColumnElement[bool]]:
    # BIGINT: width * height of a large panorama overflows PostgreSQL's 32-bit integer
    pixels = cast(Image.width, BigInteger) * cast(Image.height, BigInteger)
    bounds: list[tuple[Any, float | None, float | None]] = [  # (column or expression, low, high)
        (Image.width, filters.min_width, filters.max_width),
        (Image.height, filters.min_height, filters.max_height),
        (pixels, _pixels(filters.min_megapixels), _pixels(filters.max_megapixels)),
    ]
    conditions: list[ColumnElement[bool]] = []
    for column, low, high in bounds:
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    if filters.orientation == "landscape":
        conditions.append(Image.width > Image.height)
    elif filters.orientation == "portrait":
        conditions.append(Image.width < Image.height)
    elif filters.orientation == "square":
        conditions.append(Image.width == Image.height)
    return conditions


def _pixels(megapixels: float | None) -> float | None:
    return None if megapixels is None else megapixels * 1_000_000
