"""Reuse: a new file whose bytes are already in the collection (renamed, moved, or a duplicate)
is not decoded or embedded again: its vector is copied under the new id.

Only new files whose size matches an embedded file's are hashed for this, so the fast path of a
scan stays (path, size, mtime). Copied rows keep the source's tags but not its tagger, so the
tagging stage looks at them again; they keep its EXIF metadata (the same bytes), and take
their own file's mtime as taken time when the picture has no EXIF date.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from search.catalog import Catalog, EmbeddedImage, ImageRecord, KnownImage, NewImage, TagUpdate
from search.catalog.records import ImageMetadata
from search.catalog.schema import ImageStatus, TakenAtSource
from search.images.content_hash import hash_bytes, hash_file
from search.images.failures import DecodeFailure
from search.images.paths import decode_path
from search.images.source import is_archive_member, read_image_bytes
from search.storage.collection_store import CollectionStore
from search.storage.faiss_index import VectorIndex

__all__ = ["reuse_known_content"]

Match = tuple[int, KnownImage]  # (new row id, embedded row with the same bytes)


def _content_hash(stored: str) -> str | None:
    """The content hash of the file at `stored`, or None when it cannot be read now (the decode
    stage records why)."""
    try:
        if is_archive_member(stored):
            return hash_bytes(read_image_bytes(stored))
        return hash_file(decode_path(stored))
    except (OSError, DecodeFailure):
        return None


def _same_content(known: Iterable[KnownImage], new_rows: list[tuple[int, NewImage]]) -> list[Match]:
    """New rows whose bytes equal those of an embedded row (compared by size, then hash)."""
    by_size: dict[int, dict[str, KnownImage]] = {}
    for row in known:
        if row.status == ImageStatus.EMBEDDED and row.content_hash:
            by_size.setdefault(row.size, {})[row.content_hash] = row
    matches: list[Match] = []
    for new_id, item in new_rows:
        same_size = by_size.get(item.size)
        if not same_size:
            continue
        digest = _content_hash(item.path)
        if digest is not None and digest in same_size:
            matches.append((new_id, same_size[digest]))
    return matches


def reuse_known_content(
    catalog: Catalog,
    store: CollectionStore,
    index: VectorIndex,
    known: Iterable[KnownImage],
    new_rows: list[tuple[int, NewImage]],
) -> int:
    """Give new rows whose bytes the collection already embedded the existing vector (vector
    store, then catalog, then FAISS, as for embedding); returns how many were reused."""
    matches = _same_content(known, new_rows)
    if not matches:
        return 0
    ids, vectors = store.vectors.latest(source.id for _, source in matches)
    vector_of = dict(zip(ids.tolist(), vectors, strict=True))
    usable = [(new_id, source) for new_id, source in matches if source.id in vector_of]
    if not usable:
        return 0
    new_ids = np.asarray([new_id for new_id, _ in usable], dtype=np.int64)
    new_vectors = np.stack([vector_of[source.id] for _, source in usable])
    store.vectors.append(new_ids, new_vectors)
    source_rows = catalog.get_images([source.id for _, source in usable])
    catalog.finish_batch([_copied(new_id, source, source_rows) for new_id, source in usable], [])
    index.add(new_ids, new_vectors)
    return len(usable)


def _copied(new_id: int, source: KnownImage, rows: dict[int, ImageRecord]) -> EmbeddedImage:
    """The new row as embedded: the source's size, hash and tags (no tagger: tag it again)."""
    record = rows.get(source.id)
    tags = TagUpdate(tags=record.tags if record is not None else None, model=None)
    return EmbeddedImage(
        id=new_id,
        width=source.width,
        height=source.height,
        content_hash=source.content_hash,
        tags=tags,
        metadata=_copied_metadata(record),
    )


def _copied_metadata(record: ImageRecord | None) -> ImageMetadata | None:
    """The source's metadata for a copy of its bytes (None: never read, the backfill reads the
    copy's); an mtime taken time is not copied, the copy's own mtime replaces it."""
    if record is None or record.file_type is None:
        return None
    exif_date = record.taken_at if record.taken_at_source == TakenAtSource.EXIF else None
    return ImageMetadata(
        file_type=record.file_type,
        taken_at=exif_date,
        camera_make=record.camera_make,
        camera_model=record.camera_model,
    )
