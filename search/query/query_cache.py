"""A bounded LRU of text-query embeddings, keyed by (model id, query text).

People repeat queries (the next page, a refined filter, the same search from another tab), and
encoding is the most expensive step of a text query on a CPU. A hit skips the model entirely.
The vectors are small (dim float32), so a few thousand cost a few MB. Thread-safe; a miss is
computed outside the lock, so one slow encode never blocks hits for other queries, and
concurrent misses for the same key wait for the one encode in flight instead of each running
the model (fifty clients sending the same new query cost one encode, not fifty).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_QUERY_CACHE_SIZE", "QueryVectorCache"]

DEFAULT_QUERY_CACHE_SIZE = 4096


def _frozen(vector: np.ndarray) -> np.ndarray:
    """A read-only float32 copy: cached vectors are shared by every caller."""
    frozen = np.array(vector, dtype=np.float32, copy=True)
    frozen.setflags(write=False)
    return frozen


class QueryVectorCache:
    """At most `size` query vectors; the least recently used goes first."""

    def __init__(self, size: int = DEFAULT_QUERY_CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._in_flight: dict[tuple[str, str], threading.Event] = {}

    def get(self, model_id: str, text: str, encode: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached vector of `text` under `model_id`, or `encode()` stored for next time.
        The returned array is read-only: it is shared by every caller."""
        if self.size <= 0:  # caching is off: every call encodes
            with self._lock:
                self.misses += 1
            return _frozen(encode())
        key = (model_id, text)
        done = threading.Event()  # set when our encode (if we run one) is over
        while True:
            with self._lock:
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                    self.hits += 1
                    return vector
                waiting = self._in_flight.get(key)
                if waiting is None:
                    self.misses += 1
                    self._in_flight[key] = done
                    break
            waiting.wait()  # another thread encodes this key: then a hit (or, if it failed, ours)
        try:
            vector = _frozen(encode())
            with self._lock:
                self._vectors[key] = vector
                self._vectors.move_to_end(key)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
            return vector
        finally:
            with self._lock:
                if self._in_flight.get(key) is done:
                    del self._in_flight[key]
            done.set()

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)
