"""Thumbnails made on first request and cached on disk (JPEG, longest side 256 px).

The cache file name carries the image's content hash, so a modified photo gets a new thumbnail.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Protocol

from search.errors import NotFoundError
from search.images.decode import decode_stored
from search.images.failures import DecodeFailure
from search.storage.atomic_files import atomic_write_bytes

__all__ = ["THUMBNAIL_SIZE", "ThumbnailSource", "thumbnail_for"]

THUMBNAIL_SIZE = 256


class ThumbnailSource(Protocol):
    """What a thumbnail needs of a catalog row (`search.catalog.ImageRecord` has it); a
    protocol, so that reading images never depends on the catalog."""

    @property
    def id(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def content_hash(self) -> str | None: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime(self) -> float: ...


def thumbnail_for(record: ThumbnailSource, cache_dir: Path) -> Path:
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
