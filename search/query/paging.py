"""Pages of one search: opaque cursors and the result sets they point into.

A search's result set (after filters, cutoff, dedupe, rerank and sort) is computed once and kept
in a small LRU keyed by a fingerprint of the request (every field but `cursor` and `limit`). The
cursor carries that fingerprint, a snapshot number and an offset, so the next page is a slice of
the same list: stable (no duplicates or gaps even while an indexer adds images) and cheap (no
model, no FAISS, one catalog lookup for the page's rows). When the set was evicted, the search
runs again; the query vector is still in the query-vector cache, so that is cheap too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from search.errors import InputError
from search.schemas import SearchRequest

__all__ = ["Hit", "PageCursor", "ResultSet", "ResultSetCache", "fingerprint"]

_PAGE_FIELDS_EXCLUDED = {"cursor", "limit"}


@dataclass(frozen=True, slots=True)
class Hit:
    """One result of a result set: its final score and the scores that made it."""

    image_id: int
    score: float
    clip_score: float
    text_score: float | None = None
    rerank_score: float | None = None


@dataclass(frozen=True, slots=True)
class ResultSet:
    """The whole ordered result set of one search, and where its cutoff fell."""

    hits: tuple[Hit, ...]
    k: int
    cutoff_score: float | None
    timings: dict[str, float]


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the next page starts, in which result set."""

    fingerprint: str
    snapshot: int
    offset: int

    def encode(self) -> str:
        raw = json.dumps([self.fingerprint, self.snapshot, self.offset], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, expected_fingerprint: str) -> PageCursor:
        """The cursor in `token`; a token that is not one of ours, or that belongs to another
        search, is an error (a page of some other search would be silently wrong)."""
        try:
            padded = token + "=" * (-len(token) % 4)
            fingerprint, snapshot, offset = json.loads(base64.urlsafe_b64decode(padded))
            cursor = cls(str(fingerprint), int(snapshot), int(offset))
        except (ValueError, TypeError, UnicodeDecodeError):
            raise InputError(
                "cursor is not a cursor pixseek gave out: pass the next_cursor of the previous "
                "page unchanged, or leave it out for the first page."
            ) from None
        if cursor.fingerprint != expected_fingerprint:
            raise InputError(
                "cursor belongs to a different search: keep every option of the search the same "
                "from page to page (only limit may change), or leave cursor out to start over."
            )
        if cursor.offset < 0:
            raise InputError("cursor is damaged (negative offset): leave it out to start over.")
        return cursor


def fingerprint(request: SearchRequest, extra: str = "") -> str:
    """A short hash of everything that decides a search's result set (not the page)."""
    fields = request.model_dump(mode="json", exclude=_PAGE_FIELDS_EXCLUDED)
    raw = json.dumps([fields, extra], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=9).hexdigest()


class ResultSetCache:
    """At most `size` result sets, least recently used first out. Thread-safe."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._sets: OrderedDict[tuple[str, int], ResultSet] = OrderedDict()
        self._next_snapshot = 1

    def get(self, fingerprint: str, snapshot: int) -> ResultSet | None:
        with self._lock:
            found = self._sets.get((fingerprint, snapshot))
            if found is not None:
                self._sets.move_to_end((fingerprint, snapshot))
            return found

    def put(self, fingerprint: str, result_set: ResultSet) -> int:
        """Keep `result_set`; returns its snapshot number (for the cursor)."""
        with self._lock:
            snapshot = self._next_snapshot
            self._next_snapshot += 1
            if self.size > 0:
                self._sets[(fingerprint, snapshot)] = result_set
                while len(self._sets) > self.size:
                    self._sets.popitem(last=False)
            return snapshot
