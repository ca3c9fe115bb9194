"""The SQL catalog: collections, images, index builds and jobs (SQLAlchemy 2, Alembic)."""

from __future__ import annotations

from search.catalog.catalog import Catalog, open_catalog
from search.catalog.job_queries import JobInfo
from search.catalog.migrate import current_revision, head_revision, upgrade_database
from search.catalog.records import (
    ChangedImage,
    CollectionInfo,
    EmbeddedImage,
    FailedImage,
    ImageRecord,
    KnownImage,
    NewImage,
    PendingImage,
    TagUpdate,
)

__all__ = [
    "Catalog",
    "ChangedImage",
    "CollectionInfo",
    "EmbeddedImage",
    "FailedImage",
    "ImageRecord",
    "JobInfo",
    "KnownImage",
    "NewImage",
    "PendingImage",
    "TagUpdate",
    "current_revision",
    "head_revision",
    "open_catalog",
    "upgrade_database",
]
