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

from indexer.pipeline import IndexReport, index_paths
from indexer.quality.tiny_clip_training import build_world_and_model
from search.catalog import open_catalog
from search.query.engine import SearchEngine
from search.schemas import SearchResponse
from search.settings import Settings

__all__ = ["DemoRun", "run_demo"]

DEMO_COLLECTION = "demo"


@dataclass
class DemoRun:
    settings: Settings
    model_spec: str
    world_dir: Path
    report: IndexReport
    examples: list[tuple[str, str, SearchResponse]]  # (query, expected image path, response)


def demo_settings(folder: Path, device: str = "auto") -> Settings:
    return Settings(data_dir=folder / "data", model=f"local-dir:{folder / 'model'}", device=device, database_url=None)


def run_demo(folder: Path, *, device: str = "auto", examples: int = 4,
             progress: Callable[[str], None] | None = None) -> DemoRun:
    folder = folder.resolve()
    world_dir, model_dir = build_world_and_model(folder / "world", folder / "model", progress=progress)
    settings = demo_settings(folder, device)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    try:
        if progress:
            progress(f"indexing the test split {world_dir / 'test'}")
        report = index_paths(settings, catalog, [world_dir / "test"], collection=DEMO_COLLECTION,
                             model_spec=settings.model)
        engine = SearchEngine(settings, catalog)
        lines = [json.loads(line) for line in (world_dir / "test.jsonl").read_text().splitlines() if line.strip()]
        step = max(1, len(lines) // examples)
        shown = []
        for row in lines[::step][:examples]:
            response = engine.search_text(row["caption"], k=3, collection=DEMO_COLLECTION)
            shown.append((row["caption"], str((world_dir / row["image"]).resolve()), response))
    finally:
        catalog.close()
    return DemoRun(settings=settings, model_spec=settings.model, world_dir=world_dir, report=report, examples=shown)
