"""The `Reranker` protocol, and the bounded cache of vision features its implementations share.

A reranker looks at each (query, image) pair jointly, which CLIP's two separate towers cannot:
it is run on the top R results of a vector search and its match probabilities reorder them.
The vision tower costs most of a pair's compute and does not depend on the query, so images
that come back often (popular results, paging through one result list) can keep their
features: callers pass a stable key per image (its catalog id) and the reranker remembers the
features of the most recently used keys, up to a fixed count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = ["Reranker", "VisionFeatureCache"]


@runtime_checkable
class Reranker(Protocol):
    """What search needs from an image-text matching model.

    `score` returns one float32 match probability in [0, 1] per image, in input order; higher
    means the image matches `query` better. `keys`, when given, names each image stably (one key
    per image) so its vision features may be reused by later calls; without keys nothing is kept.
    """

    model_id: str

    def score(
        self, query: str, images: Sequence[Image.Image], keys: Sequence[Hashable] | None = None
    ) -> np.ndarray: ...


class VisionFeatureCache:
    """Per-image vision features, least recently used dropped first, at most `capacity` kept.

    Thread-safe. A capacity of 0 keeps nothing. Features are stored as given (on the model's
    device, in its dtype), one tensor of shape (tokens, hidden) per key.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"VisionFeatureCache capacity must be >= 0, got {capacity}.")
        self.capacity = capacity
        self._features: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._features)

    def clear(self) -> None:
        with self._lock:
            self._features.clear()

    def features(
        self,
        images: Sequence[Image.Image],
        keys: Sequence[Hashable] | None,
        encode: Callable[[Sequence[Image.Image]], torch.Tensor],
    ) -> torch.Tensor:
        """Vision features for `images` (n, tokens, hidden): cached ones reused, the rest encoded
        in one call to `encode` and remembered under their keys."""
        import torch

        if keys is None or self.capacity == 0:
            return encode(images)
        if len(keys) != len(images):
            raise ValueError(f"Got {len(keys)} keys for {len(images)} images; pass one key per image.")
        found: dict[int, torch.Tensor] = {}
        with self._lock:
            for index, key in enumerate(keys):
                cached = self._features.get(key)
                if cached is not None:
                    self._features.move_to_end(key)
                    found[index] = cached
            missing = [index for index in range(len(images)) if index not in found]
            self.hits += len(found)
            self.misses += len(missing)
        if missing:
            encoded = encode([images[index] for index in missing])
            with self._lock:
                for row, index in enumerate(missing):
                    found[index] = encoded[row]
                    # a copy: a view would keep the whole batch's storage alive after eviction
                    self._features[keys[index]] = encoded[row].clone()
                    self._features.move_to_end(keys[index])
                while len(self._features) > self.capacity:
                    self._features.popitem(last=False)
        return torch.stack([found[index] for index in range(len(images))])
