"""Reading retrieval benchmarks: a JSONL of `{"image", "caption"}` lines (several lines may share
an image; paths relative to the file), or a Karpathy-style split file (`dataset_flickr30k.json`,
`dataset_coco.json`) with its image folder. Both become one `EvalDataset`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from search.errors import InputError

__all__ = ["EvalDataset", "load_eval_dataset"]


@dataclass(frozen=True)
class EvalDataset:
    """Image/caption pairs for a retrieval benchmark, whatever file format they came in."""

    name: str
    images: list[Path]  # absolute paths, unique
    captions: list[str]
    caption_image: list[int]  # caption index -> index into `images`


def _from_pairs(name: str, pairs: list[tuple[Path, str]]) -> EvalDataset:
    position: dict[Path, int] = {}
    images: list[Path] = []
    captions: list[str] = []
    owners: list[int] = []
    for image, caption in pairs:
        if image not in position:
            position[image] = len(images)
            images.append(image)
        captions.append(caption)
        owners.append(position[image])
    if not captions:
        raise InputError(f"{name}: no (image, caption) pairs found.")
    return EvalDataset(name=name, images=images, captions=captions, caption_image=owners)


def _load_jsonl(path: Path) -> EvalDataset:
    pairs: list[tuple[Path, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image, caption = row["image"], row["caption"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(
                f'{path}:{number}: expected {{"image": PATH, "caption": TEXT}} ({exc}).'
            ) from exc
        pairs.append(((path.parent / image).resolve(), str(caption)))
    return _from_pairs(path.name, pairs)


def _load_karpathy(path: Path, images_dir: Path | None, split: str) -> EvalDataset:
    if images_dir is None:
        raise InputError(
            f"{path.name} is a Karpathy-style split file: give its image folder with --images DIR."
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    pairs: list[tuple[Path, str]] = []
    for entry in data["images"]:
        if entry.get("split") != split:
            continue
        relative = Path(entry.get("filepath", "")) / entry["filename"]
        image = (
            (images_dir / relative)
            if (images_dir / relative).exists()
            else images_dir / entry["filename"]
        )
        pairs.extend(
            (image.resolve(), sentence["raw"].strip()) for sentence in entry.get("sentences", [])
        )
    if not pairs:
        raise InputError(f"{path.name} has no images in split {split!r}.")
    return _from_pairs(f"{path.name}:{split}", pairs)


def load_eval_dataset(
    path: Path, *, images_dir: Path | None = None, split: str = "test"
) -> EvalDataset:
    """Load DATASET for `pixseek eval`; raises `InputError` naming the file and what is wrong."""
    if not path.is_file():
        raise InputError(
            f"{path} does not exist. Give a .jsonl of image/caption pairs or a Karpathy split file."
        )
    if path.suffix == ".jsonl":
        dataset = _load_jsonl(path)
    else:
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is neither JSONL nor JSON: {exc}.") from exc
        if not isinstance(head, dict) or "images" not in head:
            raise InputError(f"{path}: expected a Karpathy-style file with an 'images' list.")
        dataset = _load_karpathy(path, images_dir, split)
    missing = [str(p) for p in dataset.images if not p.exists()]
    if missing:
        raise InputError(f"{len(missing)} images of {path.name} are missing, e.g. {missing[0]}.")
    return dataset
