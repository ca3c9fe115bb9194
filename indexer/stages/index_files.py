"""Upkeep of a collection's FAISS file and vector store around a run, under the writer lock.

Before anything else a writer finishes what a crashed one left: temp files of interrupted
writes go, and a FAISS file older than the catalog is rebuilt from the vector store (the
catalog marks a row `embedded` only once its vector is durable, so the vector store always
holds what the index should). After embedding, the vector store is compacted once superseded
vectors outnumber live ones.
"""

from __future__ import annotations

from search.catalog import Catalog, ChangedImage
from search.storage.collection_store import CollectionStore
from search.storage.faiss_index import VectorIndex

__all__ = ["catch_up_index", "compact_if_wasteful"]


def catch_up_index(store: CollectionStore, catalog: Catalog) -> VectorIndex:
    """The collection's FAISS index, made to hold exactly the catalog's embedded ids.

    Embedded rows whose vector is gone (files deleted by hand) go back to `pending`, so this
    run embeds them again."""
    store.remove_temp_files()  # of segments and FAISS saves a crash interrupted
    index = store.load_index()
    stale = not store.index_is_current(index)
    index, orphans = store.sync_index(index, full=stale)
    if orphans:
        catalog.mark_changed([ChangedImage(image_id, -1, -1.0) for image_id in orphans])
    if stale or orphans:
        store.save_index(index)
    return index


def compact_if_wasteful(store: CollectionStore, index: VectorIndex) -> None:
    """Rewrite the vector store once superseded or deleted vectors outnumber live ones by 25%."""
    live = index.count
    if store.vectors.stored_count() > 1.25 * live + 1000:
        store.vectors.compact(index.ids())
