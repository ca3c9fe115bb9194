"""Full-text search over what people can read about an image: file name words, caption, tags.

Vector search finds what an image looks like; it misses a rare word that a caption or a file
name states outright ("IMG_0412_grandmas_kitchen.jpg"). This module is the keyword half of the
`text` and `hybrid` search modes:

- `search_text_for` (from `search.catalog.search_text`, re-exported here) builds the text
  stored in `images.search_text` (the catalog writes it whenever a row's path, caption or tags
  change);
- `full_text_search` ranks catalog rows against a query with the database's own engine:
  SQLite FTS5 (`images_fts`, BM25) in the embedded default, PostgreSQL full-text search
  (`images.search_tsv`, GIN index, `ts_rank_cd`) on PostgreSQL. Revision 0002 creates both;

User text never reaches either query language as syntax: it is cut into words, and each word
goes in as a quoted term, ORed with the others so that a partial match ranks lower instead of
vanishing.

The FTS5 tables and `search_tsv` exist outside the SQLAlchemy models (neither has a portable
declaration); `autogenerate_filters` leaves them out when Alembic compares models and database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, text

from search.catalog.catalog import Catalog
from search.catalog.schema import ImageStatus
from search.catalog.search_text import MAX_QUERY_TERMS, query_terms, search_text_for
from search.errors import CatalogError

__all__ = [
    "MAX_QUERY_TERMS",
    "autogenerate_filters",
    "full_text_search",
    "query_terms",
    "search_text_for",
]

"""Reciprocal-rank fusion constant; 60 is the value of Cormack, Clarke and Büttcher (2009)."""

# Database objects of the full-text index that revision 0002 creates outside the models.
_FTS_TABLE_PREFIX = "images_fts"  # the FTS5 table and its shadow tables (_data, _idx, ...)
_TSV_COLUMN = "search_tsv"
_TSV_INDEX = "ix_images_search_tsv"


def _fts5_expression(terms: Sequence[str]) -> str:
    # Each term quoted (an FTS5 string: `"` doubled), so AND/OR/NOT/NEAR are plain words.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _tsquery_expression(terms: Sequence[str]) -> str:
    # Each term a quoted tsquery lexeme (`'` doubled, `\` escaped); the english config stems it.
    return " | ".join("'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms)


def full_text_search(
    catalog: Catalog, query: str, *, collection_ids: list[int] | None, limit: int
) -> list[tuple[int, float]]:
    """(image id, score) of the `embedded` rows matching `query`, best first, at most `limit`.

    Scores are positive and higher is better, comparable only within one call (SQLite: minus
    FTS5 `bm25`; PostgreSQL: `ts_rank_cd`). Rows matching more of the query's words, or rarer
    ones, rank higher. `collection_ids=None` searches every collection. A query with no words
    (empty, only punctuation or symbols) matches nothing.
    """
    terms = query_terms(query)
    if not terms or limit <= 0 or collection_ids == []:
        return []
    params: dict[str, Any] = {"status": ImageStatus.EMBEDDED, "limit": limit}
    collection_filter = ""
    if collection_ids is not None:
        collection_filter = " AND images.collection_id IN :collection_ids"
        params["collection_ids"] = list(collection_ids)

    if catalog.dialect == "sqlite":
        params["expression"] = _fts5_expression(terms)
        sql = (
            "SELECT images.id, -bm25(images_fts) AS score FROM images_fts "
            "JOIN images ON images.id = images_fts.rowid "
            "WHERE images_fts MATCH :expression AND images.status = :status"
            f"{collection_filter} ORDER BY score DESC, images.id LIMIT :limit"
        )
    elif catalog.dialect == "postgresql":
        params["expression"] = _tsquery_expression(terms)
        sql = (
            "SELECT images.id, ts_rank_cd(images.search_tsv, q.query) AS score "
            "FROM images, to_tsquery('english', :expression) AS q(query) "
            "WHERE images.search_tsv @@ q.query AND images.status = :status"
            f"{collection_filter} ORDER BY score DESC, images.id LIMIT :limit"
        )
    else:
        raise CatalogError(
            f"Full-text search supports SQLite and PostgreSQL catalogs, not {catalog.dialect}. "
            "Use mode=vector, or point PIXSEEK_DATABASE_URL at one of those."
        )
    statement = text(sql)
    if collection_ids is not None:
        statement = statement.bindparams(bindparam("collection_ids", expanding=True))
    with catalog.session() as session:
        rows = session.execute(statement, params).all()
    return [(int(image_id), float(score)) for image_id, score in rows]


def _is_full_text_object(name: str | None, type_: str, table_name: str | None) -> bool:
    if name is None:
        return False
    if type_ == "table":
        return name.startswith(_FTS_TABLE_PREFIX)
    if table_name == "images":
        return (type_, name) in (("column", _TSV_COLUMN), ("index", _TSV_INDEX))
    return False


def _include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    return not _is_full_text_object(name, type_, parent_names.get("table_name"))


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    table = getattr(obj, "table", None)
    return not _is_full_text_object(name, type_, getattr(table, "name", None))


def autogenerate_filters() -> dict[str, Callable[..., bool]]:
    """Alembic `include_name` / `include_object` hooks that skip the full-text objects which
    revision 0002 creates outside the models (`images_fts*` tables, `images.search_tsv` and its
    index). Pass to `context.configure(**autogenerate_filters())` in `migrations/env.py`, or as
    `MigrationContext.configure(connection, opts=autogenerate_filters())` before
    `compare_metadata`."""
    return {"include_name": _include_name, "include_object": _include_object}
