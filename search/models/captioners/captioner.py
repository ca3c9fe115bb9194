"""The `Captioner` protocol: images into short descriptions, and questions about one image.

Captions fill the catalog's `caption` field during enrichment, where they feed full-text
search and fusion; `ask` answers a free-form question about a single image for the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

__all__ = ["Captioner"]


@runtime_checkable
class Captioner(Protocol):
    """What enrichment and the UI need from an image-to-text model.

    `caption` returns one string per image, in input order; `ask` returns the answer text
    alone (the prompt is never echoed back). Generation is greedy, so outputs are deterministic
    for given weights, images and device.
    """

    model_id: str

    def caption(self, images: Sequence[Image.Image]) -> list[str]: ...

    def ask(self, image: Image.Image, question: str) -> str: ...
