"""The SQL catalog: collections, images, index builds and jobs (SQLAlchemy 2, Alembic)."""

from __future__ import annotations

from search.catalog.catalog import Catalog, catalog_revision, open_catalog
from search.catalog.job_queries import JobInfo
from search.catalog.migrate import (
    SCHEMA_REVISION,
    current_revision,
    head_revision,
    upgrade_database,
)
from search.catalog.records import (
    ChangedImage,
    CollectionInfo,
    EmbeddedImage,
    FailedFile,
    FailedImage,
    ImageRecord,
    KnownImage,
    NewImage,
    PendingImage,
    TagUpdate,
)

__all__ = [
    "SCHEMA_REVISION",
    "Catalog",
    "ChangedImage",
    "CollectionInfo",
    "EmbeddedImage",
    "FailedFile",
    "FailedImage",
    "ImageRecord",
    "JobInfo",
    "KnownImage",
    "NewImage",
    "PendingImage",
    "TagUpdate",
    "catalog_revision",
    "current_revision",
    "head_revision",
    "open_catalog",
    "upgrade_database",
]
