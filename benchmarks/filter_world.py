"""A catalog of synthetic image rows with varied metadata and random unit vectors, built in
seconds without a model: what the filter tests compare against brute force and what
`benchmarks/filtered_search.py` times. Seeded, so every build is the same world.

Rows are written straight into `images` and `image_tags` (no indexing run) with explicit ids;
their vectors go into an in-memory `VectorIndex`. The rows are chosen to trip filters up:
sibling folders (/photos/rome vs /photos/rome2 vs /photos/Rome), LIKE wildcards in folder names
(100%_done vs 100%Xdone), non-UTF-8 names (stored as `fsbytes:`), tar shard members, times at
the edges of a day, missing sizes, dates and cameras, empty captions, pending and failed rows,
a second collection, and one camera that exactly one image in the collection has.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert

from search.catalog import Catalog
from search.catalog.image_tags import tag_labels
from search.catalog.schema import Image, ImageStatus, ImageTag
from search.images.paths import encode_path, path_key
from search.storage.faiss_index import VectorIndex

__all__ = ["RARE_CAMERA", "FilterWorld", "Row", "build_filter_world"]

FOLDERS = (
    ("/photos/rome", 20),
    ("/photos/rome2", 10),
    ("/photos/Rome", 5),
    ("/photos/paris/day1", 15),
    ("/photos/paris/day2", 15),
    ("/photos/100%_done", 5),
    ("/photos/100%Xdone", 5),
    ("/photos/café", 5),
    ("/data/shard-000.tar#", 10),
    ("/data/shard-0001.tar#", 5),
    ("/other", 5),
)
CAMERAS = (
    (("Canon", "Canon EOS R5"), 30),
    (("NIKON CORPORATION", "NIKON D750"), 20),
    (("Apple", "iPhone 12"), 25),
    (("SONY", "ILCE-7M3"), 10),
    ((None, None), 15),
)
RARE_CAMERA = ("Leica Camera AG", "LEICA M11")  # exactly one image of the main collection
FILE_TYPES = (("jpeg", 50), ("png", 15), ("webp", 10), ("gif", 5), ("heif", 15), (None, 5))
LABELS = ("beach", "Sunset", "dog", "cat", "snow", "city")
EDGE_DAY = datetime(2022, 6, 15, tzinfo=UTC)  # rows at the very start and end of this day
_START, _SPAN = datetime(2019, 1, 1, tzinfo=UTC), 6 * 365 * 86400


@dataclass(frozen=True)
class Row:
    """One image row as written (the test's brute force reads these, not the catalog)."""

    id: int
    collection_id: int
    path: str
    status: str
    taken_at: datetime | None
    camera_make: str | None
    camera_model: str | None
    width: int | None
    height: int | None
    file_type: str | None
    caption: str | None
    tags: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FilterWorld:
    """The rows, their vectors (embedded rows only) and the main collection's index."""

    catalog: Catalog
    collection_id: int
    other_collection_id: int
    rows: list[Row]
    vectors: dict[int, np.ndarray]
    index: VectorIndex


def _pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def _path(rng: random.Random, i: int) -> str:
    folder = _pick(rng, FOLDERS)
    if folder.endswith("#"):
        return f"{folder}{i:07d}.jpg"
    if rng.random() < 0.03:  # a name that is not UTF-8: stored escaped
        return encode_path(os.fsdecode(os.fsencode(folder) + b"/\xff" + str(i).encode() + b".jpg"))
    return f"{folder}/img_{i:07d}.jpg"


def _taken_at(rng: random.Random, i: int) -> datetime | None:
    edges = (EDGE_DAY, EDGE_DAY + timedelta(days=1, microseconds=-1), EDGE_DAY + timedelta(days=1))
    if i % 997 < len(edges):
        return edges[i % 997]
    if rng.random() < 0.1:
        return None
    return _START + timedelta(seconds=rng.randrange(_SPAN), microseconds=rng.randrange(10**6))


def _size(rng: random.Random) -> tuple[int | None, int | None]:
    roll = rng.random()
    if roll < 0.05:
        return None, None
    width = rng.randrange(100, 6000)
    return (width, width) if roll < 0.1 else (width, rng.randrange(100, 6000))


def _row(rng: random.Random, i: int, collection_id: int) -> Row:
    make, model = _pick(rng, CAMERAS)
    width, height = _size(rng)
    roll = rng.random()
    status = (
        ImageStatus.PENDING
        if roll < 0.02
        else ImageStatus.FAILED
        if roll < 0.03
        else ImageStatus.EMBEDDED
    )
    caption = rng.choice((None, None, "", "a caption", "another caption"))
    tags = [{"label": label, "score": 0.5} for label in LABELS if rng.random() < 0.3]
    return Row(
        id=i,
        collection_id=collection_id,
        path=_path(rng, i),
        status=status,
        taken_at=_taken_at(rng, i),
        camera_make=make,
        camera_model=model,
        width=width,
        height=height,
        file_type=_pick(rng, FILE_TYPES),
        caption=caption,
        tags=tags,
    )


def _insert(catalog: Catalog, rows: list[Row]) -> None:
    now = datetime.now(UTC)
    values = [
        {
            "id": row.id,
            "collection_id": row.collection_id,
            "path": row.path,
            "path_key": path_key(row.path),
            "size": 1000 + row.id,
            "mtime": 1.5e9,
            "width": row.width,
            "height": row.height,
            "status": row.status,
            "caption": row.caption,
            "tags": row.tags or None,
            "tags_model": "world" if row.tags else None,
            "taken_at": row.taken_at,
            "taken_at_source": "exif" if row.taken_at else None,
            "camera_make": row.camera_make,
            "camera_model": row.camera_model,
            "file_type": row.file_type,
            "search_text": "",
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    tag_rows = [
        {"image_id": row.id, "label": label} for row in rows for label in tag_labels(row.tags)
    ]
    with catalog.session() as session:
        for start in range(0, len(values), 2000):
            session.execute(insert(Image), values[start : start + 2000])
        for start in range(0, len(tag_rows), 5000):
            session.execute(insert(ImageTag), tag_rows[start : start + 5000])


def build_filter_world(
    catalog: Catalog, n: int = 10_000, *, dim: int = 16, seed: int = 0
) -> FilterWorld:
    """`n` rows in collection "main" (one with `RARE_CAMERA`), 500 in "other", and the main
    collection's index over its embedded rows' random unit vectors."""
    rng = random.Random(seed)
    main = catalog.create_collection("main", model_spec="world", model_id="world", dim=dim)
    other = catalog.create_collection("other", model_spec="world", model_id="world", dim=dim)
    rows = [_row(rng, i, main.id) for i in range(1, n + 1)]
    rows += [_row(rng, i, other.id) for i in range(n + 1, n + 501)]
    rare = rng.choice([r for r in rows[:n] if r.status == ImageStatus.EMBEDDED])
    rows[rare.id - 1] = Row(
        **{**rare.__dict__, "camera_make": RARE_CAMERA[0], "camera_model": RARE_CAMERA[1]}
    )
    _insert(catalog, rows)
    generator = np.random.default_rng(seed)
    embedded = [row.id for row in rows if row.status == ImageStatus.EMBEDDED]
    matrix = generator.standard_normal((len(embedded), dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vectors = dict(zip(embedded, matrix, strict=True))
    index = VectorIndex(dim)
    main_ids = np.asarray([i for i in embedded if i <= n], dtype=np.int64)
    index.add(main_ids, np.stack([vectors[i] for i in main_ids.tolist()]))
    return FilterWorld(catalog, main.id, other.id, rows, vectors, index)
