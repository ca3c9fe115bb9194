"""`pixseek eval`: retrieval quality measured through the product's own path.

The dataset's images are indexed with `index_paths` into a collection of their own (in a
separate data directory, so evaluations never touch a user's catalog and re-runs are
incremental), and every caption is sent through `SearchEngine.search_text`, exactly as a user's
query would be. Recall follows the CLIP / BLIP-2 papers: a text query is correct at K if its
image is in the top K; an image query is correct at K if any of its captions is in the top K.
Image->text ranks the dataset's captions with the same encoder against the image vectors stored
in the collection's index (the product has no text gallery to search).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from indexer.quality.eval_datasets import EvalDataset
from search.catalog import Catalog, open_catalog
from search.errors import InputError
from search.images.paths import encode_path, path_key
from search.models import load_encoder
from search.models.specs import parse_encoder_spec
from search.query.engine import SearchEngine
from search.settings import Settings

__all__ = ["EvalResult", "evaluate_retrieval", "recall_at"]

QueryFn = Callable[[SearchEngine, str, int, str], list[int]]


@dataclass
class EvalResult:
    """Recall of one search mode over a dataset (`pixseek eval` prints one row per mode)."""

    mode: str
    queries: int
    t2i: dict[str, float]
    i2t: dict[str, float]
    ms_per_query: float
    failed_images: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "t2i": self.t2i,
            "i2t": self.i2t,
            "queries": self.queries,
            "mode": self.mode,
            "ms_per_query": round(self.ms_per_query, 3),
        }


def recall_at(ranks: Sequence[int], ks: Sequence[int]) -> dict[str, float]:
    """Fraction of queries whose first correct answer has 0-based rank < K (missing = -1)."""
    found = np.asarray(ranks)
    return {f"R@{k}": float(np.mean((found >= 0) & (found < k))) if len(found) else 0.0 for k in ks}


def _query(**options: Any) -> QueryFn:
    def run(engine: SearchEngine, caption: str, k: int, collection: str) -> list[int]:
        return [
            hit.id
            for hit in engine.search_text(caption, k=k, collection=collection, **options).results
        ]

    return run


MODES: dict[str, QueryFn] = {
    "vector": _query(mode="vector"),
    "text": _query(mode="text"),
    "hybrid": _query(mode="hybrid"),
    "rerank": _query(mode="vector", rerank=True),
    "hybrid+rerank": _query(mode="hybrid", rerank=True),
}


def _collection_name(dataset: EvalDataset, model_id: str) -> str:
    digest = hashlib.blake2b(
        f"{dataset.name}|{len(dataset.images)}|{model_id}".encode(), digest_size=6
    )
    return f"eval-{digest.hexdigest()}"


def _image_to_text_ranks(
    engine: SearchEngine, dataset: EvalDataset, image_ids: list[int], collection: str, max_k: int
) -> list[int]:
    info = engine.catalog.require_collection(collection)
    index = engine.index_for(info)
    encoder = load_encoder(info.model_spec, engine.settings.device, engine.settings.cpu_precision)
    texts = np.concatenate(
        [
            encoder.encode_texts(dataset.captions[i : i + 256])
            for i in range(0, len(dataset.captions), 256)
        ]
    )
    gallery = faiss.IndexFlatIP(texts.shape[1])
    gallery.add(texts.astype(np.float32))
    images = np.stack([index.reconstruct(image_id) for image_id in image_ids]).astype(np.float32)
    _, found = gallery.search(images, min(max_k, len(dataset.captions)))
    owners = np.asarray(dataset.caption_image)
    ranks = []
    for image_position, row in enumerate(found):
        hits = np.nonzero(owners[row] == image_position)[0]
        ranks.append(int(hits[0]) if hits.size else -1)
    return ranks


def _index_dataset(
    settings: Settings,
    catalog: Catalog,
    dataset: EvalDataset,
    model_spec: str,
    progress: Callable[[str], None] | None,
) -> tuple[str, list[int]]:
    """Index the dataset's images into a collection of their own (incrementally: a re-run
    embeds nothing); returns the collection's name and the catalog id of each image."""
    collection = _collection_name(dataset, parse_encoder_spec(model_spec).model_id)
    listing = settings.data_dir / f"{collection}.txt"
    listing.write_text("".join(f"{p}\n" for p in dataset.images), encoding="utf-8")
    if progress:
        progress(f"indexing {len(dataset.images)} images into {collection} ({settings.data_dir})")
    options = IndexOptions(
        collection=collection, model_spec=model_spec, from_list=listing, prune=False
    )
    index_paths(settings, catalog, [], options)
    rows = catalog.image_states(catalog.require_collection(collection).id)
    image_ids, failed = [], []
    for image in dataset.images:
        row = rows.get(path_key(encode_path(image)))
        if row is None or row.status != "embedded":
            failed.append(str(image))
            image_ids.append(-1)
        else:
            image_ids.append(row.id)
    if failed:
        raise InputError(f"{len(failed)} dataset images could not be indexed, e.g. {failed[0]}.")
    return collection, image_ids


def _text_to_image_ranks(
    engine: SearchEngine,
    dataset: EvalDataset,
    image_ids: list[int],
    collection: str,
    query: QueryFn,
    max_k: int,
) -> list[int]:
    """For each caption, the rank of its image among the results (-1: not in the top max_k)."""
    ranks = []
    for caption, owner in zip(dataset.captions, dataset.caption_image, strict=True):
        found = query(engine, caption, max_k, collection)
        ranks.append(found.index(image_ids[owner]) if image_ids[owner] in found else -1)
    return ranks


def evaluate_retrieval(
    dataset: EvalDataset,
    *,
    model_spec: str,
    data_dir: Path,
    ks: Sequence[int] = (1, 5, 10),
    modes: Sequence[str] = ("vector",),
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> list[EvalResult]:
    """Index `dataset` with `model_spec` and measure recall for each search mode."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise InputError(f"Unknown eval mode(s) {unknown}; available: {', '.join(MODES)}.")
    max_k = max(ks)
    settings = Settings(data_dir=data_dir, model=model_spec, device=device, database_url=None)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    try:
        collection, image_ids = _index_dataset(settings, catalog, dataset, model_spec, progress)
        engine = SearchEngine(settings, catalog)
        i2t = recall_at(_image_to_text_ranks(engine, dataset, image_ids, collection, max_k), ks)
        results = []
        for mode in modes:
            if progress:
                progress(f"{mode}: {len(dataset.captions)} text queries")
            started = time.perf_counter()
            ranks = _text_to_image_ranks(engine, dataset, image_ids, collection, MODES[mode], max_k)
            elapsed = time.perf_counter() - started
            results.append(
                EvalResult(
                    mode=mode,
                    queries=len(dataset.captions),
                    t2i=recall_at(ranks, ks),
                    i2t=i2t,
                    ms_per_query=1000 * elapsed / max(1, len(dataset.captions)),
                )
            )
        return results
    finally:
        catalog.close()
