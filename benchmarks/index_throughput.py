"""Where is the indexing limit? Prints decode-only, model-only and end-to-end `pixseek index`
images/s for each encoder, on a corpus of realistic multi-megapixel JPEGs.

    python -m benchmarks.index_throughput                      # 300 photos, ViT-B-32 + tiny-test
    python -m benchmarks.index_throughput --count 40 --models tiny-test
    python -m benchmarks.index_throughput --models ViT-B-32-256/random --device cuda \
        --jpeg-decode workers,device                           # Pillow workers vs nvJPEG

Random weights (`MODEL/random`) cost exactly what real weights cost, so the figures hold for
the real models. End to end = scan + decode workers + encoder + vector store + catalog + FAISS,
with the encoder already loaded (its one-off load time is reported separately). "device
decode" is `torchvision.io.decode_jpeg` on the encoder's device plus orientation, resize and
crop there (`indexer.decode.device_jpeg`): on a CPU that is one core decoding at full size.

"ceiling" is the best end-to-end rate the two stages allow. Stages that take turns add their
times: 1 / (1/model + 1/decode). That is the case on a CPU, where worker decoding and the model
share the cores (decode = draft/core x cores), and for device decoding anywhere, which runs in
the main process between encoder batches (decode = device decode). Pillow workers feeding a GPU
overlap with it: min(model, draft/core x cores). "jpeg decode" is where JPEGs were decoded
(`auto` resolved). End to end is the median of `--repeat` runs.

The last table is the row a new user lives: "defaults, cold caches" runs `pixseek index` as a
fresh process with default settings (tags on) on a fresh data directory and an empty
per-machine cache, start-up and model load included (`benchmarks.first_index`), beside the
model-only rate: the first-run regression of label embeddings computed before any image
(9 minutes for 300 photos) showed up only there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.first_index import time_first_index
from benchmarks.photo_corpus import build_photo_corpus
from indexer.decode.device_jpeg import DeviceJpegDecoder
from indexer.decode.worker import undecoded_jpeg
from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from indexer.records import DecodedBatch
from search.catalog import open_catalog
from search.images.decode import decode_file
from search.models import load_encoder
from search.settings import Settings


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def decode_rate(paths: list[Path], transform, draft_size: int | None) -> float:  # type: ignore[no-untyped-def]
    """Images/s of Pillow decode + resize/crop on one core."""
    started = time.perf_counter()
    for path in paths:
        transform(decode_file(path, draft_size=draft_size).image)
    return _rate(len(paths), time.perf_counter() - started)


def device_decode_rate(paths: list[Path], encoder, batch_size: int) -> float:  # type: ignore[no-untyped-def]
    """Images/s of torchvision decode_jpeg + orientation + resize/crop on the encoder's device,
    in batches as indexing does (file reading and header parsing not counted: workers do them)."""
    candidates = (
        undecoded_jpeg(image_id, path.read_bytes(), max_pixels=10**9)
        for image_id, path in enumerate(paths)
    )
    items = [item for item in candidates if item is not None]
    if not items:
        return float("nan")
    decoder = DeviceJpegDecoder(encoder.pixel_transform, encoder.device, encoder.image_size)
    decoder(DecodedBatch(pixels=None, ok=[], failed=[], jpegs=[items[0]]))  # warm-up (nvJPEG init)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches:
        decoder(DecodedBatch(pixels=None, ok=[], failed=[], jpegs=batch))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    if decoder.fallbacks:  # those were timed on Pillow, not the device
        print(
            f"warning: the device refused {decoder.fallbacks} of {len(items) + 1} JPEGs"
            " (Pillow decoded them)"
        )
    return _rate(len(items), time.perf_counter() - started)


def model_rate(encoder, batch_size: int, batches: int) -> float:  # type: ignore[no-untyped-def]
    """Images/s of the encoder alone on uint8 pixels in host memory.

    The copy to the device is counted.
    """
    pixels = torch.randint(
        0, 256, (batch_size, 3, encoder.image_size, encoder.image_size), dtype=torch.uint8
    )
    encoder.encode_pixels(pixels)  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        encoder.encode_pixels(pixels)
    return _rate(batch_size * batches, time.perf_counter() - started)


def end_to_end_rate(
    paths_root: Path, spec: str, device: str, batch_size: int, workers: int | None, jpeg_decode: str
) -> tuple[float, int, str]:
    data_dir = Path(tempfile.mkdtemp(prefix="pixseek-bench-"))
    try:
        # tags=False: label embeddings are a one-off per model (cached on disk), not indexing cost
        settings = Settings(
            data_dir=data_dir,
            model=spec,
            device=device,
            batch_size=batch_size,
            workers=workers,
            tags=False,
            jpeg_decode=jpeg_decode,
        )
        catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
        report = index_paths(settings, catalog, [paths_root], IndexOptions(collection="bench"))
        catalog.close()
        return report.rate, report.indexed, report.jpeg_decode or jpeg_decode
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", type=Path, default=Path(tempfile.gettempdir()) / "pixseek-bench-photos"
    )
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--models", default="ViT-B-32/random,tiny-test")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=None, help="decode workers (default: one per core)"
    )
    parser.add_argument(
        "--decode-sample", type=int, default=40, help="photos timed for decode-only rates"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="end-to-end runs per row (the median is shown)"
    )
    parser.add_argument(
        "--jpeg-decode",
        default="auto",
        help="comma-separated PIXSEEK_JPEG_DECODE values, one end-to-end run each",
    )
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the 'defaults, cold caches' row"
    )
    return parser.parse_args()


def _model_rows(
    spec: str, args: argparse.Namespace, sample: list[Path], cores: int
) -> tuple[list[tuple], float]:
    """The table rows of one encoder (one per `--jpeg-decode` choice) and its model-only rate."""
    t0 = time.perf_counter()
    encoder = load_encoder(spec, args.device)
    load_s = time.perf_counter() - t0
    full = decode_rate(sample, encoder.pixel_transform, None)
    drafted = decode_rate(sample, encoder.pixel_transform, encoder.image_size)
    on_device = device_decode_rate(sample, encoder, args.batch_size)
    model = model_rate(encoder, args.batch_size, batches=max(4, 256 // args.batch_size))
    rows = []
    for choice in [c.strip() for c in args.jpeg_decode.split(",") if c.strip()]:
        runs = [
            end_to_end_rate(args.corpus, spec, args.device, args.batch_size, args.workers, choice)
            for _ in range(max(1, args.repeat))
        ]
        e2e, indexed, where = statistics.median(run[0] for run in runs), runs[0][1], runs[0][2]
        if where == "device":
            ceiling = 1 / (1 / model + 1 / on_device)
        elif encoder.device == "cpu":
            ceiling = 1 / (1 / model + 1 / (drafted * cores))
        else:
            ceiling = min(model, drafted * cores)
        rows.append(
            (
                spec,
                encoder.image_size,
                load_s,
                full,
                drafted,
                drafted * cores,
                on_device,
                model,
                where,
                ceiling,
                e2e,
                indexed,
            )
        )
    return rows, model


def _print_rates(rows: list[tuple], cores: int, args: argparse.Namespace) -> None:
    header = (
        "model",
        "input",
        "load s",
        "decode full/core",
        "decode draft/core",
        f"decode draft x{cores}",
        "device decode",
        "model only",
        "jpeg decode",
        "ceiling",
        "end to end",
        "e2e/model",
        "e2e/ceiling",
    )
    print(
        "\nimages per second ("
        + ("CUDA" if torch.cuda.is_available() and args.device != "cpu" else "CPU")
        + f", {cores} cores, batch {args.batch_size})"
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for (
        spec,
        size,
        load_s,
        full,
        drafted,
        drafted_all,
        on_device,
        model,
        choice,
        ceiling,
        e2e,
        indexed,
    ) in rows:
        print(
            f"{spec} | {size} | {load_s:.1f} | {full:.1f} | {drafted:.1f} | {drafted_all:.1f} | "
            f"{on_device:.1f} | {model:.1f} | {choice} | {ceiling:.1f} | "
            f"{e2e:.1f} ({indexed} imgs) | {e2e / model:.0%} | {e2e / ceiling:.0%}"
        )


def _print_cold(cold_rows: list[tuple]) -> None:
    if not cold_rows:
        return
    print(
        "\ndefaults, cold caches: a fresh `pixseek index` process, tags on,"
        " start-up and model load included"
    )
    print(
        "model | wall s | images/s | tagged after embedding | peak RSS MB"
        " | e2e incl. start/model only"
    )
    print("--- | --- | --- | --- | --- | ---")
    for spec, cold, model in cold_rows:
        rate = cold.report["indexed"] / cold.wall_s
        print(
            f"{spec} | {cold.wall_s:.1f} | {rate:.1f} | {cold.report.get('tagged', 0)} | "
            f"{cold.peak_rss_mb:.0f} | {rate / model:.0%}"
        )


def main() -> None:
    args = _parse_args()
    started = time.perf_counter()
    paths = build_photo_corpus(args.corpus, args.count)
    print(
        f"corpus: {len(paths)} JPEGs (3-12 MP) in {args.corpus}"
        f" ({time.perf_counter() - started:.0f} s)"
    )
    cores = os.cpu_count() or 1
    sample = paths[: args.decode_sample]
    rows = []
    cold_rows = []
    for spec in [s.strip() for s in args.models.split(",") if s.strip()]:
        spec_rows, model = _model_rows(spec, args, sample, cores)
        rows.extend(spec_rows)
        if not args.no_cold:
            workdir = Path(tempfile.mkdtemp(prefix="pixseek-cold-"))
            try:
                cold = time_first_index(args.corpus, spec, tags=True, workdir=workdir / "run")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            cold_rows.append((spec, cold, model))
    _print_rates(rows, cores, args)
    _print_cold(cold_rows)


if __name__ == "__main__":
    main()
