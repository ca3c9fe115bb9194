"""The vector store and the FAISS index: durability format, overrides, atomic saves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.errors import CatalogError
from search.storage.faiss_index import VectorIndex
from search.storage.vector_store import VectorStore


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_vector_store_latest_vector_wins_and_compacts(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v", dim=8)
    a, b = _unit(5, 8, 0), _unit(2, 8, 1)
    store.append(np.arange(1, 6), a)
    store.append(np.array([2, 9]), b)
    ids, vectors = store.latest()
    got = dict(zip(ids.tolist(), vectors, strict=True))
    assert sorted(got) == [1, 2, 3, 4, 5, 9]
    assert np.allclose(got[2], b[0], atol=1e-3) and np.allclose(got[1], a[0], atol=1e-3)
    ids, _ = store.latest([3, 9, 77])
    assert sorted(ids.tolist()) == [3, 9]
    store.compact([1, 2])
    assert len(list((tmp_path / "v").glob("seg-*"))) == 1
    assert sorted(store.latest()[0].tolist()) == [1, 2]


def test_vector_store_ignores_interrupted_writes_and_detects_damage(tmp_path: Path) -> None:
    store = VectorStore(tmp_path / "v", dim=4)
    store.append(np.array([1]), _unit(1, 4, 0))
    (tmp_path / "v" / ".seg-0000000002.pxvs.abc.tmp").write_bytes(b"half a segment")
    assert store.latest()[0].tolist() == [1]
    store.remove_temp_files()
    assert not list((tmp_path / "v").glob(".*tmp"))
    segment = next((tmp_path / "v").glob("seg-*"))
    segment.write_bytes(segment.read_bytes()[:-3])
    with pytest.raises(CatalogError, match="damaged"):
        store.latest()


def test_faiss_index_search_replace_remove_and_atomic_save(tmp_path: Path) -> None:
    vectors = _unit(50, 16, 2)
    index = VectorIndex(16)
    index.add(np.arange(100, 150), vectors)
    scores, ids = index.search(vectors[:3], 1)
    assert ids[:, 0].tolist() == [100, 101, 102] and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    index.add(np.array([100]), vectors[7:8])  # replace: no duplicate id
    assert index.count == 50
    assert index.remove(np.array([101, 102, 999])) == 2
    index.save(tmp_path / "i.faiss", generation=7)
    loaded = VectorIndex.load(tmp_path / "i.faiss")
    assert (loaded.generation, loaded.count, loaded.dim) == (7, 48, 16)
    assert sorted(loaded.ids().tolist()) == sorted(set(range(100, 150)) - {101, 102})
    assert not list(tmp_path.glob(".*tmp"))
    (tmp_path / "i.faiss").write_bytes(b"garbage")
    with pytest.raises(CatalogError, match="rebuilt"):
        VectorIndex.load(tmp_path / "i.faiss")


def test_empty_index_search_returns_nothing() -> None:
    scores, ids = VectorIndex(4).search(_unit(2, 4, 0), 5)
    assert scores.shape == (2, 0) and ids.shape == (2, 0)
