"""Retrieval quality and query latency on the synthetic world, with the tiny CLIP trained on it.

Prints text->image Recall@K of (a) exact search (brute force over all vectors, `IndexFlatIP`)
and (b) pixseek's index as built by `pixseek index`, through `SearchEngine`, plus per-query
latency split into encode / ANN / metadata (the engine's own timings).

    python -m benchmarks.retrieval_quality [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import faiss
import numpy as np

from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from indexer.quality.tiny_clip_training import ensure_world_and_model
from search.catalog import open_catalog
from search.images.paths import encode_path, path_key
from search.models import load_encoder
from search.query.engine import SearchEngine
from search.settings import Settings
from search.storage.collection_store import CollectionStore

KS = (1, 5, 10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "pixseek-world-cache"
    )
    args = parser.parse_args()
    world_dir, model_dir = ensure_world_and_model(args.cache, progress=print)
    spec = f"local-dir:{model_dir}"
    rows = [
        json.loads(line)
        for line in (world_dir / "test.jsonl").read_text().splitlines()
        if line.strip()
    ]
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="pixseek-quality-")), model=spec, device="cpu"
    )
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    index_paths(settings, catalog, [world_dir / "test"], IndexOptions(collection="world"))
    info = catalog.require_collection("world")
    states = catalog.image_states(info.id)
    target = [states[path_key(encode_path((world_dir / r["image"]).resolve()))].id for r in rows]
    engine = SearchEngine(settings, catalog)

    ids, vectors = CollectionStore(settings, catalog, info).vectors.latest()
    exact = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    exact.add_with_ids(vectors, ids)
    encoder = load_encoder(spec, "cpu")
    texts = encoder.encode_texts([r["caption"] for r in rows])
    _, exact_ids = exact.search(texts, max(KS))

    engine_hits, timings = [], {"encode_ms": [], "ann_ms": [], "metadata_ms": [], "total_ms": []}
    for row in rows:
        response = engine.search_text(row["caption"], k=max(KS), collection="world")
        engine_hits.append([hit.id for hit in response.results])
        for name in timings:
            timings[name].append(response.timings.get(name, 0.0))
    catalog.close()

    def recall(found: list[list[int]]) -> list[float]:
        return [
            float(np.mean([t in f[:k] for t, f in zip(target, found, strict=True)])) for k in KS
        ]

    print(
        f"\n{len(rows)} text queries over {len(ids)} held-out images;"
        f" index {engine.index_for(info).factory}"
    )
    print("search | " + " | ".join(f"R@{k}" for k in KS))
    print("--- | " + " | ".join("---" for _ in KS))
    print("exact (flat) | " + " | ".join(f"{v:.4f}" for v in recall(exact_ids.tolist())))
    print("pixseek index | " + " | ".join(f"{v:.4f}" for v in recall(engine_hits)))
    print("\nper-query latency, ms | median | p95")
    print("--- | --- | ---")
    for name, values in timings.items():
        ordered = sorted(values)
        median, p95 = statistics.median(ordered), ordered[int(0.95 * len(ordered))]
        print(f"{name.removesuffix('_ms')} | {median:.2f} | {p95:.2f}")


if __name__ == "__main__":
    main()
