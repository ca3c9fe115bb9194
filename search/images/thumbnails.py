"""Thumbnails made on first request and cached on disk (JPEG, longest side 256 px).

A thumbnail is named by what it was made from: the image's content hash (as the catalog holds
it), the size and the version of this recipe. So its identity, the `tag` that HTTP sends as the
ETag, is known from the catalog row alone, without touching the disk: a browser that already
holds it is answered 304 before anything is decoded. A re-indexed photo with new content gets a
new tag, a new file, and the old file of that image is removed; a change of size or recipe
(bump `THUMBNAIL_VERSION`) gives every image a new tag.

Made once: concurrent first requests for one image in this process wait on one lock (striped by
image id) and the second finds the file made; across processes the write is atomic (a temp
file renamed over the target, `search.storage.atomic_files`), so a reader never sees half a
JPEG and two writers leave one whole file. The size is bounded (256 px, quality 85: a few KiB),
and decoding uses `draft()` and keeps Pillow's decompression-bomb limits.
"""

from __future__ import annotations

import contextlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

from search.errors import NotFoundError
from search.images.decode import decode_stored
from search.images.failures import DecodeFailure
from search.images.originals import IndexedFile
from search.storage.atomic_files import atomic_write_bytes

__all__ = [
    "THUMBNAIL_SIZE",
    "THUMBNAIL_VERSION",
    "CachedThumbnail",
    "thumbnail_for",
]

THUMBNAIL_SIZE = 256
THUMBNAIL_VERSION = 1  # bump when the recipe (size, format, quality) changes
_JPEG_QUALITY = 85
_LOCKS = tuple(threading.Lock() for _ in range(64))  # striped by image id: bounded, no leaks


@dataclass(frozen=True)
class CachedThumbnail:
    """One image's thumbnail: its identity from the catalog row, its file made on demand."""

    record: IndexedFile
    cache_dir: Path

    @property
    def tag(self) -> str:
        """What the thumbnail is made from (content, size, recipe): its ETag's value."""
        source = self.record.content_hash or f"{self.record.size}-{int(self.record.mtime)}"
        return f"{source[:16]}-{THUMBNAIL_SIZE}v{THUMBNAIL_VERSION}"

    @property
    def target(self) -> Path:
        record_id = self.record.id
        return self.cache_dir / f"{record_id % 256:02x}" / f"{record_id}-{self.tag}.jpg"

    def path(self) -> Path:
        """The thumbnail's file, made now if it is not on disk yet."""
        target = self.target
        if target.exists():
            return target
        with _LOCKS[self.record.id % len(_LOCKS)]:
            if not target.exists():  # made while this request waited for the lock
                atomic_write_bytes(target, self._jpeg())
                self._remove_older(target)
        return target

    def _jpeg(self) -> bytes:
        try:
            decoded = decode_stored(self.record.path, draft_size=THUMBNAIL_SIZE)
        except DecodeFailure as exc:
            raise NotFoundError(f"Image {self.record.id} has no thumbnail: {exc.reason}.") from exc
        image = decoded.image
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=_JPEG_QUALITY)
        return buffer.getvalue()

    def _remove_older(self, target: Path) -> None:
        """Drop this image's thumbnails of older content or recipes: one file per image."""
        for old in target.parent.glob(f"{self.record.id}-*.jpg"):
            if old != target:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()


def thumbnail_for(record: IndexedFile, cache_dir: Path) -> Path:
    """Path of the cached thumbnail of `record`, creating it if needed."""
    return CachedThumbnail(record, cache_dir).path()
