"""The FAISS index of one collection, derived from the vector store.

`IDMap2,Flat` with inner product: vectors are L2-normalised, so scores are cosine similarity.
The file is saved atomically with a generation number; the catalog records which generation
is current so a reader can tell a stale file and catch it up from the vector store.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import faiss
import numpy as np

from search.errors import CatalogError
from search.storage.atomic_files import atomic_write_bytes

__all__ = ["DEFAULT_FACTORY", "VectorIndex"]

DEFAULT_FACTORY = "IDMap2,Flat"
_TRAILER = struct.Struct("<Q")


class VectorIndex:
    """A FAISS index plus the generation it was saved as."""

    def __init__(
        self,
        dim: int,
        factory: str = DEFAULT_FACTORY,
        index: faiss.Index | None = None,
        generation: int = 0,
    ) -> None:
        self.dim = dim
        self.factory = factory
        self.index = (
            index
            if index is not None
            else faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        )
        self.generation = generation

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        if self.count == 0:
            return np.zeros(0, dtype=np.int64)
        id_map = faiss.downcast_index(self.index).id_map  # type: ignore[attr-defined]  # IDMap2
        return faiss.vector_to_array(id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors for ids."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.remove(ids)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0 or self.count == 0:
            return 0
        # faiss's Python wrapper takes an id array here; its stub only knows IDSelector.
        selector = np.ascontiguousarray(ids, dtype=np.int64)
        return int(self.index.remove_ids(selector))  # type: ignore[arg-type]

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k'); k' = min(k, count), and with `allowed_ids`
        at most their number. Ids are -1 past the end (fewer vectors, or fewer allowed ids in
        the index, than k').

        `allowed_ids` restricts the search to those ids inside FAISS (an `IDSelectorBatch` in
        `SearchParameters`; the `IDMap2` wrapper hands the selector external ids, so these are
        catalog ids): the top k' of the allowed ids, however few they are among all."""
        n = queries.shape[0]
        k = max(1, min(k, self.count))
        if allowed_ids is not None:
            k = min(k, len(allowed_ids))
        if k <= 0 or self.count == 0:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed_ids is None:
            scores, ids = self.index.search(queries, k)
            return scores, ids
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]  # not in its stub
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def reconstruct(self, image_id: int) -> np.ndarray:
        return np.asarray(self.index.reconstruct(int(image_id)))

    def save(self, path: Path, generation: int) -> None:
        """Atomically write the index with `generation` appended after the FAISS bytes."""
        data = faiss.serialize_index(self.index)
        meta = json.dumps({"factory": self.factory, "dim": self.dim}).encode()
        atomic_write_bytes(
            path, [data.tobytes(), meta, struct.pack("<I", len(meta)), _TRAILER.pack(generation)]
        )
        self.generation = generation

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        raw = path.read_bytes()
        try:
            (generation,) = _TRAILER.unpack_from(raw, len(raw) - _TRAILER.size)
            (meta_len,) = struct.unpack_from("<I", raw, len(raw) - _TRAILER.size - 4)
            meta_end = len(raw) - _TRAILER.size - 4
            meta = json.loads(raw[meta_end - meta_len : meta_end])
            index = faiss.deserialize_index(
                np.frombuffer(raw[: meta_end - meta_len], dtype=np.uint8)
            )
        except Exception as exc:
            raise CatalogError(
                f"FAISS index file {path} is unreadable ({exc}); it will be rebuilt."
            ) from exc
        return cls(dim=meta["dim"], factory=meta["factory"], index=index, generation=generation)
