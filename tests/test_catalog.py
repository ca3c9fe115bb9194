"""The catalog schema: Alembic revisions up/down/up on both databases, the revisions agree with
the application's table definitions, and an out-of-date schema is refused with the fix."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from search.catalog import EmbeddedImage, FailedImage, NewImage, open_catalog
from search.catalog.fulltext import autogenerate_filters
from search.catalog.migrate import downgrade_database, head_revision, upgrade_database
from search.catalog.schema import Base
from search.errors import SchemaOutOfDateError


def _engine(url: str):  # type: ignore[no-untyped-def]
    return open_catalog(url, upgrade=True).engine


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = _engine(database_url)
    assert {"collections", "images", "index_builds", "jobs"} <= set(
        inspect(engine).get_table_names()
    )
    downgrade_database(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(engine)
    assert "images" in inspect(engine).get_table_names()
    engine.dispose()


def test_revisions_match_table_definitions(database_url: str) -> None:
    engine = _engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts=autogenerate_filters()), Base.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_out_of_date_schema_is_refused_with_the_command_that_fixes_it(database_url: str) -> None:
    engine = _engine(database_url)
    downgrade_database(engine, "base")
    engine.dispose()
    with pytest.raises(SchemaOutOfDateError) as info:
        open_catalog(database_url)
    assert "pixseek db upgrade" in str(info.value)
    assert head_revision() in str(info.value)


def test_unreachable_database_is_a_clear_error() -> None:
    from search.errors import CatalogError

    with pytest.raises(CatalogError) as info:
        open_catalog("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "PIXSEEK_DATABASE_URL" in str(info.value)


def test_catalog_round_trip(database_url: str) -> None:
    catalog = open_catalog(database_url, upgrade=True)
    info = catalog.create_collection("c", model_spec="tiny-test", model_id="m", dim=4)
    ids = catalog.add_pending_images(
        info.id,
        [
            NewImage(path="/a/x.jpg", path_key="k1", size=10, mtime=1.5),
            NewImage(path="fsbytes:/a/%FF.jpg", path_key="k2", size=11, mtime=2.5),
        ],
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    catalog.finish_batch(
        [EmbeddedImage(id=ids[0], width=3, height=4, content_hash="h")],
        [FailedImage(ids[1], "broken: x")],
    )
    assert catalog.embedded_ids(info.id) == [ids[0]]
    assert catalog.count_by_status(info.id) == {"embedded": 1, "failed": 1}
    assert catalog.get_image(ids[1]).display_path == "/a/\ufffd.jpg"
    catalog.record_index_build(
        info.id, model_id="m", dim=4, factory="IDMap2,Flat", count=1, generation=3
    )
    catalog.record_index_build(
        info.id, model_id="m", dim=4, factory="IDMap2,Flat", count=1, generation=4
    )
    assert catalog.index_build(info.id).generation == 4
    assert catalog.delete_images(ids) == 2
    catalog.close()


def test_sqlite_catalog_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog = open_catalog(f"sqlite:///{tmp_path / 'c.db'}", upgrade=True)
    with catalog.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    catalog.close()
