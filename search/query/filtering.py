"""Vector search under exact metadata filters: the top `fetch` matching images of a collection,
never a non-matching one, and `fetch` of them whenever that many match.

Two ways to get there, chosen per query from the filter's selectivity (how many images of the
collection match, `Catalog.count_matching`, against the vectors in the index):

- ID selector: the catalog lists the matching ids and FAISS ranks only those
  (`VectorIndex.search(..., allowed_ids=...)`). Exact in one pass; its cost grows with the
  number of matching ids (read from SQL, put in a hash set).
- Over-fetch and post-filter: FAISS ranks everything, the catalog checks the best candidates
  (`Catalog.filter_ids`), and the fetch grows until enough matched or nothing is left. Its
  cost grows with the candidates checked, about `fetch * total / matching`.

Both scan every vector of a flat index, so the choice weighs the SQL work of each. The selector
streams the `matching` ids; over-fetching counts the matches (to size the fetch) and checks
about `fetch * total / matching` candidates by id, each check dearer than streaming an id. The
two cost the same near `matching**2 = SELECTOR_BIAS * fetch * total`, so the selector is used
up to `selector_limit(total, fetch) = sqrt(SELECTOR_BIAS * fetch * total)` matching images.
`SELECTOR_BIAS` is the one tunable: `python -m benchmarks.filtered_search` measured the
crossover near 20 on SQLite with 10,000 and with 100,000 images (fetch 10); 16 leans towards
the over-fetch, whose cost does not grow with the matching set. The catalog is asked for at
most `selector_limit + 1` matching ids first: a selective filter is answered from that one
query, and only a broad one costs a count on top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from search.schemas import SearchFilters
from search.storage.faiss_index import VectorIndex

__all__ = ["SELECTOR_BIAS", "FilterCatalog", "filtered_vector_hits", "selector_limit"]

SELECTOR_BIAS = 16.0
_OVER_FETCH_MARGIN = 1.25  # the estimate is an average; fetch a little more at once
_OVER_FETCH_PAD = 16
_GROWTH = 4  # when a post-filter came up short: fetch this many times more


class FilterCatalog(Protocol):
    """What filtered search asks of the catalog (`search.catalog.Catalog` provides it)."""

    def count_matching(self, filters: SearchFilters, collection_ids: Sequence[int]) -> int: ...

    def matching_ids(
        self, filters: SearchFilters, collection_ids: Sequence[int], *, limit: int | None = None
    ) -> np.ndarray: ...

    def filter_ids(self, filters: SearchFilters, ids: Sequence[int]) -> set[int]: ...


Hits = list[tuple[float, int]]


def selector_limit(total: int, fetch: int) -> int:
    """The most matching images for which a search of `fetch` results over `total` vectors
    goes into FAISS as an ID selector (see the module docstring)."""
    return max(fetch, math.isqrt(int(SELECTOR_BIAS * fetch * total)))


def filtered_vector_hits(
    catalog: FilterCatalog,
    index: VectorIndex,
    query_vector: np.ndarray,
    filters: SearchFilters,
    collection_id: int,
    fetch: int,
) -> Hits:
    """(score, image id) of the best `fetch` images of the collection that match `filters`,
    best first: exactly min(fetch, matching images in the index) of them.

    `query_vector` is (1, d), L2-normalised; `index` is the collection's."""
    total = index.count
    if fetch <= 0 or total == 0:
        return []
    if not filters.has_filters:
        return _hits(*index.search(query_vector, fetch))
    limit = selector_limit(total, fetch)
    allowed = catalog.matching_ids(filters, [collection_id], limit=limit + 1)
    if len(allowed) <= limit:
        return _hits(*index.search(query_vector, fetch, allowed_ids=allowed))
    matching = catalog.count_matching(filters, [collection_id])
    if matching == 0:  # rows changed between the two queries
        return []
    return _post_filtered(catalog, index, query_vector, filters, min(fetch, matching), matching)


def _first_fetch(want: int, matching: int, total: int) -> int:
    """Candidates to rank so that about `want` of them match, at selectivity matching/total."""
    return min(total, math.ceil(want * total / matching * _OVER_FETCH_MARGIN) + _OVER_FETCH_PAD)


def _post_filtered(
    catalog: FilterCatalog,
    index: VectorIndex,
    query_vector: np.ndarray,
    filters: SearchFilters,
    want: int,
    matching: int,
) -> Hits:
    """Over-fetch, keep the matching candidates, and fetch more until `want` matched or the
    whole index was ranked (then every matching image in it is in the list)."""
    total = index.count
    k = _first_fetch(want, matching, total)
    verdicts: dict[int, bool] = {}
    while True:
        ranked = _hits(*index.search(query_vector, k))
        unknown = [image_id for _, image_id in ranked if image_id not in verdicts]
        if unknown:
            passed = catalog.filter_ids(filters, unknown)
            verdicts.update((image_id, image_id in passed) for image_id in unknown)
        kept = [(score, image_id) for score, image_id in ranked if verdicts[image_id]]
        if len(kept) >= want or k >= total:
            return kept[:want]
        k = min(total, k * _GROWTH)


def _hits(scores: np.ndarray, ids: np.ndarray) -> Hits:
    """The first query's (score, id) pairs, without FAISS's -1 padding."""
    if scores.shape[0] == 0:
        return []
    return [
        (float(score), int(image_id))
        for score, image_id in zip(scores[0], ids[0], strict=True)
        if image_id >= 0
    ]
