"""`pixseek demo`: see pixseek work with no model weights at all.

Builds the synthetic world and trains the tiny CLIP on its train split (about two minutes on a
laptop CPU, once), indexes the held-out test split through the normal indexing path, and runs a
few example queries. Layout under DIR: `world/` (with `test.jsonl` in the eval format),
`model/` (load it anywhere with `--model local-dir:DIR/model`) and `data/` (the demo's own
catalog, vectors and index).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from indexer.quality.synthetic_world import WorldSplits, load_world
from indexer.quality.tiny_clip_training import build_world_and_model
from indexer.report import IndexReport
from search.catalog import open_catalog
from search.query.engine import SearchEngine
from search.schemas import SearchResponse
from search.settings import Settings

__all__ = ["DemoRun", "run_demo"]

DEMO_COLLECTION = "demo"


@dataclass
class DemoRun:
    """What `pixseek demo` did and found, for the CLI to show."""

    settings: Settings
    model_spec: str
    world_dir: Path
    report: IndexReport
    examples: list[tuple[str, str, SearchResponse]]  # (query, expected image path, response)


def demo_settings(folder: Path, device: str = "auto") -> Settings:
    """The demo's own data directory and model under `folder`: it never touches a user's."""
    return Settings(
        data_dir=folder / "data",
        model=f"local-dir:{folder / 'model'}",
        device=device,
        database_url=None,
    )


def run_demo(
    folder: Path,
    *,
    device: str = "auto",
    examples: int = 4,
    progress: Callable[[str], None] | None = None,
) -> DemoRun:
    """Build the world and model under `folder` (once), index the test split, and search for a
    few of its captions."""
    folder = folder.resolve()
    world_dir, _ = build_world_and_model(folder / "world", folder / "model", progress=progress)
    world = load_world(world_dir)
    settings = demo_settings(folder, device)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    try:
        if progress:
            progress(f"indexing the test split {world_dir / 'test'}")
        options = IndexOptions(collection=DEMO_COLLECTION, model_spec=settings.model)
        report = index_paths(settings, catalog, [world_dir / "test"], options)
        shown = _examples(SearchEngine(settings, catalog), world, examples)
    finally:
        catalog.close()
    return DemoRun(
        settings=settings,
        model_spec=settings.model,
        world_dir=world_dir,
        report=report,
        examples=shown,
    )


def _examples(
    engine: SearchEngine, world: WorldSplits, count: int
) -> list[tuple[str, str, SearchResponse]]:
    """`count` test captions spread over the split, each searched for as a user would."""
    listing = world.test_jsonl.read_text().splitlines()
    lines = [json.loads(line) for line in listing if line.strip()]
    step = max(1, len(lines) // count)
    shown = []
    for row in lines[::step][:count]:
        response = engine.search_text(row["caption"], k=3, collection=DEMO_COLLECTION)
        shown.append((row["caption"], str((world.root / row["image"]).resolve()), response))
    return shown
