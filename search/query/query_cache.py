"""A bounded LRU of text-query embeddings, keyed by (model id, query text).

People repeat queries (the next page, a refined filter, the same search from another tab), and
encoding is the most expensive step of a text query on a CPU. A hit skips the model entirely.
The vectors are small (dim float32), so a few thousand cost a few MB. Thread-safe; a miss is
computed outside the lock, so one slow encode never blocks hits for other queries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

__all__ = ["DEFAULT_QUERY_CACHE_SIZE", "QueryVectorCache"]

DEFAULT_QUERY_CACHE_SIZE = 4096


class QueryVectorCache:
    """At most `size` query vectors; the least recently used goes first."""

    def __init__(self, size: int = DEFAULT_QUERY_CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def get(self, model_id: str, text: str, encode: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached vector of `text` under `model_id`, or `encode()` stored for next time.
        The returned array is read-only: it is shared by every caller."""
        key = (model_id, text)
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
                return vector
            self.misses += 1
        vector = np.array(encode(), dtype=np.float32, copy=True)
        vector.setflags(write=False)
        if self.size > 0:
            with self._lock:
                self._vectors[key] = vector
                self._vectors.move_to_end(key)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return vector

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)
