"""Browsing without a query: a collection's images in date or path order, page by page, and the
counts that let a person walk it (a folder tree, years and months, the files that failed).

Everything here is answered from the SQL catalog (`search.catalog.browse_queries`): no encoder
is loaded and no FAISS index is read, so browsing works while the model warms up, and on a
server without the model's weights. A page has the shape of a search page (`SearchResponse`),
so clients render both alike; browse results have no query to score against, so their
`score` and `clip_score` are 0.

The cursor is opaque to clients: base64 of a fingerprint of the listing (filters, collection
and sort) and the sort key of the last image shown. A cursor of another listing, or one that
was not given out by pixseek, is refused (`InputError`, HTTP 400) rather than answered with
some other listing's page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

from search.browse_schemas import (
    BrowseOptions,
    CollectionSummary,
    DateCounts,
    FailedFileEntry,
    FolderNode,
    MonthCount,
    YearCount,
)
from search.catalog import Catalog, CollectionInfo, ImageRecord
from search.catalog.browse_queries import (
    BrowseKey,
    folder_counts,
    month_counts,
    page_keys,
    status_counts,
    undated_count,
)
from search.catalog.filters import matching_clause
from search.errors import InputError
from search.images.paths import display_path
from search.query.results import result_from_record
from search.schemas import SearchFilters, SearchResponse, SearchResult

__all__ = ["CatalogBrowser", "decode_cursor", "encode_cursor", "listing_fingerprint"]

_PAGE_FIELDS = {"cursor", "limit"}  # what may change from page to page of one listing


def listing_fingerprint(options: BrowseOptions) -> str:
    """A short hash of everything that decides a listing (not the page)."""
    fields = options.model_dump(mode="json", exclude=_PAGE_FIELDS)
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=9).hexdigest()


def encode_cursor(fingerprint: str, key: BrowseKey) -> str:
    """The cursor of the page after the row `key`, in the listing `fingerprint`."""
    taken_at = key.taken_at.isoformat() if key.taken_at is not None else None
    raw = json.dumps([fingerprint, key.image_id, taken_at, key.path], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str) -> BrowseKey:
    """The sort key a cursor starts after; a token that is not ours, or that belongs to another
    listing, is an `InputError` saying what to do."""
    try:
        padded = token + "=" * (-len(token) % 4)
        found, image_id, taken_at, path = json.loads(base64.urlsafe_b64decode(padded))
        key = BrowseKey(
            image_id=int(image_id),
            taken_at=datetime.fromisoformat(taken_at) if taken_at is not None else None,
            path=str(path) if path is not None else None,
        )
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InputError(
            "cursor is not a browse cursor pixseek gave out: pass the next_cursor of the "
            "previous page unchanged, or leave it out for the first page."
        ) from None
    if found != fingerprint:
        raise InputError(
            "cursor belongs to a different listing: keep the collection, filters and sort the "
            "same from page to page (only limit may change), or leave cursor out to start over."
        )
    return key


class CatalogBrowser:
    """Listings and counts of the catalog's embedded images. Cheap to build (it holds only the
    catalog); thread-safe because every call opens its own transaction.

    Build one per request: it remembers the collections it has looked up, so a page that asks
    for a collection's summary, listing, folders, dates and failures reads its row once (a
    collection renamed or dropped meanwhile is seen by the next request)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._known: dict[str, CollectionInfo] = {}

    def _require(self, name: str) -> CollectionInfo:
        """The collection named `name` (read once per browser); `NotFoundError` if unknown."""
        info = self._known.get(name)
        if info is None:
            info = self._known[name] = self.catalog.require_collection(name)
        return info

    # -- collections -------------------------------------------------------------------------

    def collections(self) -> list[CollectionSummary]:
        """Every collection with its encoder and its counts by status, in creation order."""
        with self.catalog.session() as s:
            counts = status_counts(s)
        return [_summary(info, counts.get(info.id, {})) for info in self.catalog.list_collections()]

    def collection(self, name: str) -> CollectionSummary:
        """One collection's summary; an unknown name is a `NotFoundError` listing the known."""
        info = self._require(name)
        with self.catalog.session() as s:
            counts = status_counts(s)
        return _summary(info, counts.get(info.id, {}))

    def _collections(self, name: str | None) -> list[CollectionInfo]:
        return [self._require(name)] if name else self.catalog.list_collections()

    def _collection_ids(self, name: str | None) -> list[int]:
        return [info.id for info in self._collections(name)]

    # -- listing -----------------------------------------------------------------------------

    def page(self, options: BrowseOptions) -> SearchResponse:
        """One page of the images matching `options` in its order, with the next page's cursor
        (None on the last page) and the size of the whole listing."""
        fingerprint = listing_fingerprint(options)
        after = decode_cursor(options.cursor, fingerprint) if options.cursor else None
        listed = self._collections(options.collection)
        collection_ids = [info.id for info in listed]
        total = self.catalog.count_matching(options.filters(), collection_ids)
        matching = matching_clause(options.filters(), collection_ids)
        with self.catalog.session() as s:
            keys = page_keys(
                s,
                matching,
                sort=options.sort,
                dialect=self.catalog.dialect,
                after=after,
                limit=options.limit + 1,  # one more tells whether a next page exists
            )
        more, keys = len(keys) > options.limit, keys[: options.limit]
        records = self.catalog.get_images([key.image_id for key in keys])
        names = {info.id: info.name for info in listed}
        results = [
            _result(records[key.image_id], names)
            for key in keys
            if key.image_id in records  # deleted between the two reads
        ]
        return SearchResponse(
            query=None,
            k=total,
            total=total,
            results=results,
            next_cursor=encode_cursor(fingerprint, keys[-1]) if more else None,
        )

    # -- counts ------------------------------------------------------------------------------

    def folders(self, name: str, filters: SearchFilters | None = None) -> FolderNode:
        """The folder tree of a collection's embedded images (matching `filters`), from the
        deepest folder that holds them all; counts include every folder below."""
        ids = self._collection_ids(name)
        with self.catalog.session() as s:
            direct = folder_counts(s, matching_clause(filters or SearchFilters(), ids))
        return folder_tree(
            {display_path(folder).rstrip("/"): count for folder, count in direct.items()}
        )

    def dates(self, name: str, filters: SearchFilters | None = None) -> DateCounts:
        """A collection's embedded images (matching `filters`) per year, newest first, and
        per month of each year (UTC)."""
        matching = matching_clause(filters or SearchFilters(), self._collection_ids(name))
        with self.catalog.session() as s:
            by_year = month_counts(s, matching, self.catalog.dialect)
            undated = undated_count(s, matching)
        years = [
            YearCount(
                year=year,
                count=sum(months.values()),
                months=[MonthCount(month=m, count=n) for m, n in sorted(months.items())],
            )
            for year, months in sorted(by_year.items(), reverse=True)
        ]
        return DateCounts(years=years, undated=undated)

    def failed_files(self, name: str, limit: int | None = None) -> list[FailedFileEntry]:
        """A collection's files that failed to index, by path, with their reasons (at most
        `limit`; `collection(name).failed` says how many there are)."""
        info = self._require(name)
        return [
            FailedFileEntry(path=failed.path, reason=failed.reason)
            for failed in self.catalog.failed_files(info.id, limit=limit)
        ]


def folder_tree(direct: dict[str, int]) -> FolderNode:
    """The tree of folders (display form, no trailing `/`; "" is the root) -> images directly
    in each, with recursive counts, from the deepest folder holding every image."""
    nodes: dict[str, FolderNode] = {"": FolderNode(path="/", name="/", count=0, direct=0)}
    for folder, count in sorted(direct.items()):
        parts = [part for part in folder.split("/") if part]
        path = ""
        for part in parts:
            parent = nodes[path]
            path = f"{path}/{part}"
            if path not in nodes:
                nodes[path] = FolderNode(path=path, name=part, count=0, direct=0)
                parent.folders.append(nodes[path])
            parent.count += count
        nodes[path].count += count
        nodes[path].direct += count
    root = nodes[""]
    while root.direct == 0 and len(root.folders) == 1:
        root = root.folders[0]
    _sort_by_name(root)
    return root


def _sort_by_name(node: FolderNode) -> None:
    node.folders.sort(key=lambda child: child.name)
    for child in node.folders:
        _sort_by_name(child)


def _summary(info: CollectionInfo, counts: dict[str, int]) -> CollectionSummary:
    return CollectionSummary(
        name=info.name,
        model_id=info.model_id,
        images=sum(counts.values()),
        embedded=counts.get("embedded", 0),
        failed=counts.get("failed", 0),
        pending=counts.get("pending", 0),
    )


def _result(record: ImageRecord, names: dict[int, str]) -> SearchResult:
    """A browse result: the catalog data of a search result, with no score (0)."""
    return result_from_record(record, names.get(record.collection_id, ""))
