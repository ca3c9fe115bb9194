"""The CUDA path against its CPU twin: index the same photos on both devices and compare the
stored vectors (fp16 on CUDA vs fp32 on CPU) and the top hits of image queries, with JPEGs
decoded by the CPU workers and by nvJPEG on the GPU (`--jpeg-decode workers|device`).

    python -m benchmarks.cuda_parity --models tiny-test,ViT-B-32/random
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.photo_corpus import build_photo_corpus
from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from search.catalog import open_catalog
from search.query.engine import SearchEngine
from search.settings import Settings
from search.storage.collection_store import CollectionStore


def _index(
    corpus: Path, spec: str, device: str, data_dir: Path, jpeg_decode: str = "workers"
) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    settings = Settings(
        data_dir=data_dir, model=spec, device=device, batch_size=16, jpeg_decode=jpeg_decode
    )
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    report = index_paths(settings, catalog, [corpus], IndexOptions(collection="parity"))
    info = catalog.require_collection("parity")
    store = CollectionStore(settings, catalog, info)
    ids, vectors = store.vectors.latest()
    records = catalog.get_images(ids.tolist())
    by_path = {records[i].path: v for i, v in zip(ids.tolist(), vectors, strict=True)}
    engine = SearchEngine(settings, catalog)
    tops = [
        [r.path for r in engine.search_image_bytes(p.read_bytes(), k=3).results]
        for p in sorted(corpus.glob("*.jpg"))[:10]
    ]
    catalog.close()
    assert report.failed == 0
    return by_path, tops


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="tiny-test,ViT-B-32/random")
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: nothing to compare")
    work = Path(tempfile.mkdtemp(prefix="pixseek-parity-"))
    corpus = work / "photos"
    build_photo_corpus(corpus, args.count, min_mp=1.0, max_mp=4.0)
    print(f"{torch.cuda.get_device_name(0)}; {args.count} photos")
    print("model | JPEGs decoded on | min cosine cpu/cuda | mean cosine | top-3 image hits equal")
    print("--- | --- | --- | --- | ---")
    for spec in args.models.split(","):
        name = spec.replace("/", "_")
        cpu, cpu_tops = _index(corpus, spec, "cpu", work / f"cpu-{name}")
        for jpeg_decode in ("workers", "device"):
            gpu, gpu_tops = _index(
                corpus, spec, "cuda", work / f"cuda-{jpeg_decode}-{name}", jpeg_decode
            )
            cosines = np.array(
                [
                    float(cpu[p] @ gpu[p]) / (np.linalg.norm(cpu[p]) * np.linalg.norm(gpu[p]))
                    for p in cpu
                ]
            )
            same = sum(a == b for a, b in zip(cpu_tops, gpu_tops, strict=True))
            where = "CPU workers" if jpeg_decode == "workers" else "GPU (nvJPEG)"
            print(
                f"{spec} | {where} | {cosines.min():.5f} | {cosines.mean():.5f}"
                f" | {same}/{len(cpu_tops)}"
            )


if __name__ == "__main__":
    main()
