"""The `Reranker` protocol, and the machinery its BLIP-family implementations share.

A reranker looks at each (query, image) pair jointly, which CLIP's two separate towers cannot:
it runs on the top R results of a vector search and its match probabilities reorder them.
Image-text matching (ITM) models have the same shape of cost: a vision tower that does not
depend on the query and costs most of the compute, then a text tower that cross-attends to the
image features, then a two-class head. `SplitItmReranker` runs them as two steps, so that the
query is tokenized once per call and broadcast over a batch of images, and so that images that
come back often (popular results, paging through one result list) can keep their vision
features: callers pass a stable key per image (its catalog id) and `VisionFeatureCache` keeps
the features of the most recently used keys, up to a fixed count.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = ["Reranker", "SplitItmReranker", "VisionFeatureCache"]


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


def _check_keys(keys: Sequence[Hashable] | None, images: Sequence[Image.Image]) -> None:
    if keys is not None and len(keys) != len(images):
        raise ValueError(f"Got {len(keys)} keys for {len(images)} images; pass one key per image.")


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
        _check_keys(keys, images)
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


class SplitItmReranker(ABC):
    """An ITM model run as vision tower, then text tower + head, behind `Reranker`.

    Subclasses give `match_probabilities` (the model-specific second step) and
    `text_position_limit`. `batch_size` pairs go through the model at once;
    `feature_cache_size` images' vision features are kept when `score` is given keys (0 turns
    the cache off); queries longer than `max_query_tokens` tokens are truncated.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        model_id: str,
        batch_size: int = 32,
        feature_cache_size: int = 128,
        max_query_tokens: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model_id = model_id
        self.batch_size = batch_size
        self.feature_cache = VisionFeatureCache(feature_cache_size)
        self._model = model.eval()
        self._image_processor = processor.image_processor
        self._tokenizer = processor.tokenizer
        self._max_query_tokens = min(max_query_tokens, self.text_position_limit(model))

    @staticmethod
    @abstractmethod
    def text_position_limit(model: Any) -> int:
        """How many text positions the model's text tower has."""

    @abstractmethod
    def match_probabilities(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """P(match) for each image's vision features paired with one tokenized query
        (`input_ids`, `attention_mask` of shape (1, length)): shape (n,)."""

    @property
    def device(self) -> torch.device:
        device: torch.device = self._model.device
        return device

    def score(
        self, query: str, images: Sequence[Image.Image], keys: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        """Match probability in [0, 1] of `query` with each image (float32, input order)."""
        import torch

        _check_keys(keys, images)
        if not images:
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            text = self._tokenizer(
                query, truncation=True, max_length=self._max_query_tokens, return_tensors="pt"
            ).to(self.device)
            probabilities = []
            for start in range(0, len(images), self.batch_size):
                stop = start + self.batch_size
                batch_keys = None if keys is None else keys[start:stop]
                features = self.feature_cache.features(
                    images[start:stop], batch_keys, self.encode_images
                )
                probabilities.append(
                    self.match_probabilities(features, text["input_ids"], text["attention_mask"])
                )
            return torch.cat(probabilities).float().cpu().numpy()

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The vision tower's last hidden state for each image: (n, patches + 1, hidden)."""
        vision = self._model.vision_model
        # device: torchvision-backed image processors then resize on the GPU, not the CPU
        # (R=128 photos, BLIP base on an H100: 818 -> 312 ms per query)
        pixels = self._image_processor(
            [image.convert("RGB") for image in images], return_tensors="pt", device=self.device
        )
        pixel_values = pixels["pixel_values"].to(self.device, dtype=vision.dtype)
        hidden: torch.Tensor = vision(pixel_values=pixel_values).last_hidden_state
        return hidden
