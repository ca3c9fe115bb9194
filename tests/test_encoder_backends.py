"""CPU inference backends keep fp32's vectors: every precision pixseek ships stays within cosine
0.999 of fp32 eager for images and texts, and a failing conversion falls back to fp32. (Text
trimming over every shipped architecture: tests/test_multilingual.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from search.errors import ConfigError
from search.models import cpu_inference
from search.models.cpu_inference import (
    MIN_COSINE,
    CpuPrecisionChoice,
    apply_cpu_precision,
    choose_cpu_precision,
    probe_pixels,
)
from search.models.encoders.open_clip_encoder import OpenClipEncoder
from search.models.specs import parse_encoder_spec

SHIPPED_PRECISIONS = ("bf16",)  # compared with fp32 eager below; fp32 is the reference itself
QUERIES = [
    "dog",
    "a red car parked in front of an old brick house at sunset",
    "x",
    "two children playing football in the park with their dog",
    "mountain lake",
]


def _photo_like_images(count: int, seed: int = 0) -> list[Image.Image]:
    """Gradients, a blob and noise texture: closer to photos than uniform noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:128] / 96.0
    images = []
    for _ in range(count):
        a, b, c = rng.random(3)
        base = np.stack(
            [a * x + (1 - a) * y, 0.5 + 0.5 * np.sin((4 + 20 * b) * x), c * (1 - y)], axis=-1
        )
        blob = ((x - rng.random()) ** 2 + (y - rng.random()) ** 2 < 0.05)[..., None]
        pixels = np.where(blob, rng.random(3), base) + 0.05 * rng.standard_normal(base.shape)
        images.append(Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)))
    return images


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(axis=1).min())


def _assert_precision_matches_fp32(
    spec: str, precision: str, images: list[Image.Image], texts: list[str]
) -> None:
    reference = OpenClipEncoder(parse_encoder_spec(spec), device="cpu", cpu_precision="fp32")
    candidate = OpenClipEncoder(parse_encoder_spec(spec), device="cpu", cpu_precision=precision)
    assert candidate.cpu_precision is not None and candidate.cpu_precision.precision == precision, (
        f"{spec} fell back instead of running {precision}: {candidate.cpu_precision}"
    )
    image_cos = _min_cosine(candidate.encode_images(images), reference.encode_images(images))
    text_cos = _min_cosine(candidate.encode_texts(texts), reference.encode_texts(texts))
    assert image_cos >= MIN_COSINE and text_cos >= MIN_COSINE, (
        f"{spec} in {precision}: min cosine to fp32 eager {image_cos:.5f} (images),"
        f" {text_cos:.5f} (texts)"
    )


@pytest.mark.parametrize("precision", SHIPPED_PRECISIONS)
def test_shipped_cpu_precision_matches_fp32_on_the_tiny_model(precision: str) -> None:
    _assert_precision_matches_fp32(
        "pixseek-tiny-test/random", precision, _photo_like_images(8), QUERIES
    )


@pytest.mark.slow
@pytest.mark.parametrize("precision", SHIPPED_PRECISIONS)
def test_shipped_cpu_precision_matches_fp32_on_vit_b_32(precision: str) -> None:
    _assert_precision_matches_fp32("ViT-B-32/random", precision, _photo_like_images(8), QUERIES)


@pytest.mark.slow
@pytest.mark.parametrize("precision", SHIPPED_PRECISIONS)
def test_shipped_cpu_precision_matches_fp32_on_the_trained_tiny_clip(
    precision: str, trained_world: tuple[Path, Path]
) -> None:
    """Trained weights have real activation ranges, unlike random ones: held-out world images
    and their captions."""
    world_dir, model_dir = trained_world
    items = [json.loads(line) for line in (world_dir / "test.jsonl").read_text().splitlines()[:24]]
    images = [Image.open(world_dir / item["image"]).convert("RGB") for item in items]
    _assert_precision_matches_fp32(
        f"local-dir:{model_dir}", precision, images, [item["caption"] for item in items]
    )


def test_auto_uses_bf16_only_where_the_cpu_has_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_inference, "native_bf16_unit", lambda: None)
    assert choose_cpu_precision("auto")[0] == "fp32"
    assert choose_cpu_precision("bf16")[0] == "bf16", "an explicit request is honoured"
    monkeypatch.setattr(cpu_inference, "native_bf16_unit", lambda: "AVX512-BF16")
    assert choose_cpu_precision("auto") == (
        "fp32",
        "this CPU has AVX512-BF16 but no AMX, where bf16 measured slower than fp32",
    )
    monkeypatch.setattr(cpu_inference, "native_bf16_unit", lambda: "AMX-BF16")
    assert choose_cpu_precision("auto") == ("bf16", "this CPU has AMX-BF16")
    assert choose_cpu_precision("fp32")[0] == "fp32"


def test_unknown_cpu_precision_names_the_setting() -> None:
    with pytest.raises(
        ConfigError, match="PIXSEEK_CPU_PRECISION is 'fp8'; expected one of auto, fp32, bf16"
    ):
        choose_cpu_precision("fp8")


def _tiny_fp32() -> OpenClipEncoder:
    return OpenClipEncoder(
        parse_encoder_spec("pixseek-tiny-test/random"), device="cpu", cpu_precision="fp32"
    )


def _probe_inputs(encoder: OpenClipEncoder) -> tuple[Any, Any]:
    pixels = encoder.pixel_transform.normalise(probe_pixels(encoder.image_size))
    return pixels, encoder._tokenizer(QUERIES)


def _weights(model: Any) -> dict[str, torch.Tensor]:
    tensors = [*model.named_parameters(), *model.named_buffers()]  # buffers: the attention mask too
    return {name: tensor.detach().clone() for name, tensor in tensors}


def _assert_exact_fp32(
    encoder: OpenClipEncoder, before: dict[str, torch.Tensor], images: np.ndarray
) -> None:
    after = _weights(encoder._model)
    changed = [
        name
        for name in before
        if after[name].dtype != before[name].dtype or not torch.equal(after[name], before[name])
    ]
    assert not changed, f"not restored to the original fp32 tensors: {changed[:5]}"
    assert np.array_equal(encoder.encode_images(_photo_like_images(3)), images)


def _apply_then_keep(
    encoder: OpenClipEncoder, convert: Callable[[Any, Any], None]
) -> CpuPrecisionChoice:
    """bf16 through `convert`, rebuilding the tiny model in fp32 on failure; the encoder keeps
    whichever model the conversion hands back."""
    result = apply_cpu_precision(
        encoder._model,
        "bf16",
        *_probe_inputs(encoder),
        convert=convert,
        rebuild=lambda: _tiny_fp32()._model,
    )
    encoder._model = result.model
    return result.choice


def test_failing_conversion_falls_back_to_exact_fp32(caplog: pytest.LogCaptureFixture) -> None:
    encoder = _tiny_fp32()
    before, images = _weights(encoder._model), encoder.encode_images(_photo_like_images(3))

    def broken(model: Any, dtype: Any) -> None:
        model.to(dtype)  # everything converted, then it fails
        raise RuntimeError("oneDNN has no bf16 kernel here")

    choice = _apply_then_keep(encoder, broken)
    assert choice.precision == "fp32" and "oneDNN has no bf16 kernel here" in choice.reason, (
        choice.reason
    )
    assert choice.image_dtype == torch.float32 and "keeping fp32" in caplog.text
    _assert_exact_fp32(encoder, before, images)


def test_conversion_below_the_cosine_bar_is_undone_exactly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    encoder = _tiny_fp32()
    before, images = _weights(encoder._model), encoder.encode_images(_photo_like_images(3))

    def lossy(model: Any, dtype: Any) -> None:
        model.to(dtype)
        model.visual.proj.data = model.visual.proj.data * torch.randn_like(
            model.visual.proj
        )  # wrecks images

    choice = _apply_then_keep(encoder, lossy)
    assert choice.precision == "fp32" and "below 0.999" in choice.reason, choice.reason
    assert "keeping fp32" in caplog.text
    _assert_exact_fp32(encoder, before, images)


def test_encoder_runs_fp32_when_bf16_fails_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model: Any, dtype: Any) -> None:
        raise RuntimeError("no bf16 here")

    monkeypatch.setattr(cpu_inference, "_convert_model", broken)
    encoder = OpenClipEncoder(
        parse_encoder_spec("pixseek-tiny-test/random"), device="cpu", cpu_precision="bf16"
    )
    assert encoder.cpu_precision is not None and encoder.cpu_precision.precision == "fp32"
    assert "no bf16 here" in encoder.cpu_precision.reason
    images = _photo_like_images(2)
    assert np.array_equal(encoder.encode_images(images), _tiny_fp32().encode_images(images))
