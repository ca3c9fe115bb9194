"""The on-disk vectors and FAISS index of one collection, kept in agreement with the catalog.

Invariant (what crash safety means here): the FAISS ids equal the catalog's `embedded` ids, and
each of those ids has a durable vector in the vector store. The catalog marks a row `embedded`
only after its vector is durable, so the index can always be rebuilt or caught up from the
vector store; `sync_index` does that, and the indexer saves the result atomically with a new
generation number recorded in the catalog.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import numpy as np

from search.catalog import Catalog, CollectionInfo
from search.errors import CatalogError, IndexLockedError
from search.faiss_index import DEFAULT_FACTORY, VectorIndex
from search.settings import Settings
from search.vector_store import VectorStore

__all__ = ["CollectionStore", "WriterLock"]


class WriterLock:
    """One writer per collection: an advisory `flock`, released by the kernel when the holder
    exits or is killed, so a crashed indexer never leaves the collection locked."""

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise IndexLockedError(
                f"Collection {self.collection!r} is being indexed by another process "
                f"(lock {self.path}). Wait for it to finish, or cancel that job."
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class CollectionStore:
    """Vector store + FAISS index files of one collection."""

    def __init__(self, settings: Settings, catalog: Catalog, collection: CollectionInfo) -> None:
        self.catalog = catalog
        self.collection = collection
        self.folder = settings.collection_dir(collection.id)
        self.vectors = VectorStore(self.folder / "vectors", collection.dim)
        self.index_path = self.folder / "index.faiss"

    def writer_lock(self) -> WriterLock:
        return WriterLock(self.folder / "writer.lock", self.collection.name)

    def load_index(self) -> VectorIndex:
        """The saved FAISS index, or an empty one when there is none or it is unreadable."""
        if self.index_path.exists():
            try:
                index = VectorIndex.load(self.index_path)
                if index.dim == self.collection.dim:
                    return index
            except CatalogError:
                pass
        return VectorIndex(self.collection.dim, DEFAULT_FACTORY)

    def index_is_current(self, index: VectorIndex) -> bool:
        build = self.catalog.index_build(self.collection.id)
        return build is not None and build.generation == index.generation

    def sync_index(self, index: VectorIndex, *, full: bool = False) -> tuple[VectorIndex, list[int]]:
        """Make `index` hold exactly the catalog's embedded ids, from the vector store.

        `full=True` rebuilds from scratch (used after a crash, when a stale file may hold old
        vectors of re-embedded files). Returns the index and any embedded ids that have no
        durable vector (only possible if vector files were deleted by hand).
        """
        embedded = np.asarray(self.catalog.embedded_ids(self.collection.id), dtype=np.int64)
        if full:
            fresh = VectorIndex(self.collection.dim, index.factory, generation=index.generation)
            ids, vectors = self.vectors.latest(embedded)
            fresh.add(ids, vectors)
            missing = np.setdiff1d(embedded, ids)
            return fresh, missing.tolist()
        have = index.ids()
        extra = np.setdiff1d(have, embedded)
        index.remove(extra)
        need = np.setdiff1d(embedded, have)
        missing: list[int] = []
        if need.size:
            ids, vectors = self.vectors.latest(need)
            index.add(ids, vectors)
            missing = np.setdiff1d(need, ids).tolist()
        return index, missing

    def save_index(self, index: VectorIndex) -> None:
        """Atomically write the index as the next generation and record it in the catalog."""
        build = self.catalog.index_build(self.collection.id)
        generation = max(index.generation, build.generation if build else 0) + 1
        index.save(self.index_path, generation)
        self.catalog.record_index_build(
            self.collection.id,
            model_id=self.collection.model_id,
            dim=self.collection.dim,
            factory=index.factory,
            count=index.count,
            generation=generation,
        )
