"""The words full-text search works with: what a row's `images.search_text` holds, and how a
user query is cut into terms.

Pure text, no database: `search.catalog.catalog` writes `search_text_for(...)` whenever a row's
path, caption or tags change, and `search.catalog.fulltext` turns `query_terms(...)` into the
database's query language. Both import this module; it imports neither of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from search.images.paths import display_path

__all__ = ["MAX_QUERY_TERMS", "query_terms", "search_text_for"]

MAX_QUERY_TERMS = 32
"""Words of a query beyond this many are ignored (a pasted paragraph is not a keyword query)."""

_MAX_TERM_CHARS = 64

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


def search_text_for(path: str, caption: str | None, tags: Sequence[Any] | None) -> str:
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
    for found in _WORD.findall(query.casefold()):
        word = found[:_MAX_TERM_CHARS]
        for term in (word, _fold_latin_accents(word)):
            if term not in terms:
                terms.append(term)
        if len(terms) >= MAX_QUERY_TERMS:
            return terms[:MAX_QUERY_TERMS]
    return terms
