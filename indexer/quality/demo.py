"""`pixseek demo`: see pixseek work with no model weights at all.

Builds the synthetic world and trains the tiny CLIP on its train split (about two minutes on a
laptop CPU, once), then indexes the held-out test split through the normal indexing path, the
way a user's photos are indexed, and runs a few example queries.

The demo is meant to be kept and searched afterwards, with every mode: the test images are
copied into `photos/` with each image's world caption beside it as a caption sidecar
(`00001.txt`), so the catalog holds captions and `--mode text` / `hybrid` find them; and images
are tagged with the world's own words (`world_tag_vocabulary`) instead of the shipped general
vocabulary, whose labels ("tent", "satellite dish") mean nothing here, so `--tag red` finds red
pictures. The captions stay out of `world/test`, which `pixseek eval` indexes: a text-mode
evaluation would otherwise find each query in its image's own caption.

Layout under DIR: `world/` (with `test.jsonl` in the eval format), `model/` (load it anywhere
with `--model local-dir:DIR/model`), `photos/`, `tag_vocabulary.txt` and `data/` (the demo's
own catalog, vectors and index: `pixseek --data-dir DIR/data search ...`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from indexer.quality.synthetic_world import (
    BACKGROUNDS,
    COLOURS,
    PATTERNS,
    POSITIONS,
    WorldSplits,
    load_world,
)
from indexer.quality.tiny_clip_training import build_atomically, build_world_and_model
from indexer.report import IndexReport
from search.catalog import Catalog, open_catalog
from search.errors import InputError
from search.query.engine import SearchEngine
from search.schemas import SearchResponse
from search.settings import Settings

__all__ = ["DEMO_COLLECTION", "DemoRun", "demo_settings", "run_demo", "world_tag_vocabulary"]

DEMO_COLLECTION = "demo"
PHOTOS = "photos"
VOCABULARY_FILE = "tag_vocabulary.txt"


@dataclass
class DemoRun:
    """What `pixseek demo` did and found, for the CLI to show."""

    settings: Settings
    model_spec: str
    world_dir: Path
    photos_dir: Path
    report: IndexReport
    examples: list[tuple[str, str, SearchResponse]]  # (query, expected image path, response)


def world_tag_vocabulary() -> list[str]:
    """Tag labels the world's pictures differ by: its colours (of shapes and of backgrounds
    alike, as a photo's "blue" is anything blue in it), its background patterns and the
    positions of its shapes.

    Shapes and sizes are left out. The tiny CLIP finds them inside whole captions, but asked
    with one word ("a photo of a circle.") it names them little better than chance: on the
    seed-0 test split, shape tags were right for 0-31% of the images they were given to and
    size tags for 0-25%, against 94-100% for every colour, pattern and position label (99% of
    all tags). A tag that is mostly wrong is worse than none."""
    colours = dict.fromkeys([*COLOURS, *BACKGROUNDS])
    return [*colours, *PATTERNS, *POSITIONS]


def demo_settings(folder: Path, device: str = "auto") -> Settings:
    """The demo's own data directory, model and tag vocabulary under `folder`: it never
    touches a user's."""
    return Settings(
        data_dir=folder / "data",
        model=f"local-dir:{folder / 'model'}",
        tag_vocabulary=folder / VOCABULARY_FILE,
        device=device,
        database_url=None,
    )


def _write_photos(world: WorldSplits, folder: Path) -> None:
    """The test split's images, each with its first world caption as a `.txt` sidecar."""
    for item in world.test:
        image = world.root / item.file_name
        shutil.copy2(image, folder / image.name)  # same bytes and mtime: re-runs see no change
        (folder / image.name).with_suffix(".txt").write_text(
            item.captions[0] + "\n", encoding="utf-8"
        )


def _refuse_older_demo_index(catalog: Catalog, photos: Path, data_dir: Path) -> None:
    """A demo index made from other files (an older `pixseek demo` indexed `world/test`,
    without captions) would show every picture twice once `photos/` is indexed too."""
    if not photos.is_dir() and catalog.get_collection(DEMO_COLLECTION) is not None:
        raise InputError(
            f"{data_dir} holds a demo index made without {photos} (by an older pixseek demo, "
            "without captions and tags, or that folder was deleted). Delete "
            f"{data_dir} and run the demo again; the world and the trained model are kept."
        )


def run_demo(
    folder: Path,
    *,
    device: str = "auto",
    examples: int = 4,
    progress: Callable[[str], None] | None = None,
) -> DemoRun:
    """Build the world and model under `folder` (once), index the captioned test split, and
    search for a few of its captions."""
    folder = folder.resolve()
    world_dir, _ = build_world_and_model(folder / "world", folder / "model", progress=progress)
    world = load_world(world_dir)
    settings = demo_settings(folder, device)
    photos = folder / PHOTOS
    (folder / VOCABULARY_FILE).write_text(
        "\n".join(world_tag_vocabulary()) + "\n", encoding="utf-8"
    )
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    try:
        _refuse_older_demo_index(catalog, photos, settings.data_dir)
        if not photos.is_dir():
            build_atomically(photos, lambda into: _write_photos(world, into))
        if progress:
            progress(f"indexing the captioned test split {photos}")
        options = IndexOptions(collection=DEMO_COLLECTION, model_spec=settings.model)
        report = index_paths(settings, catalog, [photos], options)
        shown = _examples(SearchEngine(settings, catalog), world, photos, examples)
    finally:
        catalog.close()
    return DemoRun(
        settings=settings,
        model_spec=settings.model,
        world_dir=world_dir,
        photos_dir=photos,
        report=report,
        examples=shown,
    )


def _examples(
    engine: SearchEngine, world: WorldSplits, photos: Path, count: int
) -> list[tuple[str, str, SearchResponse]]:
    """`count` test captions spread over the split, each searched for as a user would."""
    listing = world.test_jsonl.read_text().splitlines()
    lines = [json.loads(line) for line in listing if line.strip()]
    step = max(1, len(lines) // count)
    shown = []
    for row in lines[::step][:count]:
        response = engine.search_text(row["caption"], k=3, collection=DEMO_COLLECTION)
        shown.append((row["caption"], str(photos / Path(row["image"]).name), response))
    return shown
