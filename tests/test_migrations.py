"""Upgrading a catalog with data in it, from the first Alembic revision to head, on SQLite and
PostgreSQL: every row is still there and reads back through the catalog, the columns later
revisions added are filled where they derive from existing data, and searches work after."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from search.catalog import Catalog, open_catalog
from search.catalog.fulltext import full_text_search
from search.catalog.migrate import head_revision, upgrade_database

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _fill_first_revision(engine: sa.Engine) -> None:
    """Rows as a pixseek of revision 0001 wrote them."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO collections (id, name, model_spec, model_id, dim, created_at) "
                "VALUES (1, 'photos', 'tiny-test', 'open_clip:tiny/random', 16, :t)"
            ),
            {"t": CREATED},
        )
        rows = [
            {
                "id": i,
                "path": f"/photos/2024/img_{i:03d}.jpg",
                "key": f"k{i:03d}",
                "status": "failed" if i == 5 else "embedded",
                "error": "decode: truncated file" if i == 5 else None,
                "caption": "a dog on a beach" if i == 1 else None,
                "tags": '[{"label": "beach", "score": 0.9}]' if i in (1, 2) else None,
            }
            for i in range(1, 6)
        ]
        connection.execute(
            sa.text(
                "INSERT INTO images (id, collection_id, path, path_key, content_hash, size, "
                "mtime, width, height, status, error, caption, caption_model, tags, created_at, "
                "updated_at) VALUES (:id, 1, :path, :key, NULL, 1000, 1714560000.0, 640, 480, "
                ":status, :error, :caption, NULL, :tags, :t, :t)"
            ),
            [row | {"t": CREATED} for row in rows],
        )
        connection.execute(
            sa.text(
                "INSERT INTO index_builds (id, collection_id, model_id, dim, factory, count, "
                "generation, updated_at) VALUES (1, 1, 'open_clip:tiny/random', 16, "
                "'IDMap2,Flat', 4, 3, :t)"
            ),
            {"t": CREATED},
        )
        connection.execute(
            sa.text(
                "INSERT INTO jobs (id, collection_id, kind, state, args, total, done, failed, "
                "created_at) VALUES (1, 1, 'index', 'done', :args, 5, 5, 1, :t)"
            ),
            {"t": CREATED, "args": '{"paths": ["/photos"], "collection": "photos"}'},
        )


def _text(catalog: Catalog, query: str) -> list[tuple[int, float]]:
    return full_text_search(catalog, query, collection_ids=None, limit=10)


def test_a_first_revision_catalog_with_data_upgrades_to_head(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        upgrade_database(engine, "0001")
        _fill_first_revision(engine)
    finally:
        engine.dispose()

    catalog = open_catalog(database_url, upgrade=True)
    try:
        with catalog.session() as session:
            revision = session.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert revision.scalar_one() == head_revision()
        (collection,) = catalog.list_collections()
        assert (collection.name, collection.model_id, collection.dim) == (
            "photos",
            "open_clip:tiny/random",
            16,
        )
        records = catalog.get_images(list(range(1, 6)))
        assert sorted(records) == [1, 2, 3, 4, 5]
        assert records[1].caption == "a dog on a beach"
        assert records[1].tags == [{"label": "beach", "score": 0.9}]
        assert records[5].status == "failed" and records[5].error == "decode: truncated file"
        assert catalog.count_by_status(collection.id) == {"embedded": 4, "failed": 1}
        build = catalog.index_build(collection.id)
        assert build is not None and (build.count, build.generation) == (4, 3)
        (job,) = catalog.list_jobs(10)
        assert (job.state, job.total, job.done, job.failed) == ("done", 5, 5, 1)
        # 0002 filled the full-text column from what the rows already held
        found = [image_id for image_id, _ in _text(catalog, "dog")]
        assert found == [1]
        found = [image_id for image_id, _ in _text(catalog, "beach")]
        assert sorted(found) == [1, 2]
    finally:
        catalog.close()
