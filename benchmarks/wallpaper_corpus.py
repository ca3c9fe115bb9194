"""A corpus of camera-like JPEGs cut from the photos in Debian's wallpaper packages.

`benchmarks.photo_corpus` draws smooth gradients plus noise: right sizes, but not real content.
Real photos decode differently: edges, texture and fine detail leave many more non-zero DCT
coefficients, so the files are bigger and Huffman decoding (the part of a JPEG decode that
neither draft mode nor SIMD removes) costs more per pixel. Peers compared on gradients look
faster than they are on a photo library. This corpus crops and rescales the installed
wallpapers (mostly nature photography) to camera sizes, 3-12 MP in 4:3 and 3:2 with some
portrait shots, saves them at camera-like JPEG quality (88-92), and gives most of them a camera
make/model and a few a rotating EXIF orientation. Seeded and cached: a manifest in the folder
records the parameters and sources, and the corpus is rebuilt only when they change.

    python -m benchmarks.wallpaper_corpus                       # 300 photos in $TMPDIR
    python -m benchmarks.wallpaper_corpus --count 40 --out /tmp/photos

Needs the wallpaper packages (Debian/Ubuntu):
    apt-get install mate-backgrounds ukui-wallpapers plasma-workspace-wallpapers
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["build_wallpaper_corpus", "wallpaper_sources"]

CORPUS_VERSION = 3
WALLPAPER_ROOTS = (Path("/usr/share/wallpapers"), Path("/usr/share/backgrounds"))
INSTALL_HINT = "apt-get install mate-backgrounds ukui-wallpapers plasma-workspace-wallpapers"
MIN_SOURCE_PIXELS = 1_000_000  # skips the 400x250 Plasma previews (contents/screenshot.*)
CAMERAS = [
    ("Canon", "Canon EOS 80D"),
    ("NIKON CORPORATION", "NIKON D7500"),
    ("SONY", "ILCE-6400"),
    ("FUJIFILM", "X-T30"),
    ("Apple", "iPhone 12"),
    ("samsung", "SM-G991B"),
    ("Google", "Pixel 7"),
]


def wallpaper_sources(roots: tuple[Path, ...] = WALLPAPER_ROOTS) -> list[Path]:
    """Every distinct .jpg/.jpeg/.png of at least 1 MP under `roots`, sorted (symlinks resolved)."""
    found: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, _, names in os.walk(root, followlinks=True):
            for name in names:
                if name.lower().endswith((".jpg", ".jpeg", ".png")):
                    found.add(Path(dirpath, name).resolve())
    sources = []
    for path in sorted(found):
        try:
            with Image.open(path) as image:
                if image.width * image.height >= MIN_SOURCE_PIXELS:
                    sources.append(path)
        except OSError:
            continue
    if not sources:
        roots_text = ", ".join(str(r) for r in roots)
        raise FileNotFoundError(
            f"no wallpaper photos (.jpg/.jpeg/.png, >= 1 MP) under {roots_text}; "
            f"install them with: {INSTALL_HINT}"
        )
    return sources


def _camera_size(rng: np.random.Generator, megapixels: float) -> tuple[int, int]:
    ratio = 4 / 3 if rng.random() < 0.6 else 3 / 2
    width = int((megapixels * 1e6 * ratio) ** 0.5) // 16 * 16
    height = int(width / ratio) // 16 * 16
    return (height, width) if rng.random() < 0.2 else (width, height)  # some portrait shots


def _make_photo(job: tuple[int, int, str, str, float, float]) -> None:
    index, seed, source, out, min_mp, max_mp = job
    rng = np.random.default_rng([seed, index])
    width, height = _camera_size(rng, float(rng.uniform(min_mp, max_mp)))
    with Image.open(source) as opened:
        if opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info:
            # Some MATE wallpapers are translucent overlays, drawn over the desktop colour.
            colour = tuple(int(c) for c in rng.integers(30, 200, 3))
            image = Image.alpha_composite(
                Image.new("RGBA", opened.size, (*colour, 255)), opened.convert("RGBA")
            ).convert("RGB")
        else:
            image = opened.convert("RGB")
    # A random window of the target aspect, 55-100% of the largest one that fits; of a few
    # tries, the most detailed (a crop of a dark sky or a flat margin is not a photo).
    fit = min(image.width / width, image.height / height)
    best, best_detail = (0, 0, image.width, image.height), -1.0
    for _ in range(4):
        scale = fit * float(rng.uniform(0.55, 1.0))
        crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
        left = int(rng.integers(0, image.width - crop_w + 1))
        top = int(rng.integers(0, image.height - crop_h + 1))
        box = (left, top, left + crop_w, top + crop_h)
        detail = float(
            np.asarray(image.resize((64, 64), Image.Resampling.BOX, box=box), np.float32).std()
        )
        if detail > best_detail:
            best, best_detail = box, detail
        if detail >= 24:
            break
    photo = image.resize((width, height), Image.Resampling.LANCZOS, box=best)
    if rng.random() < 0.5:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Light sensor grain: upscaled wallpapers are smoother than a camera's output.
    pixels = np.asarray(photo, dtype=np.int16)
    grain = rng.normal(0, 2.0, size=(height, width, 1)).astype(np.int16)
    photo = Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    if index % 8 != 7:  # most photos say which camera took them
        make, model = CAMERAS[int(rng.integers(len(CAMERAS)))]
        exif[0x010F] = make  # Make
        exif[0x0110] = model  # Model
    if index % 10 == 3:  # a few need rotating on display
        exif[0x0112] = [6, 8, 3][(index // 10) % 3]  # Orientation
    photo.save(out, "JPEG", quality=int(rng.integers(88, 93)), exif=exif)


def build_wallpaper_corpus(
    folder: Path, count: int = 300, *, seed: int = 0, min_mp: float = 3.0, max_mp: float = 12.0
) -> list[Path]:
    """`count` camera-sized JPEGs cut from the installed wallpapers, in `folder` (reused when
    already there with the same parameters and sources)."""
    sources = wallpaper_sources()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "corpus.json"
    source_ids = [f"{p}:{p.stat().st_size}" for p in sources]
    wanted = {
        "version": CORPUS_VERSION,
        "count": count,
        "seed": seed,
        "min_mp": min_mp,
        "max_mp": max_mp,
        "sources": hashlib.sha256("\n".join(source_ids).encode()).hexdigest(),
    }
    paths = [folder / f"IMG_{i:05d}.jpg" for i in range(count)]
    if (
        manifest.exists()
        and json.loads(manifest.read_text()) == wanted
        and all(p.exists() for p in paths)
    ):
        return paths
    manifest.unlink(missing_ok=True)
    for stale in folder.glob("IMG_*.jpg"):
        stale.unlink()
    # Every source is used about equally, in a seeded order.
    order = np.random.default_rng(seed).permutation(max(count, len(sources))) % len(sources)
    jobs = [
        (i, seed, str(sources[order[i]]), str(path), min_mp, max_mp) for i, path in enumerate(paths)
    ]
    with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        list(pool.map(_make_photo, jobs, chunksize=4))
    manifest.write_text(json.dumps(wanted))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "pixseek-wallpaper-photos"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    paths = build_wallpaper_corpus(args.out, args.count, seed=args.seed)
    elapsed = time.perf_counter() - started
    megapixels, total = [], 0
    for path in paths:
        with Image.open(path) as image:
            megapixels.append(image.width * image.height / 1e6)
        total += path.stat().st_size
    print(
        f"{len(paths)} JPEGs from {len(wallpaper_sources())} wallpapers in {args.out}"
        f" ({elapsed:.0f} s)"
    )
    print(
        f"{min(megapixels):.1f}-{max(megapixels):.1f} MP (median {np.median(megapixels):.1f}), "
        f"{total / 2**20:.0f} MiB in all, {total / len(paths) / 2**20:.2f} MiB each on average"
    )


if __name__ == "__main__":
    main()
