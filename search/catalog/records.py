"""The typed records the catalog takes and hands out (no ORM object escapes a session).

The indexer's stages meet the catalog here: a scan inserts `NewImage`s, a changed file goes back
as a `ChangedImage`, the decode stage reads `PendingImage`s and each embedded batch comes back
as `EmbeddedImage`s and `FailedImage`s. They are frozen and picklable: `EmbeddedImage` and
`FailedImage` travel from decode worker processes (fork or spawn) to the main process as they
are. `search` owns them because the catalog accepts them and `search` never imports `indexer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from search.catalog.schema import Image
from search.images.metadata import ImageMetadata, camera_label
from search.images.paths import display_path

__all__ = [
    "ChangedImage",
    "CollectionInfo",
    "EmbeddedImage",
    "FailedFile",
    "FailedImage",
    "ImageMetadata",
    "ImageRecord",
    "KnownImage",
    "MetadataUpdate",
    "NewImage",
    "PendingImage",
    "TagUpdate",
    "Tags",
    "UnreadMetadata",
]

Tags = list[dict[str, Any]]
"""Zero-shot tags as the catalog stores them: `[{"label": ..., "score": ...}, ...]`."""


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A collection: its name, and the encoder (spec, model id, dimension) all its vectors
    come from."""

    id: int
    name: str
    model_spec: str
    model_id: str
    dim: int


class KnownImage(NamedTuple):
    """What a re-index needs to know about a catalog row to decide whether to embed again."""

    id: int
    size: int
    mtime: float
    status: str
    path: str
    content_hash: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class NewImage:
    """A file a scan found that the catalog does not hold yet; inserted as `pending`.

    `metadata` (a JSON sidecar) rides along from the scan; the catalog does not store it yet."""

    path: str  # catalog form (`search.images.paths`, `search.images.source`)
    path_key: str
    size: int
    mtime: float
    caption: str | None = None  # from a sidecar beside the image
    metadata: dict[str, Any] | None = None


class ChangedImage(NamedTuple):
    """A row to embed again: its file changed size or mtime (or its vector was lost: -1, -1.0)."""

    id: int
    size: int
    mtime: float


class PendingImage(NamedTuple):
    """A row waiting for a vector: what the decode stage reads."""

    id: int
    path: str


class UnreadMetadata(NamedTuple):
    """An embedded row whose taken time, camera and file type were never read (it predates
    them): what the indexer's metadata backfill reads from the file's header."""

    id: int
    path: str
    path_key: str


class MetadataUpdate(NamedTuple):
    """Metadata read for a row (`Catalog.set_metadata`)."""

    id: int
    metadata: ImageMetadata


class FailedImage(NamedTuple):
    """A row that cannot be embedded, with the reason stored in the catalog ("kind: detail")."""

    id: int
    reason: str


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file the indexer could not embed, as people see it: its collection, its path in
    display form and the stored reason ("kind: detail")."""

    collection: str
    path: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "collection": self.collection}


@dataclass(frozen=True, slots=True)
class TagUpdate:
    """Tags to store on a row with the tagger that wrote them. `model=None` leaves the row
    untagged in the tagging stage's eyes, so the next run tags it again."""

    tags: Tags | None
    model: str | None


@dataclass(frozen=True, slots=True)
class EmbeddedImage:
    """A row whose vector is durable: what the catalog records when it marks it `embedded`.

    `tags=None` leaves the row's tags as they are (the tagging stage fills them later);
    `metadata=None` leaves its taken time, camera and file type as they are. A `metadata`
    without an EXIF date makes the row's taken time its file's mtime (`taken_at_source`)."""

    id: int
    width: int | None = None  # full size after EXIF orientation
    height: int | None = None
    content_hash: str | None = None
    tags: TagUpdate | None = None
    metadata: ImageMetadata | None = None


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One catalog row as the search layer hands it out."""

    id: int
    collection_id: int
    path: str
    content_hash: str | None
    size: int
    mtime: float
    width: int | None
    height: int | None
    status: str
    error: str | None
    caption: str | None
    caption_model: str | None
    tags: list[Any] | None
    tags_model: str | None = None  # the tagger that wrote `tags`; None: not tagged yet
    taken_at: datetime | None = None  # aware, UTC (`search.images.metadata` says how it is read)
    taken_at_source: str | None = None  # 'exif' or 'mtime'; None: not read yet (older rows)
    camera_make: str | None = None
    camera_model: str | None = None
    file_type: str | None = None  # jpeg, png, webp, ... as sniffed; None: not read yet

    @property
    def display_path(self) -> str:
        return display_path(self.path)

    @property
    def camera(self) -> str | None:
        """Make and model as one name (`search.images.metadata.camera_label`)."""
        return camera_label(self.camera_make, self.camera_model)

    @classmethod
    def from_row(cls, row: Image) -> ImageRecord:
        return cls(
            id=row.id,
            collection_id=row.collection_id,
            path=row.path,
            content_hash=row.content_hash,
            size=row.size,
            mtime=row.mtime,
            width=row.width,
            height=row.height,
            status=row.status,
            error=row.error,
            caption=row.caption,
            caption_model=row.caption_model,
            tags=row.tags,
            tags_model=row.tags_model,
            taken_at=as_utc(row.taken_at),
            taken_at_source=row.taken_at_source,
            camera_make=row.camera_make,
            camera_model=row.camera_model,
            file_type=row.file_type,
        )


def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime: SQLite hands back the naive UTC text it was
    given, PostgreSQL an aware value in the session's zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
