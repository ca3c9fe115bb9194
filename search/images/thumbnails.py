"""Thumbnails made on first request and cached on disk (JPEG, longest side 256 px).

The cache file name carries the image's content hash, so a modified photo gets a new thumbnail.
"""

from __future__ import annotations

import io
from pathlib import Path

from search.storage.atomic_files import atomic_write_bytes
from search.catalog import ImageRecord
from search.errors import NotFoundError
from search.images.decode import DecodeFailure, decode_stored

__all__ = ["THUMBNAIL_SIZE", "thumbnail_for"]

THUMBNAIL_SIZE = 256


def thumbnail_for(record: ImageRecord, cache_dir: Path) -> Path:
    """Path of the cached thumbnail of `record`, creating it if needed."""
    tag = (record.content_hash or f"{record.size}-{int(record.mtime)}")[:16]
    target = cache_dir / f"{record.id % 256:02x}" / f"{record.id}-{tag}.jpg"
    if target.exists():
        return target
    try:
        decoded = decode_stored(record.path, draft_size=THUMBNAIL_SIZE)
    except DecodeFailure as exc:
        raise NotFoundError(f"Image {record.id} has no thumbnail: {exc.reason}.") from exc
    image = decoded.image
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    atomic_write_bytes(target, buffer.getvalue())
    return target
