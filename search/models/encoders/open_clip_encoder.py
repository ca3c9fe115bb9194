"""`OpenClipEncoder`: any open_clip model, from a pretrained tag, a checkpoint file, a
`local-dir:` folder, the Hugging Face hub cache, or seeded random weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from search.errors import ModelError
from search.models.causal_text import can_trim_text, encode_text_trimmed
from search.models.cpu_inference import (
    PROBE_TEXTS,
    CpuPrecisionChoice,
    apply_cpu_precision,
    probe_pixels,
)
from search.models.encoders.open_clip_configs import register_pixseek_configs
from search.models.encoders.open_clip_hub import (
    describe_hub_needs,
    hub_needs,
    missing_hub_needs,
)
from search.models.encoders.open_clip_tokenizer import load_open_clip_tokenizer
from search.models.hub import hub_offline, missing_weights_message, require_downloadable
from search.models.pixel_transform import PixelTransform
from search.models.specs import RANDOM_SEED, EncoderSpec

__all__ = ["OpenClipEncoder"]


_LOCAL_FIX = (
    "point at local weights with --model MODEL/path/to/open_clip_pytorch_model.bin or "
    "--model local-dir:PATH"
)
_AFTER = "Without any weights, `pixseek demo` trains a small model offline."


def _require_hub_files(spec: EncoderSpec) -> None:
    """Fail at once, with the one message naming every repo that lacks files, when the
    weights, tokenizer or text-tower config are neither cached nor downloadable (see
    `search.models.encoders.open_clip_hub`)."""
    missing = missing_hub_needs(hub_needs(spec))
    if missing:
        what = describe_hub_needs(spec, missing)
        require_downloadable(what, local_fix=_LOCAL_FIX, after=_AFTER)


def _load_failure(spec: EncoderSpec, cause: BaseException) -> str:
    """Why loading failed: the shared missing-weights message when hub files are missing or a
    download failed, otherwise the reason open_clip or transformers gave."""
    needs = hub_needs(spec)
    missing = missing_hub_needs(needs)
    if missing or (spec.source in ("tag", "hf-hub") and not hub_offline()):  # a download failed
        what = describe_hub_needs(spec, missing or needs)
        return missing_weights_message(what, cause, local_fix=_LOCAL_FIX, after=_AFTER)
    return f"Could not load model {spec.spec!r}: {cause}"


def _create_model(spec: EncoderSpec, device: str, precision: str) -> tuple[Any, Any, str]:
    """open_clip's model, its preprocess and the name its tokenizer is found by."""
    import open_clip
    import torch

    if spec.source == "random":  # random text towers too: no transformers weights download
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.architecture,
                pretrained=None,
                precision=precision,
                device=device,
                pretrained_text=False,
            )
        return model, preprocess, str(spec.architecture)
    if spec.source in ("local-dir", "hf-hub"):
        where = spec.path if spec.source == "local-dir" else spec.pretrained
        name = f"{spec.source}:{where}"
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, precision=precision, device=device, require_pretrained=True
        )
        return model, preprocess, name
    pretrained = str(spec.path) if spec.source == "file" else spec.pretrained
    model, _, preprocess = open_clip.create_model_and_transforms(
        spec.architecture,
        pretrained=pretrained,
        precision=precision,
        device=device,
        require_pretrained=True,
    )
    return model, preprocess, str(spec.architecture)


class OpenClipEncoder:
    """An open_clip CLIP model behind the `Encoder` protocol."""

    def __init__(self, spec: EncoderSpec, device: str = "cpu", cpu_precision: str = "auto") -> None:
        """`cpu_precision` (auto, fp32, bf16; see `search.models.cpu_inference`) applies on the
        CPU only; CUDA runs fp16."""
        import torch

        register_pixseek_configs()
        self.spec = spec
        self.device = device
        self.model_id = spec.model_id
        precision = "fp16" if device.startswith("cuda") else "fp32"
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        _require_hub_files(spec)
        try:
            model, preprocess, name = _create_model(spec, device, precision)
            self._tokenizer = load_open_clip_tokenizer(spec, name)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(_load_failure(spec, exc)) from exc
        model.eval()
        self._model = model
        self._trim_text = can_trim_text(model)
        self.pixel_transform = PixelTransform(preprocess)
        size = getattr(model.visual, "image_size", 224)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.cpu_precision: CpuPrecisionChoice | None = None
        if device == "cpu":
            probe = self.pixel_transform.normalise(probe_pixels(self.image_size))
            tokens = self._tokenizer(list(PROBE_TEXTS))
            del model  # self._model is the only reference: a failed conversion can drop it

            def rebuild() -> Any:
                return _create_model(spec, device, precision)[0].eval()

            result = apply_cpu_precision(self._model, cpu_precision, probe, tokens, rebuild=rebuild)
            self._model, self.cpu_precision = result.model, result.choice
            self._dtype = self.cpu_precision.image_dtype
        self.dim = int(self.encode_texts(["a photo"]).shape[1])

    def _normalise(self, features: Any) -> np.ndarray:
        import torch

        features = torch.nn.functional.normalize(features.float(), dim=-1)
        vectors: np.ndarray = features.cpu().numpy().astype(np.float32, copy=False)
        return vectors

    def encode_pixels(self, pixels: Any) -> np.ndarray:
        """Embed (n, 3, S, S) uint8 pixels; they are normalised on the model's device."""
        import torch

        with torch.inference_mode():
            pixels = pixels.to(self.device, non_blocking=True)
            normalised = self.pixel_transform.normalise(pixels, self._dtype)
            return self._normalise(self._model.encode_image(normalised))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        import torch

        if not images:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        return self.encode_pixels(torch.stack([self.pixel_transform(image) for image in images]))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tokens = self._tokenizer(list(texts)).to(self.device)
            if self._trim_text:
                return self._normalise(encode_text_trimmed(self._model, tokens))
            return self._normalise(self._model.encode_text(tokens))
