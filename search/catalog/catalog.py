"""Opening the catalog and the queries the rest of pixseek runs against it.

One `Catalog` wraps one SQLAlchemy engine. SQLite runs in WAL mode with a busy timeout so that
searches keep reading while an indexer writes; PostgreSQL needs nothing special. Every method
opens its own short transaction, so a crash between two calls leaves the catalog consistent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, create_engine, delete, event, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from search.catalog.filter_queries import FilterQueries
from search.catalog.image_tags import replace_image_tags
from search.catalog.job_queries import JobInfo, JobQueries, utcnow
from search.catalog.migrate import SCHEMA_REVISION, current_revision, upgrade_database
from search.catalog.records import (
    ChangedImage,
    CollectionInfo,
    EmbeddedImage,
    FailedFile,
    FailedImage,
    ImageMetadata,
    ImageRecord,
    KnownImage,
    MetadataUpdate,
    NewImage,
    PendingImage,
    Tags,
    UnreadMetadata,
)
from search.catalog.schema import Collection, Image, ImageStatus, IndexBuild, TakenAtSource
from search.catalog.search_text import search_text_for
from search.errors import CatalogError, NotFoundError, PixseekError, SchemaOutOfDateError
from search.images.metadata import mtime_as_taken_at
from search.images.paths import display_path
from search.storage.storage_errors import disk_full_error, read_only_error

SIDECAR_CAPTION_MODEL = "sidecar"  # captions read from x.txt / x.json beside an image

__all__ = [
    "SIDECAR_CAPTION_MODEL",
    "Catalog",
    "CollectionInfo",
    "ImageRecord",
    "JobInfo",
    "KnownImage",
    "catalog_revision",
    "open_catalog",
    "utcnow",
]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    default_driver = parsed.get_driver_name() in ("psycopg2", "default")
    plain = parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql"
    if plain and default_driver:
        # psycopg 3 is the driver we install; plain postgresql:// URLs should just work.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


class Catalog(FilterQueries, JobQueries):
    """Queries over the catalog tables. Build with `open_catalog`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error.

        The one seam where database failures a user must act on become `PixseekError`s: a
        connection lost mid-transaction (the server restarted or dropped it; the pool checks
        connections before use, so the next transaction reconnects by itself), a full disk or a
        read-only SQLite file. Anything else propagates unchanged."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            translated = _translate_database_error(exc, self.engine)
            if translated is None:
                raise
            raise translated from exc

    # -- collections -------------------------------------------------------------------------

    def get_collection(self, name: str) -> CollectionInfo | None:
        with self.session() as s:
            row = s.scalar(select(Collection).where(Collection.name == name))
            return _collection_info(row) if row else None

    def require_collection(self, name: str) -> CollectionInfo:
        info = self.get_collection(name)
        if info is None:
            known = ", ".join(c.name for c in self.list_collections()) or "none yet"
            raise NotFoundError(
                f"No collection named {name!r} (known: {known}). Index a folder into it first: "
                f"pixseek index PATH --collection {name}"
            )
        return info

    def collection_by_id(self, collection_id: int) -> CollectionInfo:
        with self.session() as s:
            row = s.get(Collection, collection_id)
            if row is None:
                raise NotFoundError(f"No collection with id {collection_id}.")
            return _collection_info(row)

    def list_collections(self) -> list[CollectionInfo]:
        with self.session() as s:
            return [
                _collection_info(r) for r in s.scalars(select(Collection).order_by(Collection.id))
            ]

    def create_collection(
        self, name: str, *, model_spec: str, model_id: str, dim: int
    ) -> CollectionInfo:
        with self.session() as s:
            row = Collection(
                name=name, model_spec=model_spec, model_id=model_id, dim=dim, created_at=utcnow()
            )
            s.add(row)
            s.flush()
            return _collection_info(row)

    # -- images ------------------------------------------------------------------------------

    def image_states(self, collection_id: int) -> dict[str, KnownImage]:
        """path_key -> `KnownImage` for every image of a collection."""
        with self.session() as s:
            rows = s.execute(
                select(
                    Image.path_key,
                    Image.id,
                    Image.size,
                    Image.mtime,
                    Image.status,
                    Image.path,
                    Image.content_hash,
                    Image.width,
                    Image.height,
                ).where(Image.collection_id == collection_id)
            )
            return {r[0]: KnownImage(*r[1:]) for r in rows}

    def add_pending_images(self, collection_id: int, items: Sequence[NewImage]) -> list[int]:
        """Insert rows in state `pending`; returns their ids in input order."""
        if not items:
            return []
        now = utcnow()
        rows = [
            Image(
                collection_id=collection_id,
                path=item.path,
                path_key=item.path_key,
                size=item.size,
                mtime=item.mtime,
                status=ImageStatus.PENDING,
                caption=item.caption,
                search_text=search_text_for(item.path, item.caption, None),
                caption_model=SIDECAR_CAPTION_MODEL if item.caption else None,
                created_at=now,
                updated_at=now,
            )
            for item in items
        ]
        with self.session() as s:
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows]

    def mark_changed(self, updates: Sequence[ChangedImage]) -> None:
        """Files whose size or mtime changed: back to `pending` so they are embedded again."""
        if not updates:
            return
        now = utcnow()
        with self.session() as s:
            for image_id, size, mtime in updates:
                s.execute(
                    update(Image)
                    .where(Image.id == image_id)
                    .values(
                        size=size,
                        mtime=mtime,
                        status=ImageStatus.PENDING,
                        error=None,
                        tags_model=None,
                        updated_at=now,
                    )
                )

    def pending_images(
        self, collection_id: int, path_keys: set[str] | None = None
    ) -> list[PendingImage]:
        """Rows still waiting for a vector, in id order (only those in `path_keys` if given)."""
        with self.session() as s:
            rows = s.execute(
                select(Image.id, Image.path, Image.path_key)
                .where(Image.collection_id == collection_id, Image.status == ImageStatus.PENDING)
                .order_by(Image.id)
            )
            return [
                PendingImage(r[0], r[1]) for r in rows if path_keys is None or r[2] in path_keys
            ]

    def finish_batch(
        self, embedded: Sequence[EmbeddedImage], failed: Sequence[FailedImage]
    ) -> None:
        """Record one batch in one transaction: `embedded` rows, whose vectors are already
        durable, and `failed` rows with their reasons."""
        now = utcnow()
        with self.session() as s:
            wanted = [item.id for item in embedded]
            rows = {row.id: row for row in s.scalars(select(Image).where(Image.id.in_(wanted)))}
            for item in embedded:
                row = rows.get(item.id)
                if row is not None:
                    _record_embedded(row, item, now)
            replace_image_tags(
                s,
                {
                    item.id: item.tags.tags
                    for item in embedded
                    if item.tags is not None and item.id in rows
                },
            )
            for image_id, reason in failed:
                s.execute(
                    update(Image)
                    .where(Image.id == image_id)
                    .values(status=ImageStatus.FAILED, error=reason, updated_at=now)
                )

    def count_uncaptioned(self, collection_id: int) -> int:
        with self.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(Image)
                    .where(
                        Image.collection_id == collection_id,
                        Image.status == ImageStatus.EMBEDDED,
                        Image.caption.is_(None),
                    )
                )
                or 0
            )

    def images_without_caption(
        self, collection_ids: Sequence[int], limit: int
    ) -> list[ImageRecord]:
        """Embedded images that no model or sidecar has captioned yet, oldest first."""
        with self.session() as s:
            rows = s.scalars(
                select(Image)
                .where(
                    Image.collection_id.in_(list(collection_ids)),
                    Image.status == ImageStatus.EMBEDDED,
                    Image.caption.is_(None),
                )
                .order_by(Image.id)
                .limit(limit)
            )
            return [ImageRecord.from_row(row) for row in rows]

    def delete_images(self, ids: Iterable[int]) -> int:
        id_list = list(ids)
        if not id_list:
            return 0
        with self.session() as s:
            total = 0
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                result = s.execute(delete(Image).where(Image.id.in_(chunk)))
                total += cast("CursorResult[Any]", result).rowcount or 0
            return total

    def embedded_ids(self, collection_id: int) -> list[int]:
        with self.session() as s:
            return list(
                s.scalars(
                    select(Image.id).where(
                        Image.collection_id == collection_id, Image.status == ImageStatus.EMBEDDED
                    )
                )
            )

    def get_image(self, image_id: int) -> ImageRecord:
        with self.session() as s:
            row = s.get(Image, image_id)
            if row is None:
                raise NotFoundError(f"No image with id {image_id} in the catalog.")
            return ImageRecord.from_row(row)

    def get_images(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        if not ids:
            return {}
        out: dict[int, ImageRecord] = {}
        with self.session() as s:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                for row in s.scalars(select(Image).where(Image.id.in_(chunk))):
                    out[row.id] = ImageRecord.from_row(row)
        return out

    def failures(self, collection_id: int) -> list[tuple[str, str]]:
        """(catalog-form path, reason) of one collection's failed images (`failed_files` lists
        them for people)."""
        with self.session() as s:
            rows = s.execute(
                select(Image.path, Image.error).where(
                    Image.collection_id == collection_id, Image.status == ImageStatus.FAILED
                )
            )
            return [(r[0], r[1] or "") for r in rows]

    def failed_files(
        self,
        collection_id: int | None = None,
        *,
        reason: str | None = None,
        limit: int | None = None,
    ) -> list[FailedFile]:
        """The files the indexer could not embed, with the reason it stored, by collection
        name and path: of one collection or all, those whose reason contains `reason` (in any
        case), at most `limit`. What `pixseek failures` and the browse page list."""
        query = (
            select(Collection.name, Image.path, Image.error)
            .join(Collection, Image.collection_id == Collection.id)
            .where(Image.status == ImageStatus.FAILED)
            .order_by(Collection.name, Image.path)
            .limit(limit)
        )
        if collection_id is not None:
            query = query.where(Image.collection_id == collection_id)
        if reason:
            query = query.where(func.lower(Image.error).contains(reason.lower(), autoescape=True))
        with self.session() as s:
            return [
                FailedFile(collection=name, path=display_path(path), reason=error or "")
                for name, path, error in s.execute(query)
            ]

    def count_by_status(self, collection_id: int | None = None) -> dict[str, int]:
        with self.session() as s:
            query = select(Image.status, func.count()).group_by(Image.status)
            if collection_id is not None:
                query = query.where(Image.collection_id == collection_id)
            return dict(s.execute(query).all())

    def set_enrichment(
        self,
        image_id: int,
        *,
        caption: str | None = None,
        caption_model: str | None = None,
        tags: Tags | None = None,
    ) -> None:
        """Store a caption and/or tags and refresh the row's full-text entry."""
        with self.session() as s:
            row = s.get(Image, image_id)
            if row is None:
                return
            if caption is not None:
                row.caption, row.caption_model = caption, caption_model
            if tags is not None:
                row.tags = tags
                replace_image_tags(s, {image_id: tags})
            row.search_text = search_text_for(row.path, row.caption, row.tags)
            row.updated_at = utcnow()

    def untagged_ids(self, collection_id: int, tagger: str) -> list[int]:
        """Embedded images whose tags were not written by `tagger` (never tagged, tagged by
        another model or vocabulary, or re-embedded since), oldest first."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Image.id)
                    .where(
                        Image.collection_id == collection_id,
                        Image.status == ImageStatus.EMBEDDED,
                        or_(Image.tags_model.is_(None), Image.tags_model != tagger),
                    )
                    .order_by(Image.id)
                )
            )

    def set_tags(self, tags_by_id: dict[int, Tags], tagger: str) -> None:
        """Store the tags of a batch of images (one transaction) and refresh their full text."""
        if not tags_by_id:
            return
        now = utcnow()
        with self.session() as s:
            found = list(s.scalars(select(Image).where(Image.id.in_(list(tags_by_id)))))
            for row in found:
                row.tags, row.tags_model = tags_by_id[row.id], tagger
                row.search_text = search_text_for(row.path, row.caption, row.tags)
                row.updated_at = now
            replace_image_tags(s, {row.id: tags_by_id[row.id] for row in found})

    # -- photo metadata (taken time, camera, file type) ----------------------------------------

    def unread_metadata(self, collection_id: int) -> list[UnreadMetadata]:
        """Embedded rows whose metadata was never read (embedded before revision 0004), in id
        order: what the indexer's backfill reads from the file headers."""
        with self.session() as s:
            rows = s.execute(
                select(Image.id, Image.path, Image.path_key)
                .where(
                    Image.collection_id == collection_id,
                    Image.status == ImageStatus.EMBEDDED,
                    Image.file_type.is_(None),
                )
                .order_by(Image.id)
            )
            return [UnreadMetadata(*r) for r in rows]

    def set_metadata(self, updates: Sequence[MetadataUpdate]) -> None:
        """Store metadata read from the files (one transaction); a row without an EXIF date
        takes its file's mtime as its taken time."""
        if not updates:
            return
        by_id = dict(updates)
        with self.session() as s:
            for row in s.scalars(select(Image).where(Image.id.in_(list(by_id)))):
                _record_metadata(row, by_id[row.id])

    def backfill_search_text(self, batch: int = 1000) -> int:
        """Fill `search_text` of rows that predate full-text search (once, after an upgrade)."""
        done = 0
        while True:
            with self.session() as s:
                rows = list(
                    s.scalars(select(Image).where(Image.search_text.is_(None)).limit(batch))
                )
                for row in rows:
                    row.search_text = search_text_for(row.path, row.caption, row.tags)
                done += len(rows)
            if len(rows) < batch:
                return done

    # -- index builds ------------------------------------------------------------------------

    def index_build(self, collection_id: int) -> IndexBuild | None:
        with self.session() as s:
            return s.scalar(select(IndexBuild).where(IndexBuild.collection_id == collection_id))

    def mark_index_dirty(self, collection_id: int) -> None:
        """Generation 0 means "a writer is changing the index": no saved file matches it, so a
        writer that crashed leaves a state the next one recognises as needing a rebuild."""
        with self.session() as s:
            s.execute(
                update(IndexBuild)
                .where(IndexBuild.collection_id == collection_id)
                .values(generation=0)
            )

    def record_index_build(
        self,
        collection_id: int,
        *,
        model_id: str,
        dim: int,
        factory: str,
        count: int,
        generation: int,
    ) -> None:
        with self.session() as s:
            row = s.scalar(select(IndexBuild).where(IndexBuild.collection_id == collection_id))
            if row is None:
                row = IndexBuild(collection_id=collection_id)
                s.add(row)
            row.model_id, row.dim, row.factory = model_id, dim, factory
            row.count, row.generation, row.updated_at = count, generation, utcnow()


def _translate_database_error(exc: DBAPIError, engine: Engine) -> PixseekError | None:
    """The user-facing error for a failed catalog transaction, or None to let it propagate."""
    message = str(exc.orig).strip()
    if engine.dialect.name == "sqlite":
        database = engine.url.database or "the SQLite catalog"
        if "disk is full" in message:
            return disk_full_error(database)
        if "readonly database" in message:
            return read_only_error(database)
        return None
    lost = exc.connection_invalidated or (
        isinstance(exc, OperationalError)
        and any(
            sign in message
            for sign in (
                "terminating connection",
                "server closed the connection",
                "connection is lost",
            )
        )
    )
    if not lost:
        return None
    shown = engine.url.render_as_string(hide_password=True)
    first_line = message.splitlines()[0] if message else type(exc.orig).__name__
    return CatalogError(
        f"Lost the connection to the catalog database {shown} ({first_line}): the server "
        "restarted or dropped the connection. Everything already recorded is kept; run the same "
        "command again to resume once the server is up."
    )


def _collection_info(row: Collection) -> CollectionInfo:
    return CollectionInfo(
        id=row.id, name=row.name, model_spec=row.model_spec, model_id=row.model_id, dim=row.dim
    )


def _record_embedded(row: Image, item: EmbeddedImage, now: datetime) -> None:
    """Mark `row` embedded with what decoding learned (and its tags, when the batch has them)."""
    row.status, row.error, row.updated_at = ImageStatus.EMBEDDED, None, now
    row.width, row.height, row.content_hash = item.width, item.height, item.content_hash
    if item.tags is not None:
        row.tags, row.tags_model = item.tags.tags, item.tags.model
        row.search_text = search_text_for(row.path, row.caption, row.tags)
    if item.metadata is not None:
        _record_metadata(row, item.metadata)


def _record_metadata(row: Image, metadata: ImageMetadata) -> None:
    """Store what was read from a row's file; without an EXIF date the taken time is the file's
    mtime (`search.images.metadata`)."""
    row.file_type = metadata.file_type
    row.camera_make, row.camera_model = metadata.camera_make, metadata.camera_model
    if metadata.taken_at is not None:
        row.taken_at, row.taken_at_source = metadata.taken_at, TakenAtSource.EXIF
    else:
        row.taken_at = mtime_as_taken_at(row.mtime)
        row.taken_at_source = TakenAtSource.MTIME if row.taken_at is not None else None


def open_catalog(url: str, *, upgrade: bool = False) -> Catalog:
    """Connect to the catalog at `url` and check its schema.

    `upgrade=True` brings an old or empty schema to the newest revision (the embedded SQLite
    default does this on first use); otherwise an out-of-date schema raises
    `SchemaOutOfDateError` naming the command that fixes it.
    """
    engine = _create_engine(url)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
        head = SCHEMA_REVISION
        if current != head:
            if upgrade:
                upgrade_database(engine)
                Catalog(engine).backfill_search_text()
            else:
                engine.dispose()
                shown = make_url(url).render_as_string(hide_password=True)
                raise SchemaOutOfDateError(
                    f"The catalog at {shown} is at schema revision {current or 'none (empty)'}, "
                    f"this pixseek needs {head}. Run: pixseek db upgrade"
                )
    except SQLAlchemyError as exc:
        engine.dispose()
        raise _open_error(exc, engine, url) from exc
    return Catalog(engine)


def catalog_revision(url: str) -> str | None:
    """The schema revision of the catalog at `url`, checking and changing nothing (None: an
    empty database, or no SQLite file yet, which this does not create)."""
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if parsed.get_backend_name() == "sqlite" and not in_memory and not Path(database).exists():
        return None
    engine = _create_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    except SQLAlchemyError as exc:
        raise _open_error(exc, engine, url) from exc
    finally:
        engine.dispose()


def _open_error(exc: SQLAlchemyError, engine: Engine, url: str) -> PixseekError:
    """What to tell the user when the catalog at `url` cannot be opened."""
    if not isinstance(exc, OperationalError):
        return CatalogError(f"Catalog error: {exc}")
    if engine.dialect.name == "sqlite":
        translated = _translate_database_error(exc, engine)
        folder = Path(engine.url.database or ".").parent
        if translated is None and not os.access(folder, os.W_OK):
            translated = read_only_error(folder)  # e.g. "unable to open database file"
        if translated is not None:
            return translated
    shown = make_url(url).render_as_string(hide_password=True)
    return CatalogError(
        f"Cannot open the catalog at {shown}: {exc.orig}. Check PIXSEEK_DATABASE_URL "
        "(or unset it to use the SQLite file in the data directory)."
    )
