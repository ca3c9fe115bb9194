"""Sidecars: `x.txt` (a caption) and `x.json` (metadata, and a caption from its "caption" or
"text" field) beside `x.jpg` in a folder, or in the same sample of a shard, become the item's
initial caption and metadata. They never fail an image: unreadable, invalid or oversized
sidecars just give nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from indexer.records import FoundFile, UnchangedCheck
from search.images.paths import encode_path

__all__ = [
    "CAPTION_MAX_CHARS",
    "CAPTION_READ_BYTES",
    "METADATA_MAX_BYTES",
    "found_file",
    "parse_sidecars",
    "sidecar_suffix",
    "sidecars_beside",
]

CAPTION_MAX_CHARS = 2000
METADATA_MAX_BYTES = 64 * 1024  # a larger .json sidecar is ignored (not read)
CAPTION_READ_BYTES = 64 * 1024  # enough UTF-8 for CAPTION_MAX_CHARS after stripping
_SIDECAR_SUFFIXES = ("txt", "json")

Sidecars = dict[str, str]
"""The sidecar files of one image: {"txt": path, "json": path}, either optional."""


def _clean_text(text: str) -> str:
    return text.replace("\x00", "")  # PostgreSQL text cannot hold NUL


def _clean_json(value: Any) -> Any:
    """`value` with NUL removed from strings and keys (PostgreSQL JSON refuses them)."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def _caption_from(text: str | None) -> str | None:
    if text is None:
        return None
    caption = _clean_text(text).strip()[:CAPTION_MAX_CHARS].strip()
    return caption or None


def _parse_json_object(data: bytes) -> dict[str, Any] | None:
    """The JSON object in `data`, or None when it is not one (NaN/Infinity become null)."""
    try:
        value = json.loads(data.decode("utf-8", "replace"), parse_constant=lambda _name: None)
        return _clean_json(value) if isinstance(value, dict) else None
    except (ValueError, RecursionError):
        return None


def parse_sidecars(
    txt: bytes | None, json_bytes: bytes | None
) -> tuple[str | None, dict[str, Any] | None]:
    """(caption, metadata) from the bytes of a `.txt` and a `.json` sidecar (either may be None).

    The `.txt` wins as caption; else the JSON's "caption" or "text" string field. Invalid or
    oversized JSON (over METADATA_MAX_BYTES) gives no metadata; it never fails the image."""
    caption = None
    if txt is not None:
        caption = _caption_from(txt[:CAPTION_READ_BYTES].decode("utf-8", "replace"))
    metadata = None
    if json_bytes is not None and len(json_bytes) <= METADATA_MAX_BYTES:
        metadata = _parse_json_object(json_bytes)
    if caption is None and metadata is not None:
        for name in ("caption", "text"):
            if isinstance(metadata.get(name), str) and (caption := _caption_from(metadata[name])):
                break
    return caption, metadata


def _read_small_file(path: str, limit: int) -> bytes | None:
    """Up to `limit` + 1 bytes of a regular file, or None (missing, unreadable, FIFO, ...)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _file_sidecars(sidecars: Sidecars) -> tuple[str | None, dict[str, Any] | None]:
    """(caption, metadata) from sidecar files."""
    txt = _read_small_file(sidecars["txt"], CAPTION_READ_BYTES) if "txt" in sidecars else None
    json_bytes = None
    if "json" in sidecars:
        json_bytes = _read_small_file(sidecars["json"], METADATA_MAX_BYTES)
    return parse_sidecars(txt, json_bytes)


def sidecar_suffix(name: str) -> str | None:
    """ "txt" or "json" for a sidecar file name (any case), else None."""
    suffix = os.path.splitext(name)[1][1:].lower()
    return suffix if suffix in _SIDECAR_SUFFIXES else None


def sidecars_beside(path: Path) -> Sidecars:
    """Sidecar files of one image named on its own (`x.jpg` -> `x.txt`, `x.JSON`, ...)."""
    found: Sidecars = {}
    stem = os.path.join(path.parent, os.path.splitext(path.name)[0])
    for suffix in _SIDECAR_SUFFIXES:
        for spelled in (suffix, suffix.upper()):
            if os.path.isfile(f"{stem}.{spelled}"):
                found[suffix] = f"{stem}.{spelled}"
                break
    return found


def found_file(
    path: Path, size: int, mtime: float, sidecars: Sidecars, is_unchanged: UnchangedCheck | None
) -> FoundFile:
    """The scan's record of a plain image file, with the caption and metadata of its sidecars
    unless the catalog holds the file unchanged (then they are not read)."""
    if not sidecars or (is_unchanged is not None and is_unchanged(encode_path(path), size, mtime)):
        return FoundFile(path, size, mtime)
    caption, metadata = _file_sidecars(sidecars)
    return FoundFile(path, size, mtime, caption=caption, metadata=metadata)
