"""An encoder's preprocessing, split where the bytes get big.

open_clip's preprocess is resize -> centre crop -> RGB -> float tensor -> normalise. The first
half (geometry) runs where the image is decoded: in decode worker processes on Pillow images, or
on the GPU on uint8 tensors that nvJPEG just decoded. Its output stays uint8, so workers ship a
quarter of the bytes that float32 pixels would take, and the copy to the GPU is a quarter as
long. Normalisation runs on the encoder's device, just before the model.

open_clip's own transforms accept tensors as well as Pillow images, so both paths use the very
same resize and crop objects the model was configured with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms.functional import pil_to_tensor

__all__ = ["PixelTransform"]


def _is_to_tensor(step: Any) -> bool:
    return isinstance(step, T.ToTensor) or type(step).__name__ in ("ToTensor", "MaybeToTensor")


def _works_on_tensors(step: Any) -> bool:
    """Steps known to treat a (3, H, W) uint8 tensor the way they treat a Pillow image."""
    return isinstance(step, (T.Resize, T.CenterCrop)) or type(step).__name__ == "MaybeConvertMode"


class PixelTransform:
    """uint8 pixels from an image (`__call__`), float model input from uint8 pixels (`normalise`).

    Built from a torchvision `Compose` of the form geometry... -> ToTensor -> Normalize, which is
    what open_clip returns for every model. Picklable, so spawn-started workers can carry it."""

    def __init__(self, preprocess: Callable[[Image.Image], Any]) -> None:
        steps: Sequence[Any] = getattr(preprocess, "transforms", None) or ()
        split = next((i for i, step in enumerate(steps) if _is_to_tensor(step)), None)
        after = list(steps[split + 1 :]) if split is not None else []
        if split is None or len(after) != 1 or not isinstance(after[0], T.Normalize):
            raise ValueError(
                f"preprocess must end with ToTensor then Normalize to split into geometry and "
                f"normalisation; got {preprocess!r}"
            )
        self.geometry = T.Compose(list(steps[:split]))
        self.mean = tuple(float(v) for v in after[0].mean)
        self.std = tuple(float(v) for v in after[0].std)
        # A geometry step that only understands Pillow images rules out decoding on the GPU.
        self.accepts_tensors = all(_works_on_tensors(step) for step in steps[:split])

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        """Resize and crop an RGB Pillow image or a (3, H, W) uint8 tensor (any device) to the
        model's input size; returns a (3, S, S) uint8 tensor on the same device."""
        if isinstance(image, torch.Tensor):
            if not self.accepts_tensors:
                raise TypeError(
                    f"this model's preprocessing works on Pillow images only: {self.geometry!r}"
                )
            resized: torch.Tensor = self.geometry(image)
            return resized
        pixels: torch.Tensor = pil_to_tensor(self.geometry(image.convert("RGB")))
        return pixels

    def normalise(self, pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(n, 3, S, S) uint8 -> the model's float input, computed on `pixels`' device in float32
        (exactly what ToTensor + Normalize give), then cast to `dtype`."""
        mean = torch.tensor(self.mean, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(1, 3, 1, 1)
        return ((pixels.float() / 255.0 - mean) / std).to(dtype)
