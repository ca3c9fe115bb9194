"""Retrieval quality through the product, with the tiny CLIP trained on the synthetic world:
`pixseek eval` indexes the held-out split with the normal indexing path and queries it with
`SearchEngine`, and `pixseek demo` reuses the same world and model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from search.settings import Settings
from tests.conftest import Cli

pytestmark = pytest.mark.slow


def test_trained_tiny_clip_retrieves_held_out_images_through_index_and_search(
    trained_world: tuple[Path, Path], tmp_path: Path
) -> None:
    world_dir, model_dir = trained_world
    cli = Cli(
        Settings(data_dir=tmp_path / "data", model="tiny-test", workers=0, device="cpu", tags=False)
    )
    cli.env["PIXSEEK_TAGS"] = "false"
    result = cli.json(
        "eval", str(world_dir / "test.jsonl"), "--model", f"local-dir:{model_dir}", "--k", "1,5,10"
    )
    assert result["t2i"]["R@1"] >= 0.90 and result["t2i"]["R@5"] >= 0.98, result
    assert result["i2t"]["R@1"] > 0.5, result
    assert result["queries"] > 0 and result["mode"] == "vector"


def test_demo_indexes_the_test_split_and_answers_example_queries(
    trained_world: tuple[Path, Path], tmp_path: Path
) -> None:
    world_dir, model_dir = trained_world
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copytree(world_dir, demo / "world")
    shutil.copytree(model_dir, demo / "model")
    cli = Cli(Settings(data_dir=tmp_path / "unused", model="tiny-test", workers=0, device="cpu"))
    output = cli("demo", "--dir", str(demo), "--no-serve").stdout
    assert "<- the captioned image" in output
    assert f"--model local-dir:{demo / 'model'}" in output
    assert (demo / "world" / "test.jsonl").exists() and (demo / "data" / "catalog.db").exists()
