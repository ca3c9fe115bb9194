"""Encoder specs and the tiny-test encoder: parsing, identity, shapes, normalisation, and what
a user gets when weights are missing offline: the one message, at once (a cache lookup and one
connect, not huggingface_hub's minute of retries), and nothing else on stderr."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.errors import ModelError
from search.models import load_encoder
from search.models.specs import parse_encoder_spec

REPO_ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def refused_endpoint() -> Iterator[str]:
    """An HF_ENDPOINT that refuses connections at once: a port bound here but not listening."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def _fake_cached_file(hub_cache: Path, repo: str, name: str) -> Path:
    """A file as huggingface_hub lays out a downloaded one: a snapshot that refs/main names."""
    folder = hub_cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text("0" * 40)
    path = folder / "snapshots" / ("0" * 40) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return path


def test_hub_check_finds_cache_and_connects_once(refused_endpoint: str, tmp_path: Path) -> None:
    from search.models.hub import cached_hub_file, hub_unreachable

    cached = _fake_cached_file(tmp_path / "hf-home" / "hub", "org/model", "b.bin")
    assert cached_hub_file("org/model", ["a.safetensors", "b.bin"]) == str(cached)
    assert cached_hub_file("org/model", ["a.safetensors"]) is None
    assert cached_hub_file("org/other", ["b.bin"]) is None
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert hub_unreachable(f"http://127.0.0.1:{server.getsockname()[1]}") is None
    problem = hub_unreachable(refused_endpoint)
    assert problem is not None and refused_endpoint in problem and "refused" in problem.lower()


def test_cached_weights_need_no_hub(
    monkeypatch: pytest.MonkeyPatch, refused_endpoint: str, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    from search.models.hub import require_hub_files

    monkeypatch.setattr(constants, "ENDPOINT", refused_endpoint)
    _fake_cached_file(tmp_path / "hf-home" / "hub", "org/model", "config.json")
    require_hub_files("org/model", [["config.json"]], what="Weights", local_fix="x")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    require_hub_files("org/model", [["config.json"]], what="Weights", local_fix="x")
    with pytest.raises(ModelError, match="cannot be reached"):
        require_hub_files("org/model", [["config.json"], ["model.bin"]], what="W", local_fix="x")


def test_unreachable_hub_fails_a_reranker_at_once(
    monkeypatch: pytest.MonkeyPatch, refused_endpoint: str, tmp_path: Path
) -> None:
    """Downloads allowed but the hub does not answer: one connect, not minutes of retries."""
    from huggingface_hub import constants

    from search.models import load_reranker

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "ENDPOINT", refused_endpoint)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        load_reranker("Salesforce/blip-itm-base-coco", device="cpu")
    assert time.monotonic() - started < 10
    message = str(caught.value)
    for expected in ("Salesforce/blip-itm-base-coco", refused_endpoint, "cannot be reached"):
        assert expected in message, message


def _index_offline(
    tmp_path: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`pixseek index` in a fresh process, as a new user runs it, with an empty HF cache."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (32, 32), "red").save(folder / "a.png")
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HF_", "PIXSEEK_", "HUGGINGFACE_"))
        and not name.lower().endswith("_proxy")
    }
    clean.update(HF_HOME=str(tmp_path / "empty-hf-home"), PIXSEEK_DATA_DIR=str(tmp_path / "d"))
    clean.update(PIXSEEK_WORKERS="0", PIXSEEK_DEVICE="cpu", **env)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "index", str(folder)],
        cwd=REPO_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,  # waits for the exit; the assertion on the duration says what is expected
        check=False,
    )
    return result, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("downloads", ["hub unreachable", "HF_HUB_OFFLINE=1"])
def test_offline_first_run_fails_fast_with_one_message(
    downloads: str, refused_endpoint: str, tmp_path: Path
) -> None:
    env = {"HF_ENDPOINT": refused_endpoint}
    if downloads == "HF_HUB_OFFLINE=1":
        env["HF_HUB_OFFLINE"] = "1"
    result, seconds = _index_offline(tmp_path, env)
    assert result.returncode == 1, result.stderr
    # huggingface_hub's five retries with backoff took 23 s per file, two files: 54 s in all
    assert seconds < 30, f"took {seconds:.1f} s"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    message = lines[0]
    for expected in (
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        str(tmp_path / "empty-hf-home" / "hub"),
        "HF_HOME",
        "local-dir:PATH",
        "pixseek demo",
    ):
        assert expected in message, message
    reason = "HF_HUB_OFFLINE is set" if "OFFLINE" in downloads else f"{refused_endpoint} cannot"
    assert reason in message, message
    assert result.stdout == ""
