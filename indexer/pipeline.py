"""One indexing run: scan sources, reconcile with the catalog, embed what is new or changed,
store vectors durably, then the catalog rows, then the FAISS index.

Write order per batch (crash safety): vector segment (fsync) -> catalog rows `embedded`
(commit) -> FAISS in memory; the FAISS file is saved atomically every `save_every` seconds and
at the end. A run killed at any instant is finished by running the same command again: rows
still `pending` are embedded, and a FAISS file older than the catalog is rebuilt from the
vector store before anything else happens.

A file whose bytes are already in the collection (renamed, moved, or a duplicate) is not
decoded or embedded again: its vector is copied under the new id. Only new files whose size
matches a known file are hashed for this, so the fast path stays (path, size, mtime).

The stages live in `indexer.stages`; this module runs them in order, under the collection's
writer lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from indexer.options import IndexOptions, ProgressCallback
from indexer.records import Reconciliation
from indexer.report import IndexReport
from indexer.sources import PruneScope, expand_inputs
from indexer.stages.backfill import backfill_metadata
from indexer.stages.collection import CollectionEncoder, open_collection
from indexer.stages.embed import embed_pending
from indexer.stages.index_files import catch_up_index, compact_if_wasteful
from indexer.stages.reconcile import Known, has_waiting, reconcile, unchanged_check, vanished
from indexer.stages.reuse import reuse_known_content
from indexer.stages.run import Run
from indexer.stages.scan import scan
from indexer.stages.tagging import tag_what_is_untagged
from search.catalog import Catalog
from search.settings import Settings
from search.storage.collection_store import CollectionStore
from search.storage.faiss_index import VectorIndex

__all__ = ["IndexOptions", "IndexReport", "ProgressCallback", "index_paths"]

_INSERT_ROWS = 1000  # new rows per catalog transaction


def index_paths(
    settings: Settings,
    catalog: Catalog,
    paths: Iterable[Path],
    options: IndexOptions | None = None,
) -> IndexReport:
    """Index image files under `paths` into `options.collection`; see the module docstring."""
    options = options or IndexOptions()
    started = time.monotonic()
    roots = expand_inputs(paths)  # brace patterns expanded; InputError names what is missing
    info, loaded = open_collection(settings, catalog, options.collection, options.model_spec)
    store = CollectionStore(settings, catalog, info)
    run = Run(settings, catalog, store, options, IndexReport(collection=info.name))
    encoder = CollectionEncoder(settings, info, loaded)
    with store.writer_lock():
        if options.job_id is not None:
            catalog.attach_job(options.job_id, info.id)
        index = catch_up_index(store, catalog)
        _index_under_lock(run, roots, index, encoder)
    run.report.seconds = time.monotonic() - started
    return run.report


def _index_under_lock(
    run: Run, roots: list[Path], index: VectorIndex, encoder: CollectionEncoder
) -> None:
    known = run.catalog.image_states(run.collection.id)
    found = reconcile(scan(roots, run.options, unchanged_check(known)), known)
    run.report.seen, run.report.unchanged = found.seen, found.unchanged
    gone = vanished(known, found.seen_keys, PruneScope(roots)) if run.options.prune else []
    if not (found.new or found.changed or gone or has_waiting(found, known)):
        _enrich(run, encoder, found)
        return
    # From here until the final save the FAISS file lags the catalog; mark it so that a
    # crash in between makes the next writer rebuild it from the vector store.
    run.catalog.mark_index_dirty(run.collection.id)
    _apply_changes(run, index, known, found, gone)
    pending = run.catalog.pending_images(run.collection.id, found.seen_keys)
    if pending:
        embed_pending(run, index, encoder.get(), pending)
    run.store.save_index(index)
    compact_if_wasteful(run.store, index)
    if not run.report.cancelled:
        _enrich(run, encoder, found)


def _enrich(run: Run, encoder: CollectionEncoder, found: Reconciliation) -> None:
    """After embedding: metadata for older rows (header reads), then tags (from the vectors)."""
    backfill_metadata(run, found.seen_keys)
    if not run.report.cancelled:
        tag_what_is_untagged(run, encoder)


def _apply_changes(
    run: Run, index: VectorIndex, known: Known, found: Reconciliation, gone: list[int]
) -> None:
    """Insert new rows (reusing known vectors), send changed ones back to `pending`, delete
    vanished ones."""
    catalog, collection_id = run.catalog, run.collection.id
    new_ids: list[int] = []
    for start in range(0, len(found.new), _INSERT_ROWS):
        new_ids += catalog.add_pending_images(
            collection_id, found.new[start : start + _INSERT_ROWS]
        )
    catalog.mark_changed(found.changed)
    reused = reuse_known_content(
        catalog, run.store, index, known.values(), list(zip(new_ids, found.new, strict=True))
    )
    run.report.reused += reused
    run.report.indexed += reused
    if gone:
        catalog.delete_images(gone)
        index.remove(np.asarray(gone, dtype=np.int64))
        run.report.removed = len(gone)
