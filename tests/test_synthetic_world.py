"""The synthetic world and the tiny CLIP trained on it.

The world is the ground truth every offline retrieval test stands on, so it is checked against
its own pixels: captions name what was drawn, seeds reproduce it byte for byte, and the test split
is genuinely held out. The trained model is then held to a retrieval bar on that held-out split,
and a random-init twin of it is shown to fail the same bar, so the metric can tell the two apart.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from indexer.quality.synthetic_world import (
    BACKGROUNDS,
    COLOURS,
    SHAPES,
    WorldSplits,
    attribute_key,
    generate_world,
    load_world,
)
from indexer.quality.tiny_clip_training import MODEL_CONFIG_PATH, ensure_world_and_model
from tests.world_fixtures import WORLD_SEED, world_cache_dir

SMALL_WORLD = {"n_train": 120, "n_test": 40}
COUNT_WORDS = {1: ("a", "an", "one"), 2: ("two",), 3: ("three",)}
POSITION_WORDS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}
PLURALS = {"cross": "crosses"}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> WorldSplits:
    return generate_world(tmp_path_factory.mktemp("small-world"), seed=3, **SMALL_WORLD)


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _words(text: str) -> list[str]:
    return text.replace(",", " ").split()


def test_same_seed_draws_the_same_world_byte_for_byte(
    small_world: WorldSplits, tmp_path: Path
) -> None:
    again = generate_world(tmp_path / "again", seed=3, **SMALL_WORLD)
    other = generate_world(tmp_path / "other", seed=4, **SMALL_WORLD)

    first, second = _file_digests(small_world.root), _file_digests(again.root)
    assert first == second, (
        f"files differing between two seed-3 draws: "
        f"{sorted(set(first.items()) ^ set(second.items()))[:4]}"
    )
    assert _file_digests(other.root) != first, "seed 4 drew exactly the seed-3 world"


def test_generate_world_reuses_a_complete_world_and_redraws_a_different_request(
    tmp_path: Path,
) -> None:
    world = generate_world(tmp_path, seed=0, n_train=10, n_test=5)
    image = tmp_path / world.train[0].file_name
    drawn_at = image.stat().st_mtime_ns

    reused = generate_world(tmp_path, seed=0, n_train=10, n_test=5)
    assert image.stat().st_mtime_ns == drawn_at, "an identical request redrew the images"
    assert reused == world

    redrawn = generate_world(tmp_path, seed=1, n_train=8, n_test=4)
    assert load_world(tmp_path) == redrawn
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        f"{i:05d}.png" for i in range(8)
    ]


def test_train_and_test_share_no_image_and_no_attribute_combination(
    small_world: WorldSplits,
) -> None:
    def pixel_digest(item_file: str) -> str:
        return hashlib.sha256(
            np.asarray(Image.open(small_world.root / item_file)).tobytes()
        ).hexdigest()

    train_pixels = {pixel_digest(item.file_name) for item in small_world.train}
    test_pixels = {pixel_digest(item.file_name) for item in small_world.test}
    train_keys = {attribute_key(item.attributes) for item in small_world.train}
    test_keys = [attribute_key(item.attributes) for item in small_world.test]

    assert not {i.file_name for i in small_world.train} & {i.file_name for i in small_world.test}
    assert not train_pixels & test_pixels, "the same picture is in both splits"
    assert not train_keys & set(test_keys), (
        f"combinations in both splits: {sorted(train_keys & set(test_keys))[:3]}"
    )
    assert len(set(test_keys)) == len(test_keys), (
        "two test images have the same attributes, so one caption fits both"
    )


def test_captions_name_every_attribute_of_their_image(small_world: WorldSplits) -> None:
    for item in small_world.train + small_world.test:
        a = item.attributes
        shape = (
            str(a["shape"]) if a["count"] == 1 else PLURALS.get(str(a["shape"]), f"{a['shape']}s")
        )
        assert a["colour"] != a["background"], (
            f"{item.file_name}: {a['colour']} shape on a {a['background']} background"
        )
        for caption in item.captions:
            words = _words(caption)
            seen = f"{item.file_name}: {caption!r} for {a}"
            assert shape in words, seen
            determiner, size, colour = words[words.index(shape) - 3 : words.index(shape)]
            assert (determiner, size, colour) in {
                (w, a["size"], a["colour"]) for w in COUNT_WORDS[int(a["count"])]
            }, seen
            assert POSITION_WORDS[str(a["position"])] in words and "background" in words, seen
            background_words = words[words.index("background") - 2 : words.index("background")]
            assert a["background"] in background_words, seen
            assert ("striped" in background_words) == (a["pattern"] == "striped"), seen


def _shape_pixels(item_image: Image.Image, colour: str) -> np.ndarray:
    """Pixels within 20 of the nominal shape colour in every channel (drawing jitters by <= 14)."""
    pixels = np.asarray(item_image.convert("RGB")).astype(int)
    return np.abs(pixels - np.array(COLOURS[colour])).max(axis=2) <= 20


def _blob_sizes(mask: np.ndarray) -> list[int]:
    """Sizes of the 4-connected groups of True pixels."""
    seen = np.zeros_like(mask)
    sizes = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, size = deque([start]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if (
                    0 <= ny < mask.shape[0]
                    and 0 <= nx < mask.shape[1]
                    and mask[ny, nx]
                    and not seen[ny, nx]
                ):
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        sizes.append(size)
    return sizes


def test_pixels_show_the_captioned_colour_count_and_position(small_world: WorldSplits) -> None:
    assert set(BACKGROUNDS) - set(COLOURS) == {
        "gray"
    }  # the colour check below relies on this palette
    for item in small_world.train + small_world.test:
        a = item.attributes
        mask = _shape_pixels(Image.open(small_world.root / item.file_name), str(a["colour"]))
        blobs = [size for size in _blob_sizes(mask) if size >= 6]
        half = mask.shape[0] // 2
        ys, xs = np.nonzero(mask)
        inside = {"left": xs < half, "right": xs >= half, "top": ys < half, "bottom": ys >= half}[
            str(a["position"])
        ]

        seen = (
            f"{item.file_name} ({a}): {len(blobs)} shapes of sizes {blobs}, "
            f"{inside.mean():.0%} in the {a['position']} half"
        )
        assert len(blobs) == a["count"], seen
        assert inside.mean() >= 0.98, seen


def test_jsonl_lists_every_caption_with_an_image_path_relative_to_the_file(
    small_world: WorldSplits,
) -> None:
    for split, items in (("train", small_world.train), ("test", small_world.test)):
        jsonl = small_world.root / f"{split}.jsonl"
        rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
        assert rows == [{"image": i.file_name, "caption": c} for i in items for c in i.captions]
        assert all((jsonl.parent / row["image"]).is_file() for row in rows)


# --- the trained tiny CLIP (trained once, then cached; see tests/world_fixtures.py) ---


def text_to_image_recall(
    model: torch.nn.Module, model_dir: Path, world_dir: Path, ks: tuple[int, ...] = (1, 5)
) -> dict[int, float]:
    """Held-out text->image Recall@K over the test split, with plain torch.

    Every test caption queries all test images. A hit is a top-K image with the caption's own
    attribute combination; images sharing a combination would count as the same answer, but the
    generator makes test combinations unique, so in practice this is "its own image".
    """
    world = load_world(world_dir)
    _, _, preprocess = open_clip.create_model_and_transforms("local-dir:" + str(model_dir))
    tokenizer = open_clip.get_tokenizer("local-dir:" + str(model_dir))
    rows = [
        json.loads(line)
        for line in (world_dir / "test.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    position = {item.file_name: i for i, item in enumerate(world.test)}
    combination_ids: dict[tuple[str | int, ...], int] = {}
    image_combination = torch.tensor(
        [
            combination_ids.setdefault(attribute_key(item.attributes), len(combination_ids))
            for item in world.test
        ]
    )
    model.eval()
    with torch.no_grad():
        images = torch.stack(
            [
                preprocess(Image.open(world_dir / item.file_name).convert("RGB"))
                for item in world.test
            ]
        )
        image_features = model.encode_image(images, normalize=True)
        text_features = model.encode_text(
            tokenizer([row["caption"] for row in rows]), normalize=True
        )
    ranked = (text_features @ image_features.T).argsort(dim=1, descending=True)
    wanted = image_combination[torch.tensor([position[row["image"]] for row in rows])]
    return {
        k: float((image_combination[ranked[:, :k]] == wanted[:, None]).any(dim=1).float().mean())
        for k in ks
    }


def _load(model_dir: Path, *, trained: bool) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return open_clip.create_model("local-dir:" + str(model_dir), load_weights=trained)


def test_tiny_clip_finds_held_out_images_by_their_captions(
    trained_world: tuple[Path, Path],
) -> None:
    world_dir, model_dir = trained_world
    recall = text_to_image_recall(_load(model_dir, trained=True), model_dir, world_dir)
    assert recall[1] >= 0.90 and recall[5] >= 0.98, (
        f"held-out text->image recall {recall} (want R@1 >= 0.90, R@5 >= 0.98)"
    )


def test_random_init_tiny_clip_with_the_same_config_is_near_chance(
    trained_world: tuple[Path, Path],
) -> None:
    world_dir, model_dir = trained_world
    recall = text_to_image_recall(_load(model_dir, trained=False), model_dir, world_dir)
    chance = {k: k / len(load_world(world_dir).test) for k in recall}
    assert recall[1] <= 5 * chance[1] and recall[5] <= 5 * chance[5], (
        f"random weights reach {recall}; chance is {chance}"
    )


def test_every_word_of_the_test_captions_occurs_in_train_captions(
    trained_world: tuple[Path, Path],
) -> None:
    world = load_world(trained_world[0])
    train_words = {
        word for item in world.train for caption in item.captions for word in _words(caption)
    }
    test_words = {
        word for item in world.test for caption in item.captions for word in _words(caption)
    }
    assert test_words <= train_words, f"test-only words: {sorted(test_words - train_words)}"
    assert {str(item.attributes["shape"]) for item in world.train} == set(SHAPES)


def test_model_folder_loads_in_a_fresh_process_with_the_standard_tokenizer(
    trained_world: tuple[Path, Path],
) -> None:
    model_dir = trained_world[1]
    probe = (
        "import json, sys, open_clip, torch\n"
        "spec = 'local-dir:' + sys.argv[1]\n"
        "model, _, preprocess = open_clip.create_model_and_transforms(spec)\n"
        "tokenizer = open_clip.get_tokenizer(spec)\n"
        "with torch.no_grad():\n"
        "    text = model.encode_text(tokenizer(['a small red circle on the left']))\n"
        "print(json.dumps({'tokenizer': type(tokenizer).__name__, 'dim': text.shape[-1]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(model_dir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shipped = json.loads(MODEL_CONFIG_PATH.read_text(encoding="utf-8"))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "tokenizer": "SimpleTokenizer",
        "dim": shipped["embed_dim"],
    }


def test_saved_config_is_the_shipped_architecture_with_its_preprocessing(
    trained_world: tuple[Path, Path],
) -> None:
    saved = json.loads((trained_world[1] / "open_clip_config.json").read_text(encoding="utf-8"))
    assert saved["model_cfg"] == json.loads(MODEL_CONFIG_PATH.read_text(encoding="utf-8"))
    assert saved["preprocess_cfg"]["size"] == saved["model_cfg"]["vision_cfg"]["image_size"]
    assert (trained_world[1] / "open_clip_model.safetensors").is_file()


def test_ensure_world_and_model_reuses_what_is_cached(trained_world: tuple[Path, Path]) -> None:
    checkpoint = trained_world[1] / "open_clip_model.safetensors"
    trained_at = checkpoint.stat().st_mtime_ns
    assert ensure_world_and_model(world_cache_dir(), seed=WORLD_SEED) == trained_world
    assert checkpoint.stat().st_mtime_ns == trained_at, "a cached model was trained again"
