"""A corpus of realistic JPEG photos for benchmarks: several megapixels each, smooth
gradients plus sensor-like noise (so JPEG sizes and decode costs resemble camera files),
and EXIF (camera make/model, orientation). Seeded and cached: built once per folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["build_photo_corpus"]

CORPUS_VERSION = 1


def _photo(rng: np.random.Generator, megapixels: float) -> Image.Image:
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5) // 16 * 16
    height = int(width * 3 / 4) // 16 * 16
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(0, 255, 3)
        freq = rng.uniform(1, 6)
        base = a * (1 - y) + b * x + c * 0.3 * np.sin(freq * np.pi * (x + y))
        channels.append(base)
    pixels = np.stack(channels, axis=-1)
    pixels += rng.normal(0, 6, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def build_photo_corpus(
    folder: Path, count: int = 300, *, seed: int = 0, min_mp: float = 3.0, max_mp: float = 12.0
) -> list[Path]:
    """`count` JPEGs of `min_mp`..`max_mp` megapixels in `folder` (reused when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "corpus.json"
    wanted = {
        "version": CORPUS_VERSION,
        "count": count,
        "seed": seed,
        "min_mp": min_mp,
        "max_mp": max_mp,
    }
    paths = [folder / f"IMG_{i:05d}.jpg" for i in range(count)]
    if (
        manifest.exists()
        and json.loads(manifest.read_text()) == wanted
        and all(p.exists() for p in paths)
    ):
        return paths
    rng = np.random.default_rng(seed)
    for i, path in enumerate(paths):
        image = _photo(rng, float(rng.uniform(min_mp, max_mp)))
        exif = Image.Exif()
        exif[0x010F] = "pixseek-bench"  # Make
        exif[0x0110] = f"Synthetic {i % 5}"  # Model
        exif[0x0112] = [1, 6, 8, 3][i % 4]  # Orientation
        image.save(path, "JPEG", quality=90, exif=exif)
    manifest.write_text(json.dumps(wanted))
    return paths
