"""Table definitions of the catalog. Alembic revisions in `migrations/` create them; this module
is what the application code queries through. Keep both in step (a test compares them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Collection",
    "Image",
    "ImageStatus",
    "ImageTag",
    "IndexBuild",
    "Job",
    "JobState",
    "TakenAtSource",
]

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The catalog's tables, with constraint names fixed by `NAMING` (Alembic relies on them)."""

    metadata = MetaData(naming_convention=NAMING)


class ImageStatus:
    """Lifecycle of an image row. `embedded` is set only after the vector is durable."""

    PENDING = "pending"
    EMBEDDED = "embedded"
    FAILED = "failed"


class TakenAtSource:
    """Where an image's `taken_at` came from (`search.images.metadata`)."""

    EXIF = "exif"  # EXIF DateTimeOriginal
    MTIME = "mtime"  # the file's modification time: the picture has no EXIF date


class JobState:
    """Lifecycle of a job row: queued -> running -> done, failed or cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Collection(Base):
    """A named set of images embedded by one encoder."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model_spec: Mapped[str] = mapped_column(Text)
    model_id: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Image(Base):
    """One file (or shard member) of a collection, with its state and enrichments."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("collection_id", "path_key"),
        Index("ix_images_collection_id_status", "collection_id", "status"),
        Index("ix_images_content_hash", "content_hash"),
        # date filters and date sorts within a collection
        Index("ix_images_collection_id_taken_at", "collection_id", "taken_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    path_key: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ImageStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str | None] = mapped_column(Text)
    caption_model: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[Any] | None] = mapped_column(JSON)
    tags_model: Mapped[str | None] = mapped_column(
        Text
    )  # the tagger that wrote `tags`; NULL: untagged
    # What full-text search matches: file name words, caption, tag labels (search.catalog.fulltext).
    search_text: Mapped[str | None] = mapped_column(Text)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    camera_make: Mapped[str | None] = mapped_column(Text)
    camera_model: Mapped[str | None] = mapped_column(Text)
    taken_at_source: Mapped[str | None] = mapped_column(String(8))  # TakenAtSource; NULL: unread
    file_type: Mapped[str | None] = mapped_column(String(16))  # jpeg, png, ...; NULL: unread
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImageTag(Base):
    """One zero-shot tag label of an image: `images.tags` (JSON, with scores) as rows, so that
    tag filters and tag facets are plain indexed SQL on SQLite and PostgreSQL alike. The catalog
    rewrites an image's rows wherever it writes its `tags` (`search.catalog.image_tags`)."""

    __tablename__ = "image_tags"
    __table_args__ = (Index("ix_image_tags_label_image_id", "label", "image_id"),)

    image_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    label: Mapped[str] = mapped_column(String(200), primary_key=True)


class IndexBuild(Base):
    """The FAISS index of a collection as last saved: which model, how many vectors, which file
    generation. A FAISS file whose generation differs from this row is stale and is caught up."""

    __tablename__ = "index_builds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), unique=True
    )
    model_id: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    factory: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(BigInteger)
    generation: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """One indexing run, from the CLI or the API."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int | None] = mapped_column(
        ForeignKey("collections.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    rate: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
