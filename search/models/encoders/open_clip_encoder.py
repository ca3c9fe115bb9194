"""`OpenClipEncoder`: any open_clip model, from a pretrained tag, a checkpoint file, a
`local-dir:` folder, the Hugging Face hub cache, or seeded random weights."""

from __future__ import annotations

import os
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
from search.models.hub import missing_weights_message, require_hub_files
from search.models.pixel_transform import PixelTransform
from search.models.specs import RANDOM_SEED, EncoderSpec

__all__ = ["OpenClipEncoder"]


_LOCAL_FIX = (
    "point at local weights with --model MODEL/path/to/open_clip_pytorch_model.bin or "
    "--model local-dir:PATH"
)
_AFTER = "Without any weights, `pixseek demo` trains a small model offline."


def _hub_weights(spec: EncoderSpec) -> tuple[str, list[list[str]]] | None:
    """The Hugging Face repo `spec` loads from and the files it needs there (each a group of
    alternatives: open_clip takes a .safetensors copy over the .bin), or None when it loads
    from elsewhere (a file, a folder, random weights, a URL)."""
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    if spec.source == "hf-hub" and spec.pretrained:
        return spec.pretrained, [[HF_CONFIG_NAME], [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]]
    if spec.source != "tag":
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.architecture or "", spec.pretrained or "")
    repo, filename = os.path.split(str(cfg.get("hf_hub", "")))
    if not repo:
        return None
    filename = filename or HF_WEIGHTS_NAME
    names = [filename]
    if filename == HF_WEIGHTS_NAME:
        names.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return repo, [names]


def _what(spec: EncoderSpec, repo: str | None) -> str:
    where = f" (Hugging Face repo {repo})" if repo else ""
    return f"Weights for model {spec.spec!r}{where}"


def _require_weights(spec: EncoderSpec) -> None:
    """Fail at once, with the one message, when the weights are neither cached nor
    downloadable (see `search.models.hub.require_hub_files`)."""
    hub = _hub_weights(spec)
    if hub is not None:
        repo, needed = hub
        require_hub_files(repo, needed, what=_what(spec, repo), local_fix=_LOCAL_FIX, after=_AFTER)


def _weights_unavailable(spec: EncoderSpec, cause: BaseException) -> str:
    """The shared missing-weights message, naming the repo the weights come from."""
    hub = _hub_weights(spec)
    return missing_weights_message(
        _what(spec, hub[0] if hub else None), cause, local_fix=_LOCAL_FIX, after=_AFTER
    )


def _create_model(spec: EncoderSpec, device: str, precision: str) -> tuple[Any, Any, str]:
    """open_clip's model, its preprocess and the name its tokenizer is found by."""
    import open_clip
    import torch

    if spec.source == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.architecture, pretrained=None, precision=precision, device=device
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
        import open_clip
        import torch

        register_pixseek_configs()
        self.spec = spec
        self.device = device
        self.model_id = spec.model_id
        precision = "fp16" if device.startswith("cuda") else "fp32"
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        _require_weights(spec)
        try:
            model, preprocess, name = _create_model(spec, device, precision)
            self._tokenizer = open_clip.get_tokenizer(name)
        except ModelError:
            raise
        except Exception as exc:
            if spec.source in ("tag", "hf-hub"):
                raise ModelError(_weights_unavailable(spec, exc)) from exc
            raise ModelError(f"Could not load model {spec.spec!r}: {exc}") from exc
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
            self.cpu_precision = apply_cpu_precision(model, cpu_precision, probe, tokens)
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
