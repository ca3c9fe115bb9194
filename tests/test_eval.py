"""`pixseek eval` on datasets: the metric, the dataset formats, and a random model at chance."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from indexer.quality.evaluation import recall_at
from search.settings import Settings
from tests.conftest import Cli

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "purple": (140, 30, 160),
    "orange": (240, 140, 20),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
}


def _tiny_dataset(root: Path, count: int = 24) -> list[tuple[str, list[str]]]:
    rng = random.Random(5)
    (root / "images").mkdir(parents=True)
    items = []
    names = list(COLOURS)
    for i in range(count):
        colour, other = rng.sample(names, 2)
        image = Image.new("RGB", (48, 48), COLOURS[other])
        image.paste(COLOURS[colour], (8 + i % 5, 8, 40, 40))
        name = f"img{i:03d}.png"
        image.save(root / "images" / name)
        items.append(
            (name, [f"a {colour} square on {other}", f"{colour} block, {other} background #{i}"])
        )
    return items


def test_recall_definition() -> None:
    assert recall_at([0, 3, -1, 9], [1, 5, 10]) == {"R@1": 0.25, "R@5": 0.5, "R@10": 0.75}


def test_jsonl_and_karpathy_formats_give_the_same_numbers(tmp_path: Path) -> None:
    items = _tiny_dataset(tmp_path)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"image": f"images/{name}", "caption": c}) + "\n"
            for name, caps in items
            for c in caps
        )
    )
    karpathy = tmp_path / "dataset_tiny.json"
    karpathy.write_text(
        json.dumps(
            {
                "images": [
                    {
                        "filename": name,
                        "split": "test" if i < 20 else "train",
                        "sentences": [{"raw": c} for c in caps],
                    }
                    for i, (name, caps) in enumerate(items)
                ]
            }
        )
    )
    cli = Cli(Settings(data_dir=tmp_path / "data", model="tiny-test", workers=0, device="cpu"))
    from_jsonl = cli.json("eval", str(jsonl), "--k", "1,5,10")
    assert from_jsonl["queries"] == 48 and from_jsonl["mode"] == "vector"
    assert set(from_jsonl["t2i"]) == set(from_jsonl["i2t"]) == {"R@1", "R@5", "R@10"}
    from_karpathy = cli.json("eval", str(karpathy), "--images", str(tmp_path / "images"))
    assert from_karpathy["queries"] == 40, "only the test split"
    missing = cli("eval", str(karpathy), expect=1)
    assert "--images DIR" in missing.stderr


def test_random_weights_are_near_chance(tmp_path: Path) -> None:
    """The metric can fail: an untrained encoder retrieves at about chance level."""
    items = _tiny_dataset(tmp_path, count=40)
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"image": f"images/{n}", "caption": c}) + "\n"
            for n, caps in items
            for c in caps
        )
    )
    cli = Cli(Settings(data_dir=tmp_path / "data", model="tiny-test", workers=0, device="cpu"))
    result = cli.json("eval", str(jsonl), "--k", "1,5")
    chance_at_5 = 5 / 40
    assert result["t2i"]["R@1"] < 0.15 and result["t2i"]["R@5"] < chance_at_5 + 0.2, result
    text = cli("eval", str(jsonl)).stdout
    assert "t2i R@1" in text and "i2t R@5" in text


@pytest.mark.parametrize("content", ["{not json", '{"image": "x.png"}\n'])
def test_bad_dataset_files_name_the_problem(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    cli = Cli(Settings(data_dir=tmp_path / "data", model="tiny-test", workers=0, device="cpu"))
    result = cli("eval", str(path), expect=1)
    assert "bad.jsonl:1" in result.stderr
