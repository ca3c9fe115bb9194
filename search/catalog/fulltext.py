"""Full-text search over what people can read about an image: file name words, caption, tags.

Vector search finds what an image looks like; it misses a rare word that a caption or a file
name states outright ("IMG_0412_grandmas_kitchen.jpg"). This module is the keyword half of the
`text` and `hybrid` search modes:

- `search_text_for` builds the text stored in `images.search_text` (the application writes it
  whenever a row's path, caption or tags change);
- `full_text_search` ranks catalog rows against a query with the database's own engine:
  SQLite FTS5 (`images_fts`, BM25) in the embedded default, PostgreSQL full-text search
  (`images.search_tsv`, GIN index, `ts_rank_cd`) on PostgreSQL. Revision 0002 creates both;
- `reciprocal_rank_fusion` merges the vector and the keyword rankings for `hybrid`.

User text never reaches either query language as syntax: it is cut into words, and each word
goes in as a quoted term, ORed with the others so that a partial match ranks lower instead of
vanishing.

The FTS5 tables and `search_tsv` exist outside the SQLAlchemy models (neither has a portable
declaration); `autogenerate_filters` leaves them out when Alembic compares models and database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text

from search.catalog.schema import ImageStatus
from search.errors import CatalogError
from search.images.paths import display_path

if TYPE_CHECKING:
    from search.catalog.catalog import Catalog

__all__ = [
    "MAX_QUERY_TERMS",
    "RRF_K",
    "autogenerate_filters",
    "full_text_search",
    "query_terms",
    "reciprocal_rank_fusion",
    "search_text_for",
]

RRF_K = 60
"""Reciprocal-rank fusion constant; 60 is the value of Cormack, Clarke and Büttcher (2009)."""

MAX_QUERY_TERMS = 32
"""Words of a query beyond this many are ignored (a pasted paragraph is not a keyword query)."""

_MAX_TERM_CHARS = 64

# Database objects of the full-text index that revision 0002 creates outside the models.
_FTS_TABLE_PREFIX = "images_fts"  # the FTS5 table and its shadow tables (_data, _idx, ...)
_TSV_COLUMN = "search_tsv"
_TSV_INDEX = "ix_images_search_tsv"

_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; `_` separates like FTS5 does
_NAME_SEPARATORS = re.compile(r"[\s_.\-]+")
_CAMEL_BOUNDARY = re.compile(
    r"(?<=[a-z])(?=[A-Z])"  # sunsetBeach -> sunset Beach
    r"|(?<=[A-Z])(?=[A-Z][a-z])"  # HTMLPage -> HTML Page
    r"|(?<=[A-Za-z])(?=[0-9])"  # IMG2041 -> IMG 2041
    r"|(?<=[0-9])(?=[A-Za-z])"  # 2041beach -> 2041 beach
)


def _fold_latin_accents(word: str) -> str:
    """Drop combining marks from Latin letters ("Café" -> "Cafe"); kana, Hangul and Cyrillic
    keep theirs, since there a mark makes another letter."""
    out = []
    for char in word:
        parts = unicodedata.normalize("NFKD", char)
        base, marks = parts[0], parts[1:]
        if marks and base.isascii() and all(unicodedata.combining(m) for m in marks):
            out.append(base)
        else:
            out.append(char)
    return "".join(out)


def _file_name_words(path: str) -> list[str]:
    name = re.split(r"[\\/]", display_path(path))[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    words: list[str] = []
    for part in _NAME_SEPARATORS.split(stem):
        pieces = [w for w in _CAMEL_BOUNDARY.split(part) if w]
        words.extend(pieces)
        if len(pieces) > 1:
            words.append(part)  # "img11" is found by "img11" as well as by "img" and "11"
    return words


def search_text_for(path: str, caption: str | None, tags: list[dict[str, Any]] | None) -> str:
    """The `images.search_text` of a row: file name words, then caption, then tag labels.

    `path` is the catalog form (plain or `fsbytes:`); only the file name counts, its stem split
    on `_ - .`, spaces and camelCase, keeping each split word whole too
    ("IMG_2041_sunsetBeach.jpg" -> "IMG 2041 sunset Beach sunsetBeach").
    `tags` are the catalog's `[{"label": ..., "score": ...}]`; entries without a label are
    skipped. Words with accented Latin letters are repeated at the end without the accents, so
    that PostgreSQL (whose `english` configuration keeps accents) matches "cafe" to "café" as
    SQLite FTS5 (`remove_diacritics`) does.
    """
    parts = [" ".join(_file_name_words(path))]
    if caption:
        parts.append(caption.strip())
    for tag in tags or []:
        label = tag.get("label") if isinstance(tag, Mapping) else None
        if isinstance(label, str) and label.strip():
            parts.append(label.strip())
    searchable = "\n".join(p for p in parts if p)
    folded = [f for w in _WORD.findall(searchable) if (f := _fold_latin_accents(w)) != w]
    return "\n".join([searchable, " ".join(folded)]) if folded else searchable


def query_terms(query: str) -> list[str]:
    """The words of a user query, lower-cased, deduplicated, at most `MAX_QUERY_TERMS`.

    Anything that is not a letter or digit separates words, so no query-language syntax
    (quotes, parentheses, `AND`/`NOT` as operators, `*`, `-`, `:`) survives. A word with
    accented Latin letters also brings its unaccented form ("café" -> "café", "cafe").
    """
    terms: list[str] = []
    for word in _WORD.findall(query.casefold()):
        word = word[:_MAX_TERM_CHARS]
        for term in (word, _fold_latin_accents(word)):
            if term not in terms:
                terms.append(term)
        if len(terms) >= MAX_QUERY_TERMS:
            return terms[:MAX_QUERY_TERMS]
    return terms


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


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[int]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked id lists into one: (id, fused score) best first.

    Each list adds `1 / (k + rank)` (rank from 1) to the score of every id it contains, so an id
    near the top of several lists beats one at the top of a single list, and no list's raw
    score scale matters. `k = 60` is the constant of Cormack, Clarke and Büttcher,
    "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning Methods"
    (SIGIR 2009); a smaller k lets the very top ranks dominate more. Ties keep the order in
    which ids were first seen. An id repeated within one list counts at its best rank.
    """
    if k < 0:
        raise ValueError(f"reciprocal_rank_fusion needs k >= 0, got k={k}.")
    scores: dict[int, float] = {}
    for ranking in rankings:
        seen: set[int] = set()
        for rank, image_id in enumerate(ranking, start=1):
            if image_id in seen:
                continue
            seen.add(image_id)
            scores[image_id] = scores.get(image_id, 0.0) + 1.0 / (k + rank)
    order = {image_id: i for i, image_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


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
