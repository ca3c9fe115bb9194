"""Catalog queries behind exact metadata filters: how many images match a filter set, which
ones, which of a list of candidates do, and the facet counts for filter chips.

The search engine uses them to push filters into FAISS (`search.query.filtering`): the count
estimates a filter's selectivity, `matching_ids` feeds a FAISS ID selector when few images
match, `filter_ids` post-filters over-fetched candidates when many do."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from search.catalog.facets import facet_counts
from search.catalog.filters import filter_clause, matching_clause
from search.catalog.schema import Image
from search.schemas import FacetsResponse, SearchFilters

__all__ = ["FilterQueries"]

_ID_CHUNK = 500  # ids per IN (...) list


class FilterQueries:
    """Filter-set queries (`search.catalog.filters` says what each filter means)."""

    @property
    def dialect(self) -> str:  # provided by Catalog
        raise NotImplementedError

    def session(self) -> AbstractContextManager[Session]:  # provided by Catalog
        raise NotImplementedError

    def count_matching(self, filters: SearchFilters, collection_ids: Sequence[int]) -> int:
        """How many embedded images of `collection_ids` match `filters`."""
        with self.session() as s:
            query = select(func.count()).select_from(Image)
            return int(s.scalar(query.where(matching_clause(filters, collection_ids))) or 0)

    def matching_ids(
        self, filters: SearchFilters, collection_ids: Sequence[int], *, limit: int | None = None
    ) -> np.ndarray:
        """The ids (int64, ascending) of the embedded images of `collection_ids` that match;
        with `limit`, at most that many of them (any ones: the query stops once it has them,
        which tells a selective filter from a broad one without counting all of a broad one)."""
        query = select(Image.id).where(matching_clause(filters, collection_ids)).limit(limit)
        with self.session() as s:
            ids = np.asarray(s.scalars(query).all(), dtype=np.int64)
        ids.sort()
        return ids

    def filter_ids(self, filters: SearchFilters, ids: Sequence[int]) -> set[int]:
        """Which of `ids` are embedded images that match `filters` (of any collection)."""
        wanted = sorted({int(i) for i in ids})
        found: set[int] = set()
        clause = filter_clause(filters)
        with self.session() as s:
            for start in range(0, len(wanted), _ID_CHUNK):
                chunk = wanted[start : start + _ID_CHUNK]
                found.update(s.scalars(select(Image.id).where(Image.id.in_(chunk), clause)))
        return found

    def facets(self, filters: SearchFilters, collection_ids: Sequence[int]) -> FacetsResponse:
        """Counts of the matching images per collection, year, camera, top tag and file type."""
        with self.session() as s:
            return facet_counts(s, matching_clause(filters, collection_ids), self.dialect)
