"""Synthetic photos for the spine tests: distinct coloured shapes, one corrupt JPEG and one
text file with an image extension. Seeded, so every run draws the same pictures."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "cyan", "pink"]


@dataclass(frozen=True)
class PhotoSet:
    root: Path
    good: list[Path]
    corrupt: Path
    not_an_image: Path


def make_photo_set(root: Path, count: int = 24, seed: int = 7) -> PhotoSet:
    rng = random.Random(seed)
    (root / "holiday" / "day2").mkdir(parents=True, exist_ok=True)
    (root / ".hidden").mkdir(exist_ok=True)
    good = []
    for i in range(count):
        background, fill = rng.sample(COLOURS, 2)
        image = Image.new("RGB", (rng.randint(120, 400), rng.randint(120, 400)), background)
        draw = ImageDraw.Draw(image)
        w, h = image.size
        box = (
            rng.randint(0, w // 3),
            rng.randint(0, h // 3),
            rng.randint(w // 2, w),
            rng.randint(h // 2, h),
        )
        if i % 3 == 0:
            draw.ellipse(box, fill=fill)
        elif i % 3 == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon(
                [(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=fill
            )
        for _ in range(rng.randint(0, 6)):
            x, y = rng.randint(0, w), rng.randint(0, h)
            draw.line(
                (x, y, rng.randint(0, w), rng.randint(0, h)), fill=rng.choice(COLOURS), width=3
            )
        folder = (
            root if i % 3 == 0 else (root / "holiday" if i % 3 == 1 else root / "holiday" / "day2")
        )
        suffix = [".jpg", ".PNG", ".webp", ".JPEG"][i % 4]
        path = folder / f"photo_{i:03d}{suffix}"
        image.save(path, quality=92) if suffix.lower() in (".jpg", ".jpeg") else image.save(path)
        good.append(path)
    Image.new("RGB", (50, 50), "red").save(root / ".hidden" / "secret.jpg")  # hidden: never indexed
    (root / "notes.txt").write_text("not an image and not an image name")
    corrupt = root / "broken.jpg"
    full = root / "holiday" / "photo_001.PNG"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + full.read_bytes()[:200])
    not_an_image = root / "holiday" / "readme.png"
    not_an_image.write_text("<html>this is not a picture</html>")
    return PhotoSet(root=root, good=sorted(good), corrupt=corrupt, not_an_image=not_an_image)
