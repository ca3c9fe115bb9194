"""The `Encoder` protocol: images and texts into one L2-normalised embedding space."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

__all__ = ["Encoder"]


@runtime_checkable
class Encoder(Protocol):
    """What indexing and search need from an image-text embedding model.

    `model_id` identifies the weights exactly: an index records it and refuses queries
    encoded by anything else. All outputs are float32, L2-normalised, shape (n, dim).
    """

    model_id: str
    dim: int
    image_size: int
    preprocess: Callable[[Image.Image], Any]

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_preprocessed(self, pixels: Any) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...
