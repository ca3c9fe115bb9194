"""The `Encoder` protocol: images and texts into one L2-normalised embedding space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # torch and torchvision: not for commands that only name the protocol
    from search.models.pixel_transform import PixelTransform

__all__ = ["Encoder"]


@runtime_checkable
class Encoder(Protocol):
    """What indexing and search need from an image-text embedding model.

    `model_id` identifies the weights exactly: an index records it and refuses queries
    encoded by anything else. All outputs are float32, L2-normalised, shape (n, dim).

    Indexing decodes and resizes images elsewhere (worker processes, or the GPU) with
    `pixel_transform`, then hands the uint8 batch to `encode_pixels`.
    """

    model_id: str
    dim: int
    image_size: int
    device: str
    pixel_transform: PixelTransform

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_pixels(self, pixels: Any) -> np.ndarray:
        """Embed (n, 3, S, S) uint8 pixels from `pixel_transform`, on any device."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...
