"""The typed records that flow through an indexing run, stage by stage:

    scan       -> `FoundFile`        (indexer.sources: folders, file lists, WebDataset shards)
    reconcile  -> `Reconciliation`   (indexer.stages.reconcile: new, changed, unchanged)
                  `NewImage`, `ChangedImage`, `PendingImage`   (search.catalog.records)
    decode     -> `DecodedPixels` | `UndecodedJpeg` | `FailedImage`, one per file, joined into
                  a `DecodedBatch`   (indexer.decode.worker, indexer.decode.device_jpeg)
    embed      -> `EmbeddedImage` + vectors   (indexer.stages.embed)
    store      -> vector store, then `Catalog.finish_batch`, then FAISS

Records that the catalog accepts live in `search.catalog.records` (`search` never imports
`indexer`); the ones only the indexer sees live here. Everything the decode workers return is
picklable, with `fork` and with `spawn` (the API starts its workers with `spawn`): plain frozen
dataclasses of a module importable at top level, holding tensors, numbers and strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from search.catalog.records import (
    ChangedImage,
    EmbeddedImage,
    FailedImage,
    ImageMetadata,
    NewImage,
)
from search.images.paths import encode_path
from search.images.source import archive_member_path

__all__ = [
    "DecodedBatch",
    "DecodedPixels",
    "DecodedSample",
    "FoundFile",
    "Reconciliation",
    "UnchangedCheck",
    "UndecodedJpeg",
]

UnchangedCheck = Callable[[str, int, float], bool]
"""(stored path, size, mtime) -> True when the catalog already holds that item unchanged."""


@dataclass(frozen=True, slots=True)
class FoundFile:
    """One image found by a scan. For a shard member, `path` is the shard, `member` the member
    name, `size` the member's size and `mtime` the shard's."""

    path: Path
    size: int
    mtime: float
    member: str | None = None
    caption: str | None = None
    metadata: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def stored_path(self) -> str:
        """The catalog form of this item's location (`search.images.paths` /
        `search.images.source`)."""
        if self.member is None:
            return encode_path(self.path)
        return archive_member_path(self.path, self.member)


@dataclass(slots=True)
class Reconciliation:
    """What one scan means for the catalog: which files are new, which changed, which are as
    the catalog has them. `seen_keys` holds the path keys of every file found, once each."""

    seen_keys: set[str] = field(default_factory=set)
    new: list[NewImage] = field(default_factory=list)
    changed: list[ChangedImage] = field(default_factory=list)
    unchanged: int = 0

    @property
    def seen(self) -> int:
        return len(self.seen_keys)


@dataclass(frozen=True, slots=True)
class DecodedPixels:
    """A file a worker decoded: the model's pixels (uint8, 3 x S x S) and what the catalog
    records about the file once its vector is stored."""

    image: EmbeddedImage
    pixels: torch.Tensor


@dataclass(frozen=True, slots=True)
class UndecodedJpeg:
    """A plain JPEG a worker read, hashed and parsed but left for the encoder's device to
    decode (`indexer.decode.device_jpeg`).

    Between processes the JPEGs of a batch travel as one tensor (one shared-memory handle per
    batch, not one per file): `data` is then None and `span` says where this file's bytes lie
    in `DecodedBatch.jpeg_bytes`; `DecodedBatch.with_jpeg_views` gives each its `data` back."""

    id: int
    width: int  # full size after EXIF orientation
    height: int
    orientation: int  # EXIF orientation, 1..8
    content_hash: str | None = None
    data: torch.Tensor | None = None  # the file's bytes as uint8
    span: tuple[int, int] | None = None
    metadata: ImageMetadata | None = None  # taken time, camera, file type (from the header)

    def embedded(self) -> EmbeddedImage:
        """What the catalog records about this file once it is embedded."""
        return EmbeddedImage(
            id=self.id,
            width=self.width,
            height=self.height,
            content_hash=self.content_hash,
            metadata=self.metadata,
        )


DecodedSample = DecodedPixels | UndecodedJpeg | FailedImage
"""What a decode worker returns for one file: never an exception (one bad file never stops a
batch)."""


@dataclass(slots=True)
class DecodedBatch:
    """Decoded files, ready for the encoder: `pixels` row i belongs to `ok[i]`."""

    pixels: torch.Tensor | None  # (n_ok, 3, S, S) uint8
    ok: list[EmbeddedImage]  # in the order of `pixels`
    failed: list[FailedImage]
    jpegs: list[UndecodedJpeg] = field(default_factory=list)  # plain JPEGs still to decode
    jpeg_bytes: torch.Tensor | None = None  # the bytes of `jpegs` while between processes

    @property
    def size(self) -> int:
        return len(self.ok) + len(self.failed) + len(self.jpegs)

    def with_jpeg_views(self) -> DecodedBatch:
        """Give each JPEG its bytes back as a view into `jpeg_bytes` (after the process hop)."""
        if self.jpeg_bytes is not None:
            self.jpegs = [_with_view(item, self.jpeg_bytes) for item in self.jpegs]
            self.jpeg_bytes = None
        return self

    def pin_memory(self) -> DecodedBatch:
        """Called by DataLoader(pin_memory=True) so CUDA copies can be non-blocking."""
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


def _with_view(item: UndecodedJpeg, joined: torch.Tensor) -> UndecodedJpeg:
    if item.span is None:
        return item
    start, end = item.span
    return replace(item, data=joined[start:end], span=None)
