"""A seeded, captioned world of coloured shapes, drawn offline, for training and testing CLIP.

No machine that builds or tests pixseek can download model weights, so retrieval quality cannot
be measured with a real CLIP. Instead we draw a small world whose captions say exactly what is in
each picture ("two small green triangles on the left on a striped gray background"), train a tiny
CLIP on its train split (``indexer.quality.tiny_clip_training``) and measure text-to-image recall
on its test split. Because the same seed always draws the same pixels and captions, recall is
stable from run to run and a drop means the code changed, not the dice.

Each image has seven attributes: ``shape``, ``colour``, ``size`` (small/large), ``count``
(1 to 3 copies of the shape), ``position`` (left/right/top/bottom half), ``background``
(a colour) and ``pattern`` (plain or striped background). The shape colour never equals the
background colour, so every caption describes something visible.

The splits are built so that held-out recall means something:

* test images share no image and no attribute combination with train images: every test image
  has a combination of all seven attributes that no train image has (each single attribute
  value, and so each caption word, does occur in train);
* no two test images have the same combination, so a test caption identifies exactly one test
  image (ties in the recall computation cannot happen);
* every word used in test captions also occurs in train captions (checked by the tests).

On disk (``out_dir``): ``train/NNNNN.png``, ``test/NNNNN.png``, ``train.jsonl`` and
``test.jsonl`` with one ``{"image": "test/00001.png", "caption": "..."}`` line per
(image, caption) pair (paths relative to the jsonl file), and ``world.json``, the manifest,
written last: a directory whose manifest matches the request is complete and is reused as is.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "ATTRIBUTE_NAMES",
    "BACKGROUNDS",
    "COLOURS",
    "COUNTS",
    "PATTERNS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "WORLD_VERSION",
    "WorldItem",
    "WorldSplits",
    "attribute_key",
    "captions_for",
    "generate_world",
    "load_world",
    "split_listing",
]

WORLD_VERSION = 3
"""Bump whenever a change to this module changes pixels, captions or splits for a given seed."""

MANIFEST_NAME = "world.json"

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (40, 70, 225),
    "yellow": (245, 220, 35),
    "purple": (135, 45, 175),
    "orange": (250, 135, 15),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (235, 235, 235),
    "black": (25, 25, 25),
    "gray": (128, 128, 128),
    "blue": (50, 80, 200),
    "green": (40, 150, 60),
}
PATTERNS: tuple[str, ...] = ("plain", "striped")
SIZES: tuple[str, ...] = ("small", "large")
COUNTS: tuple[int, ...] = (1, 2, 3)
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "shape",
    "colour",
    "size",
    "count",
    "position",
    "background",
    "pattern",
)
_SHAPE_PLURALS = {"cross": "crosses"}
_COUNT_WORDS = {2: "two", 3: "three"}
_POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "on the left side"),
    "right": ("on the right", "on the right side"),
    "top": ("at the top", "along the top"),
    "bottom": ("at the bottom", "along the bottom"),
}
# Paraphrases; {np} is e.g. "two small green triangles", {pos} "on the left" and {bg_np}
# "a striped gray background". Every template names every attribute.
_TEMPLATES: tuple[str, ...] = (
    "{np} {pos} on {bg_np}",
    "{bg_np} with {np} {pos}",
    "{np} on {bg_np}, {pos}",
    "a picture of {np} {pos}, on {bg_np}",
    "{pos}, {np} on {bg_np}",
)
# Side ranges in pixels at 64 px: "large" is as large as three in a row across the image allow;
# "small" stays above a dozen pixels, below which a star and a cross are hard to tell apart.
_SIZE_PIXELS = {"small": (13.0, 15.0), "large": (18.5, 20.0)}
_SUPERSAMPLE = 4  # draw 4x larger then box-downsample: cheap anti-aliasing for small shapes
_MAX_TURN = 0.1  # radians; shapes are turned a little so no two copies are pixel-identical


@dataclass(frozen=True)
class WorldItem:
    """One drawn image: where it is (relative to the world root), its captions, what it shows."""

    file_name: str
    captions: list[str]
    attributes: dict[str, str | int]


@dataclass(frozen=True)
class WorldSplits:
    """A generated world on disk: its root folder, the two splits and how it was made."""

    root: Path
    seed: int
    image_size: int
    train: list[WorldItem]
    test: list[WorldItem]

    @property
    def train_jsonl(self) -> Path:
        return split_listing(self.root, "train")

    @property
    def test_jsonl(self) -> Path:
        return split_listing(self.root, "test")


def split_listing(root: Path, split: str) -> Path:
    """The JSONL of a split's (image, caption) pairs, in the format `pixseek eval` reads."""
    return root / f"{split}.jsonl"


def attribute_key(attributes: dict[str, str | int]) -> tuple[str | int, ...]:
    """The attribute combination of an image, in a fixed order, usable as a dict key."""
    return tuple(attributes[name] for name in ATTRIBUTE_NAMES)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(attributes: dict[str, str | int], *, use_one: bool) -> str:
    shape = str(attributes["shape"])
    count = int(attributes["count"])
    adjectives = f"{attributes['size']} {attributes['colour']}"
    if count == 1:
        determiner = "one" if use_one else _article(adjectives)
        return f"{determiner} {adjectives} {shape}"
    plural = _SHAPE_PLURALS.get(shape, shape + "s")
    return f"{_COUNT_WORDS[count]} {adjectives} {plural}"


def _background_phrase(attributes: dict[str, str | int], *, say_plain: bool) -> str:
    colour = str(attributes["background"])
    if attributes["pattern"] == "striped":
        words = f"striped {colour}"
    else:
        words = f"plain {colour}" if say_plain else colour
    return f"{_article(words)} {words} background"


def captions_for(
    attributes: dict[str, str | int], rng: np.random.Generator, *, n_captions: int
) -> list[str]:
    """Distinct paraphrases that each name every attribute of the image.

    Wording choices (template, "a" or "one", "plain" or nothing, which position phrase) are
    drawn from ``rng``, so the text encoder learns meanings rather than one fixed sentence.
    """
    n_captions = min(n_captions, len(_TEMPLATES))
    template_ids = rng.permutation(len(_TEMPLATES))[:n_captions]
    captions = []
    for template_id in template_ids:
        np_text = _noun_phrase(attributes, use_one=bool(rng.random() < 0.25))
        bg_np = _background_phrase(attributes, say_plain=bool(rng.random() < 0.5))
        phrases = _POSITION_PHRASES[str(attributes["position"])]
        pos = phrases[int(rng.integers(len(phrases)))]
        captions.append(_TEMPLATES[int(template_id)].format(np=np_text, pos=pos, bg_np=bg_np))
    return captions


def _all_combinations() -> list[dict[str, str | int]]:
    combos: list[dict[str, str | int]] = []
    for shape, colour, size, count, position, background, pattern in itertools.product(
        SHAPES, COLOURS, SIZES, COUNTS, POSITIONS, BACKGROUNDS, PATTERNS
    ):
        if colour == background:
            continue  # a shape painted the background's colour would be invisible
        combos.append(
            {
                "shape": shape,
                "colour": colour,
                "size": size,
                "count": count,
                "position": position,
                "background": background,
                "pattern": pattern,
            }
        )
    return combos


def _jitter_colour(
    rgb: tuple[int, int, int], rng: np.random.Generator, amount: int
) -> tuple[int, int, int]:
    noisy = np.clip(np.array(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(noisy[0]), int(noisy[1]), int(noisy[2]))


def _shape_polygon(
    shape: str, cx: float, cy: float, side: float, angle: float
) -> list[tuple[float, float]]:
    """Vertices of a shape centred on (cx, cy), turned by ``angle``, inside a box of ``side``.

    Every shape stays inside its box for turns up to :data:`_MAX_TURN`, so neighbouring copies
    never touch and "three" always shows three separate shapes.
    """
    r = side / 2
    if shape == "square":
        r *= 0.88  # so that, turned by up to _MAX_TURN, it still fits its box
        points = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif shape == "triangle":
        points = [
            (r * math.cos(a), r * math.sin(a))
            for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))
        ]
        points = [
            (x, y + r * 0.2) for x, y in points
        ]  # centre the triangle's box, not its centroid
    elif shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.42
            a = -math.pi / 2 + k * math.pi / 5
            points.append((radius * math.cos(a), radius * math.sin(a)))
    elif shape == "cross":
        r *= 0.95  # likewise
        t = r / 3
        points = [
            (-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t),
            (t, r), (-t, r), (-t, t), (-r, t), (-r, -t), (-t, -t),
        ]  # fmt: skip
    elif shape == "diamond":
        points = [(0.0, -r), (r * 0.8, 0.0), (0.0, r), (-r * 0.8, 0.0)]
    else:
        raise ValueError(f"Unknown shape {shape!r}; expected one of {', '.join(SHAPES)}.")
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    return [(cx + x * cos_a - y * sin_a, cy + x * sin_a + y * cos_a) for x, y in points]


def _draw_background(
    draw: ImageDraw.ImageDraw,
    attributes: dict[str, str | int],
    rng: np.random.Generator,
    canvas: int,
) -> None:
    base = _jitter_colour(BACKGROUNDS[str(attributes["background"])], rng, 10)
    draw.rectangle((0, 0, canvas, canvas), fill=base)
    if attributes["pattern"] != "striped":
        return
    # Stripes: the background colour mixed 35% towards white (dark colours) or black (light).
    target = 255 if sum(base) < 3 * 128 else 0
    stripe = tuple(int(c + 0.35 * (target - c)) for c in base)
    period = float(rng.uniform(7, 10)) * _SUPERSAMPLE
    width = period / 2
    orientation = int(rng.integers(3))  # horizontal, vertical, diagonal
    offset = float(rng.uniform(0, period))
    if orientation == 2:
        start = -canvas + offset
        while start < canvas:
            draw.polygon(
                [
                    (start, 0),
                    (start + width, 0),
                    (start + width + canvas, canvas),
                    (start + canvas, canvas),
                ],
                fill=stripe,
            )
            start += period
        return
    start = offset - period
    while start < canvas:
        box = (
            (start, 0, start + width, canvas)
            if orientation == 1
            else (0, start, canvas, start + width)
        )
        draw.rectangle(box, fill=stripe)
        start += period


def _object_centres(
    attributes: dict[str, str | int], side: float, rng: np.random.Generator, size: int
) -> list[tuple[float, float]]:
    """Centres for ``count`` objects in a row (top/bottom) or column (left/right) in their half.

    Groups hug the middle of their half across it and the middle of the image along it, so a
    single object "on the left" is never near the corner where "at the top" would fit as well,
    and three large objects still fit inside the image without overlapping.
    """
    count = int(attributes["count"])
    position = str(attributes["position"])
    half = size / 2
    free_along = size - 2 - count * side  # room left over along the row or column
    gap = float(rng.uniform(0.5, max(0.5, min(0.1 * size, free_along / max(1, count - 1)))))
    spacing = side + gap
    group_length = spacing * (count - 1) + side
    max_shift = max(0.0, min(size / 16, (size - 2 - group_length) / 2))
    along_centre = half + float(rng.uniform(-max_shift, max_shift))
    across_room = max(0.0, min(size / 32, (half - side) / 2 - 1))
    across_centre = half / 2 + float(rng.uniform(-across_room, across_room))
    if position in ("right", "bottom"):
        across_centre += half
    centres = []
    for i in range(count):
        along = along_centre + (i - (count - 1) / 2) * spacing
        across = across_centre + float(rng.uniform(-0.5, 0.5))
        centres.append((across, along) if position in ("left", "right") else (along, across))
    return centres


def _draw_image(
    attributes: dict[str, str | int], rng: np.random.Generator, size: int
) -> Image.Image:
    canvas = size * _SUPERSAMPLE
    image = Image.new("RGB", (canvas, canvas))
    draw = ImageDraw.Draw(image)
    _draw_background(draw, attributes, rng, canvas)
    low, high = _SIZE_PIXELS[str(attributes["size"])]
    side = float(rng.uniform(low, high)) * size / 64
    colour = _jitter_colour(COLOURS[str(attributes["colour"])], rng, 14)
    for cx, cy in _object_centres(attributes, side, rng, size):
        shape = str(attributes["shape"])
        s = _SUPERSAMPLE
        if shape == "circle":
            r = side / 2 * s
            draw.ellipse((cx * s - r, cy * s - r, cx * s + r, cy * s + r), fill=colour)
        else:
            angle = float(rng.uniform(-_MAX_TURN, _MAX_TURN))
            draw.polygon(_shape_polygon(shape, cx * s, cy * s, side * s, angle), fill=colour)
    return image.resize((size, size), Image.Resampling.BOX)


def _item_to_json(item: WorldItem) -> dict[str, Any]:
    return {"file_name": item.file_name, "captions": item.captions, "attributes": item.attributes}


def _item_from_json(data: dict[str, Any]) -> WorldItem:
    return WorldItem(
        file_name=data["file_name"],
        captions=list(data["captions"]),
        attributes=dict(data["attributes"]),
    )


def _manifest_header(
    *, seed: int, n_train: int, n_test: int, image_size: int, captions_per_image: int
) -> dict[str, int]:
    return {
        "version": WORLD_VERSION,
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "image_size": image_size,
        "captions_per_image": captions_per_image,
    }


def load_world(out_dir: Path) -> WorldSplits:
    """Read a world written by :func:`generate_world` from its ``world.json`` manifest."""
    manifest_path = Path(out_dir) / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"No synthetic world at {out_dir}: {MANIFEST_NAME} is missing. "
            "Run indexer.quality.synthetic_world.generate_world on that folder first."
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return WorldSplits(
        root=Path(out_dir),
        seed=int(manifest["seed"]),
        image_size=int(manifest["image_size"]),
        train=[_item_from_json(d) for d in manifest["train"]],
        test=[_item_from_json(d) for d in manifest["test"]],
    )


def _split_combinations(
    rng: np.random.Generator, n_train: int, n_test: int
) -> tuple[list[dict[str, str | int]], list[dict[str, str | int]]]:
    combos = _all_combinations()
    if n_test >= len(combos):
        raise ValueError(
            f"n_test={n_test} leaves no attribute combination for training; the world has "
            f"{len(combos)} combinations. Ask for fewer test images."
        )
    order = rng.permutation(len(combos))
    test = [combos[i] for i in order[:n_test]]
    pool = [combos[i] for i in order[n_test:]]
    # Train takes distinct unseen-by-test combinations, cycling through them if asked for more.
    train = (
        [pool[int(i)] for i in np.resize(rng.permutation(len(pool)), n_train)] if n_train else []
    )
    return train, test


def _write_split(
    root: Path,
    split: str,
    combos: Sequence[dict[str, str | int]],
    rng: np.random.Generator,
    *,
    image_size: int,
    captions_per_image: int,
) -> list[WorldItem]:
    (root / split).mkdir(parents=True, exist_ok=True)
    items = []
    lines: list[str] = []
    for index, attributes in enumerate(combos):
        file_name = f"{split}/{index:05d}.png"
        captions = captions_for(attributes, rng, n_captions=captions_per_image)
        _draw_image(attributes, rng, image_size).save(root / file_name, optimize=False)
        items.append(WorldItem(file_name=file_name, captions=captions, attributes=dict(attributes)))
        lines.extend(json.dumps({"image": file_name, "caption": caption}) for caption in captions)
    split_listing(root, split).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return items


def _holds_world(out_dir: Path, header: dict[str, int]) -> bool:
    """True when ``out_dir`` holds the world ``header`` describes; a folder holding another
    world has its manifest, images and listings removed (it is incomplete until redrawn)."""
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        return False
    existing = json.loads(manifest_path.read_text(encoding="utf-8"))
    if all(existing.get(key) == value for key, value in header.items()):
        return True
    manifest_path.unlink()  # from here on the folder is incomplete until the new manifest lands
    for split in ("train", "test"):
        shutil.rmtree(out_dir / split, ignore_errors=True)
    return False


def _write_manifest(
    manifest_path: Path, header: dict[str, int], train: list[WorldItem], test: list[WorldItem]
) -> None:
    """Write ``world.json`` last and atomically: its presence means the world is complete."""
    manifest = dict(
        header, train=[_item_to_json(i) for i in train], test=[_item_to_json(i) for i in test]
    )
    temporary = manifest_path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest), encoding="utf-8")
    temporary.replace(manifest_path)


def generate_world(
    out_dir: Path,
    *,
    seed: int = 0,
    n_train: int = 6000,
    n_test: int = 400,
    image_size: int = 64,
    captions_per_image: int = 3,
) -> WorldSplits:
    """Draw the world into ``out_dir`` (or reuse it when ``world.json`` says it is already there).

    ``captions_per_image`` paraphrases are written per image in both splits. A folder holding a
    different world (other seed, sizes or :data:`WORLD_VERSION`) has its images and listings
    replaced; a run killed half-way leaves no manifest and is simply drawn again.
    """
    out_dir = Path(out_dir)
    if image_size < 32:
        raise ValueError(
            f"image_size={image_size} is too small to tell the shapes apart; use 32 or more."
        )
    header = _manifest_header(
        seed=seed,
        n_train=n_train,
        n_test=n_test,
        image_size=image_size,
        captions_per_image=captions_per_image,
    )
    manifest_path = out_dir / MANIFEST_NAME
    if _holds_world(out_dir, header):
        return load_world(out_dir)
    rng = np.random.default_rng(seed)
    train_combos, test_combos = _split_combinations(rng, n_train, n_test)
    # One stream per split: the test images never depend on how many train images came first.
    train_rng, test_rng = (np.random.default_rng([seed, k]) for k in (1, 2))
    out_dir.mkdir(parents=True, exist_ok=True)
    train = _write_split(
        out_dir,
        "train",
        train_combos,
        train_rng,
        image_size=image_size,
        captions_per_image=captions_per_image,
    )
    test = _write_split(
        out_dir,
        "test",
        test_combos,
        test_rng,
        image_size=image_size,
        captions_per_image=captions_per_image,
    )
    _write_manifest(manifest_path, header, train, test)
    return WorldSplits(root=out_dir, seed=seed, image_size=image_size, train=train, test=test)
