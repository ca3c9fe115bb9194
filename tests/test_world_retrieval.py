"""Retrieval quality through the product, with the tiny CLIP trained on the synthetic world:
`pixseek eval` indexes the held-out split with the normal indexing path and queries it with
`SearchEngine`, and `pixseek demo` reuses the same world and model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from indexer.quality.demo import DEMO_COLLECTION, world_tag_vocabulary
from indexer.quality.synthetic_world import load_world
from search.catalog import open_catalog
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
    # the way back to the demo: the exact commands, with its data directory, and the page
    data = demo / "data"
    assert f"--data-dir {data} search " in output and f"--data-dir {data} serve" in output
    assert "http://127.0.0.1:8000/" in output
    # `pixseek eval` indexes world/test: the captions must not be beside those images
    assert not list((demo / "world" / "test").glob("*.txt"))
    _demo_has_captions_and_world_tags(cli, demo)
    again = cli("demo", "--dir", str(demo), "--no-serve").stdout
    assert f"Indexed 0 new images ({len(load_world(demo / 'world').test)} unchanged)" in again
    shutil.rmtree(demo / "photos")  # as if an older demo had indexed world/test directly
    refused = cli("demo", "--dir", str(demo), "--no-serve", expect=1).stderr
    assert f"Delete {data}" in " ".join(refused.split()), refused


def _demo_has_captions_and_world_tags(cli: Cli, demo: Path) -> None:
    """Every image has its world caption, text mode finds an image by it, and a colour tag
    picks pictures of that colour."""
    world = load_world(demo / "world")
    by_name = {Path(item.file_name).name: item for item in world.test}
    data = ("--data-dir", str(demo / "data"))
    catalog = open_catalog(f"sqlite:///{demo / 'data' / 'catalog.db'}")
    try:
        collection = catalog.require_collection(DEMO_COLLECTION)
        assert catalog.count_by_status(collection.id) == {"embedded": len(world.test)}
        assert catalog.count_uncaptioned(collection.id) == 0
    finally:
        catalog.close()
    item = world.test[0]
    found = cli.json(*data, "search", item.captions[0], "--mode", "text", "--k", "3")["results"]
    assert found and all(hit["caption"] for hit in found), found
    assert Path(item.file_name).name in [Path(hit["path"]).name for hit in found], found
    hybrid = cli.json(*data, "search", item.captions[0], "--mode", "hybrid", "--k", "3")
    assert Path(item.file_name).name in [Path(h["path"]).name for h in hybrid["results"]]
    red = cli.json(*data, "search", "a red shape", "--tag", "red", "--k", "40")["results"]
    colours = [by_name[Path(hit["path"]).name].attributes["colour"] for hit in red]
    assert len(colours) >= 20, colours  # about 1 picture in 8 has red shapes
    assert colours.count("red") >= 0.8 * len(colours), colours
    labels = {tag["label"] for hit in red for tag in hit["tags"]}
    assert labels <= set(world_tag_vocabulary()), labels
