"""An indexed image's original file as the server hands it out: its name, a content identity
(the tag HTTP sends as the ETag) and its content, read only when it is about to be sent.

The tag is the catalog's content hash while the file on disk still has the size and mtime the
indexer saw (the same test the indexer's reconcile stage uses for "unchanged"), so a conditional
request costs one `stat` and no read. A file changed since it was indexed gets a tag from its
current size and mtime instead: never the old hash for new bytes. A member of a WebDataset tar
shard keeps the catalog's hash (a shard is read as a whole, and rewritten shards are re-indexed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from search.errors import NotFoundError
from search.images.failures import DecodeFailure
from search.images.paths import decode_path, display_path
from search.images.source import is_archive_member, read_image_bytes

__all__ = ["IndexedFile", "OriginalFile"]


class IndexedFile(Protocol):
    """What an original file and its thumbnail need of a catalog row (`search.catalog.ImageRecord`
    has it); a protocol, so that reading images never depends on the catalog."""

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


@dataclass(frozen=True)
class OriginalFile:
    """One image's indexed file: only ever the path the catalog holds, never one from a request."""

    record: IndexedFile

    @property
    def name(self) -> str:
        """The file's name (a tar member's own name), for its media type and downloads."""
        return display_path(self.record.path).rsplit("#", 1)[-1].rsplit("/", 1)[-1]

    @property
    def is_archive_member(self) -> bool:
        return is_archive_member(self.record.path)

    def _missing(self, reason: str) -> NotFoundError:
        return NotFoundError(f"The file of image {self.record.id} {reason}.")

    def tag(self) -> str:
        """The content identity of what `content()` would send; raises `NotFoundError` when
        the file is gone."""
        record = self.record
        if self.is_archive_member:
            return record.content_hash or f"{record.size:x}-{int(record.mtime):x}"
        try:
            stat = os.stat(decode_path(record.path))
        except OSError:
            raise self._missing(f"({display_path(record.path)}) is gone") from None
        if record.content_hash and (stat.st_size, stat.st_mtime) == (record.size, record.mtime):
            return record.content_hash
        return f"{stat.st_size:x}-{stat.st_mtime_ns:x}"  # changed since indexing

    def content(self) -> Path | bytes:
        """The file's path (streamed by the caller), or the bytes of a tar member."""
        if self.is_archive_member:
            try:
                return read_image_bytes(self.record.path)
            except DecodeFailure as exc:
                raise self._missing(f"is gone: {exc.reason}") from exc
        path = decode_path(self.record.path)
        if not path.is_file():
            raise self._missing(f"({display_path(self.record.path)}) is gone")
        return path
