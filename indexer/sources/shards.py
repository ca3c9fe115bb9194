"""WebDataset tar shards: a PATH that names an uncompressed `.tar` file, or a brace pattern such
as `data/shards-{000..009}.tar` (`indexer.sources.inputs`), is read as a WebDataset shard.

Members are grouped into samples by the WebDataset convention (key = member path up to the
first dot of the basename, webdataset's `base_plus_ext`); each sample with an image member is
one item, stored as `<shard>#<member>` (`search.images.source`). A scan reads the tar headers
and the small sidecar members only, never image data, so re-scanning a large unchanged dataset
costs one pass over its headers; sidecars are read only for items `is_unchanged` does not
claim.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.records import FoundFile, UnchangedCheck
from indexer.sources.sidecars import CAPTION_READ_BYTES, METADATA_MAX_BYTES, parse_sidecars
from search.errors import InputError

__all__ = ["SHARD_IMAGE_EXTENSIONS", "is_shard_path", "iter_shard"]

SHARD_IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"})

_WEBDATASET_META = re.compile(r"__[^/]*__($|/)")  # webdataset's own `skip_meta` default

Sample = dict[str, tarfile.TarInfo]
"""One WebDataset sample: {lower-case extension: member}."""


def is_shard_path(path: Path | str) -> bool:
    """True for a regular file whose name ends in `.tar` (any case)."""
    return os.fspath(path).lower().endswith(".tar") and os.path.isfile(path)


def _samples(tar: tarfile.TarFile) -> Iterator[Sample]:
    """Samples by the WebDataset convention: consecutive regular members with the same key
    (`base_plus_ext`), the first of a repeat kept. Members without an extension, hidden names
    and `__meta__` files belong to no sample."""
    # Imported here, not at the top: webdataset imports torch, and a scan of folders alone
    # should not pay for it.
    from webdataset.tariterators import base_plus_ext

    current_key: str | None = None
    sample: Sample = {}
    for info in tar:
        if not info.isreg() or _WEBDATASET_META.match(info.name):
            continue
        key, extension = base_plus_ext(info.name)
        if key is None or extension is None:
            continue
        if key != current_key:
            if sample:
                yield sample
            current_key, sample = key, {}
        sample.setdefault(extension.lower(), info)
    if sample:
        yield sample


def _image_member(sample: Sample) -> tarfile.TarInfo | None:
    """The sample's image: an exact image extension (`jpg`) first, else one ending like one
    (`seg.png`)."""
    for extension, info in sample.items():
        if extension in SHARD_IMAGE_EXTENSIONS:
            return info
    for extension, info in sample.items():
        if extension.rsplit(".", 1)[-1] in SHARD_IMAGE_EXTENSIONS:
            return info
    return None


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo | None, limit: int) -> bytes | None:
    if info is None or info.size > limit:
        return None
    handle = tar.extractfile(info)
    return handle.read() if handle is not None else None


def _shard_sidecars(
    tar: tarfile.TarFile, sample: Sample
) -> tuple[str | None, dict[str, Any] | None]:
    txt = _member_bytes(tar, sample.get("txt"), CAPTION_READ_BYTES)
    if txt is None and "txt" in sample:  # a huge caption file: its beginning is enough
        handle = tar.extractfile(sample["txt"])
        txt = handle.read(CAPTION_READ_BYTES) if handle is not None else None
    return parse_sidecars(txt, _member_bytes(tar, sample.get("json"), METADATA_MAX_BYTES))


def _shard_items(
    shard: Path, mtime: float, tar: tarfile.TarFile, is_unchanged: UnchangedCheck | None
) -> Iterator[FoundFile]:
    for sample in _samples(tar):
        image = _image_member(sample)
        if image is None:
            continue
        found = FoundFile(shard, image.size, mtime, member=image.name)
        if is_unchanged is None or not is_unchanged(found.stored_path, image.size, mtime):
            caption, metadata = _shard_sidecars(tar, sample)
            found = FoundFile(shard, image.size, mtime, image.name, caption, metadata)
        yield found


def iter_shard(shard: Path, *, is_unchanged: UnchangedCheck | None = None) -> Iterator[FoundFile]:
    """One item per sample with an image in the uncompressed tar `shard`; reads headers and
    the sidecars of items `is_unchanged` does not claim, never image data."""
    shard = Path(os.path.abspath(shard))
    try:
        mtime = shard.stat().st_mtime
        # Unbuffered: each header read fetches its 512-byte block, not the image data after it.
        with open(shard, "rb", buffering=0) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
            yield from _shard_items(shard, mtime, tar, is_unchanged)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(
            f"Cannot read the WebDataset shard {shard}: {exc}. Shards must be uncompressed .tar "
            "files; re-create or re-download this one, or leave it out of the PATH arguments."
        ) from exc
