"""Encoder specs and the tiny-test encoder: parsing, identity, shapes, normalisation, and the
message a user gets when weights are missing offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.errors import ModelError
from search.models import load_encoder
from search.models.specs import parse_encoder_spec


def test_spec_forms(tmp_path: Path) -> None:
    assert parse_encoder_spec("default").model_id == "open_clip:ViT-B-32/laion2b_s34b_b79k"
    assert parse_encoder_spec("ViT-B-16/laion2b_s34b_b88k").source == "tag"
    assert parse_encoder_spec("ViT-B-32/random").model_id == "open_clip:ViT-B-32/random-seed0"
    assert parse_encoder_spec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K").source == "hf-hub"
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"0" * 100)
    file_spec = parse_encoder_spec(f"ViT-B-32/{checkpoint}")
    assert file_spec.source == "file" and str(checkpoint) in file_spec.model_id
    checkpoint.write_bytes(b"1" * 100)
    assert parse_encoder_spec(f"ViT-B-32/{checkpoint}").model_id != file_spec.model_id, (
        "new weights, new id"
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", "Empty model spec"),
        ("nonsense", "Unknown model spec 'nonsense'"),
        ("NoSuchNet/abc", "is not an open_clip architecture"),
        ("ViT-B-32/not_a_tag", "Tags for ViT-B-32: "),
        ("local-dir:/does/not/exist", "has no open_clip_config.json"),
    ],
)
def test_bad_specs_say_what_is_valid(spec: str, expected: str) -> None:
    with pytest.raises(ModelError, match=expected.replace("(", r"\(")):
        parse_encoder_spec(spec)


def test_tiny_test_encoder_is_deterministic_and_normalised() -> None:
    encoder = load_encoder("tiny-test", "cpu")
    images = [Image.new("RGB", (64, 48), "red"), Image.new("RGB", (20, 90), "blue")]
    vectors = encoder.encode_images(images)
    texts = encoder.encode_texts(["a red square", "a blue square", "x"])
    assert vectors.shape == (2, encoder.dim) and texts.shape == (3, encoder.dim)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    from search.models.encoders.open_clip_encoder import OpenClipEncoder
    from search.models.specs import parse_encoder_spec as parse

    fresh = OpenClipEncoder(parse("tiny-test"), device="cpu")  # a second build, same seed
    assert np.allclose(fresh.encode_images(images), vectors, atol=1e-6)


def test_missing_weights_offline_names_cache_offline_flag_and_model() -> None:
    with pytest.raises(ModelError) as info:
        load_encoder("default", "cpu")
    message = str(info.value)
    for needle in (
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "HF_HUB_OFFLINE",
        "hf-home",
        "local-dir:PATH",
    ):
        assert needle in message, message


def test_cli_missing_weights_is_one_clear_sentence(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from web.cli import app

    folder = tmp_path / "p"
    folder.mkdir()
    Image.new("RGB", (10, 10)).save(folder / "a.png")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "d"), "index", str(folder)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "HF_HUB_OFFLINE" in result.stderr and "pixseek demo" in result.stderr
