"""The SQL catalog: collections, images, index builds and jobs (SQLAlchemy 2, Alembic)."""

from __future__ import annotations

from search.catalog.catalog import Catalog, CollectionInfo, ImageRecord, KnownImage, open_catalog
from search.catalog.job_queries import JobInfo
from search.catalog.migrate import current_revision, head_revision, upgrade_database

__all__ = [
    "Catalog",
    "CollectionInfo",
    "ImageRecord",
    "JobInfo",
    "KnownImage",
    "current_revision",
    "head_revision",
    "open_catalog",
    "upgrade_database",
]
