"""What every stage of one indexing run shares: settings, catalog, the collection's files, the
run's options and the report the stages fill in."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.options import IndexOptions
from indexer.report import IndexReport
from search.catalog import Catalog, CollectionInfo
from search.settings import Settings
from search.storage.collection_store import CollectionStore

__all__ = ["Run"]


@dataclass(frozen=True, slots=True)
class Run:
    """One run's shared state; stages read it and add to its report."""

    settings: Settings
    catalog: Catalog
    store: CollectionStore
    options: IndexOptions
    report: IndexReport

    @property
    def collection(self) -> CollectionInfo:
        return self.store.collection
