"""The query-vector cache: bounded LRU, shared read-only vectors, and one encode for many
concurrent requests of the same new query."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from search.query.query_cache import QueryVectorCache


def test_lru_evicts_the_least_recently_used() -> None:
    cache = QueryVectorCache(size=2)
    for text in ("a", "b", "a", "c"):
        cache.get("m", text, lambda t=text: np.full(4, ord(t), dtype=np.float32))
    assert len(cache) == 2 and (cache.hits, cache.misses) == (1, 3)
    cache.get("m", "b", lambda: np.zeros(4, dtype=np.float32))  # "b" was evicted: encoded again
    assert cache.misses == 4
    vector = cache.get("m", "c", lambda: pytest.fail("c is cached"))  # type: ignore[no-any-return]
    assert not vector.flags.writeable


def test_concurrent_misses_of_one_query_encode_once() -> None:
    cache = QueryVectorCache(size=8)
    calls = 0
    started = threading.Event()

    def slow_encode() -> np.ndarray:
        nonlocal calls
        calls += 1
        started.set()
        time.sleep(0.3)
        return np.ones(4, dtype=np.float32)

    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("m", "q", slow_encode)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert calls == 1 and len(results) == 8
    assert all(r is results[0] for r in results)


def test_a_failed_encode_lets_the_next_caller_try() -> None:
    cache = QueryVectorCache(size=8)

    def broken() -> np.ndarray:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        cache.get("m", "q", broken)
    assert cache.get("m", "q", lambda: np.ones(2, dtype=np.float32)).tolist() == [1.0, 1.0]


def test_size_zero_caches_nothing() -> None:
    cache = QueryVectorCache(size=0)
    for _ in range(3):
        cache.get("m", "q", lambda: np.ones(2, dtype=np.float32))
    assert cache.misses == 3 and len(cache) == 0
