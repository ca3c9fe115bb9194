"""Full-text search over file name words, caption and tags, on SQLite FTS5 and PostgreSQL
tsvector: the revision that creates it, ranking, stemming, hostile queries, filters, and the
reciprocal-rank fusion that hybrid search uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text, update

from search.catalog import Catalog, EmbeddedImage, FailedImage, NewImage, open_catalog
from search.catalog.fulltext import (
    MAX_QUERY_TERMS,
    autogenerate_filters,
    full_text_search,
    query_terms,
    search_text_for,
)
from search.catalog.migrate import alembic_config, downgrade_database, upgrade_database
from search.catalog.schema import Base, Image
from search.images.paths import path_key
from search.query.fusion import reciprocal_rank_fusion

HOSTILE_QUERIES = [
    '"',
    "AND(",
    "*",
    "-",
    "",
    "   ",
    "NOT",
    "a OR",
    "NEAR(a b, 2)",
    "caption:zeppelin",
    "zep*",
    "'; DROP TABLE images; --",
    "!(&|)<->:*'\\",
    "x" * 1000,
    ("word " * 200)[:1000],
    "café naïve Zürich 東京 кошка 🦓",
    "\x00\x01\u200b",
]


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    catalog = open_catalog(database_url, upgrade=True)
    yield catalog
    catalog.close()


def add_images(catalog: Catalog, collection_id: int, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows through the catalog, embed (or fail) them, then write their `search_text`
    as the application will: from path, caption and tags."""
    ids = catalog.add_pending_images(
        collection_id,
        [
            NewImage(path=row["path"], path_key=path_key(row["path"]), size=1, mtime=1.0)
            for row in rows
        ],
    )
    status = [row.get("status", "embedded") for row in rows]
    catalog.finish_batch(
        [
            EmbeddedImage(id=i, width=8, height=8)
            for i, s in zip(ids, status, strict=True)
            if s == "embedded"
        ],
        [FailedImage(i, "broken") for i, s in zip(ids, status, strict=True) if s == "failed"],
    )
    with catalog.session() as session:
        for image_id, row in zip(ids, rows, strict=True):
            value = search_text_for(row["path"], row.get("caption"), row.get("tags"))
            session.execute(update(Image).where(Image.id == image_id).values(search_text=value))
    return ids


def hit_ids(
    catalog: Catalog, query: str, collection_ids: list[int] | None = None, limit: int = 10
) -> list[int]:
    hits = full_text_search(catalog, query, collection_ids=collection_ids, limit=limit)
    return [image_id for image_id, _ in hits]


def collection(catalog: Catalog, name: str = "photos") -> int:
    return catalog.create_collection(name, model_spec="tiny-test", model_id="m", dim=4).id


COMMON_CAPTIONS = [
    "a red circle on a blue background",
    "a blue square on a red background",
    "a green triangle on a white background",
    "a red square on a green background",
    "a white circle on a black background",
]


def test_full_text_revision_upgrades_downgrades_and_upgrades_again(database_url: str) -> None:
    catalog = open_catalog(database_url, upgrade=True)
    engine = catalog.engine
    [image_id] = add_images(
        catalog, collection(catalog), [{"path": "/z.jpg", "caption": "an airship"}]
    )

    def index_names() -> set[str]:
        return {ix["name"] for ix in inspect(engine).get_indexes("images")}

    def objects() -> tuple[set[str], set[str], set[str]]:
        insp = inspect(engine)
        columns = {c["name"] for c in insp.get_columns("images")}
        with engine.connect() as conn:
            triggers = set()
            if engine.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type='trigger'"
                triggers = set(conn.exec_driver_sql(query).scalars())
        return set(insp.get_table_names()), columns, triggers

    tables, columns, triggers = objects()
    assert "search_text" in columns
    if engine.dialect.name == "sqlite":
        assert "images_fts" in tables and len(triggers) == 3, (tables, triggers)
    else:
        assert "search_tsv" in columns
        assert "ix_images_search_tsv" in index_names()
    assert hit_ids(catalog, "airship") == [image_id]

    downgrade_database(engine, "0001")
    tables, columns, triggers = objects()
    assert "search_text" not in columns and "search_tsv" not in columns, columns
    assert not any(t.startswith("images_fts") for t in tables) and not triggers, (tables, triggers)
    with engine.connect() as conn:  # (the ORM model already has search_text: plain SQL here)
        assert conn.execute(text("SELECT id FROM images")).scalars().all() == [image_id]
    assert "ix_images_collection_id_status" in index_names()

    upgrade_database(engine)
    assert hit_ids(catalog, "airship") == []  # the text went with the column
    with catalog.session() as session:
        session.execute(update(Image).where(Image.id == image_id).values(search_text="an airship"))
    assert hit_ids(catalog, "airship") == [image_id]

    downgrade_database(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    catalog.close()


def test_revisions_and_models_agree_once_full_text_objects_are_set_aside(catalog: Catalog) -> None:
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=autogenerate_filters())
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    # The same through migrations/env.py, as `alembic check` would run it.
    with catalog.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.check(config)


def test_rare_caption_word_is_found_first(catalog: Catalog) -> None:
    cid = collection(catalog)
    rows = [{"path": f"/p/img{i}.jpg", "caption": c} for i, c in enumerate(COMMON_CAPTIONS)]
    rows.append({"path": "/p/img9.jpg", "caption": "a red circle by a zeppelin on a blue sky"})
    ids = add_images(catalog, cid, rows)

    hits = full_text_search(catalog, "zeppelin", collection_ids=[cid], limit=10)
    assert [i for i, _ in hits] == [ids[-1]], hits

    # Partial matches still come back, ranked below the row matching every word.
    hits = full_text_search(catalog, "red zeppelin", collection_ids=[cid], limit=10)
    assert hits[0][0] == ids[-1], hits
    assert {ids[0], ids[1], ids[3]} <= {i for i, _ in hits}, hits
    scores = [s for _, s in hits]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True), hits


def test_stemming_matches_other_forms_of_a_word(catalog: Catalog) -> None:
    cid = collection(catalog)
    ids = add_images(
        catalog,
        cid,
        [
            {"path": "/p/a.jpg", "caption": "a dog runs along the beach"},
            {"path": "/p/b.jpg", "caption": "a cat sleeps on a sofa"},
        ],
    )
    assert hit_ids(catalog, "running") == [ids[0]]
    assert hit_ids(catalog, "Sleeping cats") == [ids[1]]


def test_file_name_words_and_tags_are_found(catalog: Catalog) -> None:
    cid = collection(catalog)
    ids = add_images(
        catalog,
        cid,
        [
            {"path": "/photos/2019/IMG_2041_grandmasKitchen.jpg", "caption": "a room"},
            {
                "path": "/photos/2019/holiday-lighthouse.v2.png",
                "caption": None,
                "tags": [{"label": "seascape", "score": 0.8}, {"label": "tower", "score": 0.4}],
            },
            {"path": "fsbytes:/photos/%FFmarmot.jpg", "caption": None},
        ],
    )
    search = lambda q: hit_ids(catalog, q)  # noqa: E731
    assert search("kitchen") == [ids[0]]
    assert search("grandmas") == [ids[0]]
    assert search("img 2041") == [ids[0]]
    assert search("lighthouse") == [ids[1]]
    assert search("seascape") == [ids[1]]
    assert search("marmot") == [ids[2]]
    assert search("photos") == [], "directory names are not part of the searchable text"


def test_hostile_queries_do_not_raise(catalog: Catalog) -> None:
    cid = collection(catalog)
    add_images(catalog, cid, [{"path": "/p/and.jpg", "caption": "zeppelin and word café"}])
    for query in HOSTILE_QUERIES:
        hits = full_text_search(catalog, query, collection_ids=[cid], limit=5)
        assert isinstance(hits, list), (query, hits)
    assert full_text_search(catalog, '"', collection_ids=None, limit=5) == []
    assert full_text_search(catalog, "", collection_ids=None, limit=5) == []
    assert len(hit_ids(catalog, "zep* caption:zeppelin")) == 1


def test_accents_are_ignored_on_both_databases(catalog: Catalog) -> None:
    cid = collection(catalog)
    ids = add_images(
        catalog,
        cid,
        [
            {"path": "/p/Zürich.jpg", "caption": "a café at night"},
            {"path": "/p/b.jpg", "caption": "a naive painting of a cafe"},
        ],
    )
    search = lambda q: sorted(hit_ids(catalog, q))  # noqa: E731
    assert search("CAFE") == search("Café") == ids
    assert search("zurich") == search("ZÜRICH") == [ids[0]]
    assert search("naïve") == [ids[1]]


def test_only_embedded_rows_are_found(catalog: Catalog) -> None:
    cid = collection(catalog)
    ids = add_images(
        catalog,
        cid,
        [
            {"path": "/p/a.jpg", "caption": "zeppelin one", "status": "embedded"},
            {"path": "/p/b.jpg", "caption": "zeppelin two", "status": "pending"},
            {"path": "/p/c.jpg", "caption": "zeppelin three", "status": "failed"},
        ],
    )
    assert hit_ids(catalog, "zeppelin") == [ids[0]]


def test_collection_filter_and_limit(catalog: Catalog) -> None:
    first, second = collection(catalog, "first"), collection(catalog, "second")
    rows = [{"path": f"/p/{i}.jpg", "caption": "zeppelin"} for i in range(3)]
    ids_first, ids_second = add_images(catalog, first, rows), add_images(catalog, second, rows[:2])
    found = lambda cids, limit=10: set(hit_ids(catalog, "zeppelin", cids, limit))  # noqa: E731
    assert found([first]) == set(ids_first)
    assert found([second]) == set(ids_second)
    assert found([first, second]) == found(None) == set(ids_first + ids_second)
    assert found([]) == set()
    assert len(found(None, limit=2)) == 2


def test_index_follows_updates_and_deletes(catalog: Catalog) -> None:
    cid = collection(catalog)
    ids = add_images(catalog, cid, [{"path": f"/p/{n}.jpg", "caption": "zeppelin"} for n in "ab"])
    with catalog.session() as session:
        session.execute(update(Image).where(Image.id == ids[0]).values(search_text="an airship"))
        # An update that leaves search_text alone leaves the index alone.
        session.execute(update(Image).where(Image.id == ids[1]).values(caption="unrelated"))
    assert hit_ids(catalog, "zeppelin") == [ids[1]]
    assert hit_ids(catalog, "airship") == [ids[0]]
    catalog.delete_images([ids[1]])
    assert hit_ids(catalog, "zeppelin") == []
    if catalog.dialect == "sqlite":
        with catalog.engine.connect() as conn:  # the external-content index is consistent
            check = "INSERT INTO images_fts(images_fts, rank) VALUES ('integrity-check', 1)"
            conn.execute(text(check))


def test_search_text_for_splits_file_names_and_joins_caption_and_tags() -> None:
    tags = [{"label": "sea", "score": 0.9}, {"score": 1.0}]
    value = search_text_for("/a/b/IMG_2041-sunsetBeach.final.JPG", "Waves at dusk", tags)
    assert value.split("\n") == ["IMG 2041 sunset Beach sunsetBeach final", "Waves at dusk", "sea"]
    assert search_text_for("/a/.hidden", None, None) == "hidden"
    assert search_text_for("/a/HTMLPage2x.png", "", []) == "HTML Page 2 x HTMLPage2x"
    assert search_text_for("fsbytes:/a/%FFcat.jpg", None, None) == "\ufffdcat"
    assert search_text_for("/a/Zürich.jpg", "café", None) == "Zürich\ncafé\nZurich cafe"


def test_query_terms_keep_words_only() -> None:
    assert query_terms('"Red" AND( zeppelin* -red') == ["red", "and", "zeppelin"]
    assert query_terms("") == [] and query_terms('" * - ( ) : ^') == []
    assert query_terms("Café cafe") == ["café", "cafe"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(500)))) == MAX_QUERY_TERMS


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62) and scores[4] == pytest.approx(1 / 63)
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    # An id in both lists beats one at the top of a single list; ties keep first-seen order.
    assert [i for i, _ in reciprocal_rank_fusion([[7, 8], [9, 8]])] == [8, 7, 9]
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[], []]) == []
    assert reciprocal_rank_fusion([[5, 5, 6]], k=0) == [(5, 1.0), (6, 1 / 3)]
    with pytest.raises(ValueError, match="k >= 0"):
        reciprocal_rank_fusion([[1]], k=-1)
