"""The decode stage as a torch `Dataset`, so `DataLoader` worker processes decode, resize and
crop while the main process runs the encoder (bounded prefetch queues, optional pinned memory).
Pixels travel as uint8; the encoder normalises them on its own device. Failures travel as data:
one bad file never stops a batch.

With `device_jpeg`, a worker does not decode plain JPEGs (`plain_jpeg_header`): it reads and
hashes the bytes and passes them on, and the main process decodes them on the encoder's device
(`indexer.decode.device_jpeg`). Everything else is decoded here by Pillow as usual."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from indexer.decode.worker_lifetime import die_with_parent, report_worker_starts_if_asked
from search.images.content_hash import hash_bytes
from search.images.decode import DecodeFailure, decode_bytes, plain_jpeg_header
from search.images.source import read_image_bytes
from search.models.pixel_transform import PixelTransform

__all__ = ["DecodedBatch", "decode_batches", "undecoded_jpeg"]


@dataclass
class DecodedBatch:
    pixels: torch.Tensor | None  # (n_ok, 3, S, S) uint8
    ok: list[dict[str, Any]]  # id, width, height, content_hash, in the order of `pixels`
    failed: list[tuple[int, str]]  # (id, reason)
    # Plain JPEGs still to decode on the encoder's device: id, width, height, content_hash,
    # orientation, and `data`, the file's bytes as a uint8 tensor.
    jpegs: list[dict[str, Any]] = field(default_factory=list)
    # Between processes the JPEGs travel as one tensor (one shared-memory handle per batch, not
    # one per file); `with_jpeg_views` gives each its `data` back. Items hold `span` meanwhile.
    jpeg_bytes: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return len(self.ok) + len(self.failed) + len(self.jpegs)

    def with_jpeg_views(self) -> DecodedBatch:
        if self.jpeg_bytes is not None:
            for item in self.jpegs:
                start, end = item.pop("span")
                item["data"] = self.jpeg_bytes[start:end]
            self.jpeg_bytes = None
        return self

    def pin_memory(self) -> DecodedBatch:
        """Called by DataLoader(pin_memory=True) so CUDA copies can be non-blocking."""
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


def undecoded_jpeg(image_id: int, data: bytes, *, max_pixels: int) -> dict[str, Any] | None:
    """What a worker hands over instead of pixels for a plain JPEG (`plain_jpeg_header`) of at
    most `max_pixels`, to be decoded on the encoder's device; None for any other file."""
    header = plain_jpeg_header(data, max_pixels=max_pixels)
    if header is None:
        return None
    return {"id": image_id, "data": torch.frombuffer(bytearray(data), dtype=torch.uint8),
            "width": header.width, "height": header.height, "orientation": header.orientation,
            "content_hash": hash_bytes(data)}


class _DecodeDataset(Dataset):
    def __init__(self, items: Sequence[tuple[int, str]], transform: PixelTransform, draft_size: int,
                 device_jpeg_pixels: int) -> None:
        self.items = list(items)
        self.transform = transform
        self.draft_size = draft_size
        self.device_jpeg_pixels = device_jpeg_pixels  # 0: decode everything here

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> dict[str, Any]:
        image_id, stored_path = self.items[position]
        try:
            data = read_image_bytes(stored_path)
            if self.device_jpeg_pixels:
                jpeg = undecoded_jpeg(image_id, data, max_pixels=self.device_jpeg_pixels)
                if jpeg is not None:
                    return jpeg
            decoded = decode_bytes(data, draft_size=self.draft_size)
            pixels = self.transform(decoded.image)
        except DecodeFailure as exc:
            return {"id": image_id, "error": exc.reason}
        except Exception as exc:  # noqa: BLE001 - a decoder bug must fail one file, not the run
            return {"id": image_id, "error": f"cannot decode image: {type(exc).__name__}: {exc}"}
        return {
            "id": image_id,
            "pixels": pixels,
            "width": decoded.width,
            "height": decoded.height,
            "content_hash": decoded.content_hash,
        }


def _collate(samples: list[dict[str, Any]]) -> DecodedBatch:
    ok = [s for s in samples if "pixels" in s]
    pixels = torch.stack([s.pop("pixels") for s in ok]) if ok else None
    jpegs = [s for s in samples if "data" in s]
    end = 0
    for item in jpegs:
        start, end = end, end + item["data"].numel()
        item["span"] = (start, end)
    return DecodedBatch(
        pixels=pixels,
        ok=ok,
        failed=[(s["id"], s["error"]) for s in samples if "error" in s],
        jpegs=jpegs,
        jpeg_bytes=torch.cat([item.pop("data") for item in jpegs]) if jpegs else None,
    )


def _worker_init(_worker_id: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)  # first: a worker must never outlive the indexer (worker_lifetime)
    torch.set_num_threads(1)  # decode workers: one core each, leave the rest to the encoder


def decode_batches(
    items: Sequence[tuple[int, str]],
    transform: PixelTransform,
    *,
    batch_size: int,
    workers: int,
    draft_size: int,
    device_jpeg_pixels: int = 0,
    pin_memory: bool = False,
) -> Iterator[DecodedBatch]:
    """Iterate `DecodedBatch`es for `items` ((id, stored path) pairs), decoded in `workers`
    processes (0 = in this process). With `device_jpeg_pixels` > 0, plain JPEGs of at most that
    many pixels come back undecoded in `DecodedBatch.jpegs`."""
    report_worker_starts_if_asked()
    loader = DataLoader(
        _DecodeDataset(items, transform, draft_size, device_jpeg_pixels),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=functools.partial(_worker_init, parent_pid=os.getpid()) if workers else None,
        prefetch_factor=4 if workers else None,
        pin_memory=pin_memory,
        persistent_workers=False,
        # fork() from a thread of a multi-threaded server can inherit a held lock and hang;
        # the API runs jobs in threads, so they start workers with `spawn`.
        multiprocessing_context=None if threading.current_thread() is threading.main_thread() or not workers
        else "spawn",
    )
    return (batch.with_jpeg_views() for batch in loader)
