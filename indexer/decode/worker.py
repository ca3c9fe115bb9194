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
from dataclasses import replace

import torch
from torch.utils.data import DataLoader, Dataset

from indexer.decode.worker_lifetime import die_with_parent, report_worker_starts_if_asked
from indexer.records import DecodedBatch, DecodedPixels, DecodedSample, UndecodedJpeg
from search.catalog.records import EmbeddedImage, FailedImage, PendingImage
from search.images.content_hash import hash_bytes
from search.images.decode import decode_bytes, plain_jpeg_header
from search.images.failures import DecodeFailure
from search.images.source import read_image_bytes
from search.models.pixel_transform import PixelTransform

__all__ = ["decode_batches", "undecoded_jpeg"]


def undecoded_jpeg(image_id: int, data: bytes, *, max_pixels: int) -> UndecodedJpeg | None:
    """What a worker hands over instead of pixels for a plain JPEG (`plain_jpeg_header`) of at
    most `max_pixels`, to be decoded on the encoder's device; None for any other file."""
    header = plain_jpeg_header(data, max_pixels=max_pixels)
    if header is None:
        return None
    return UndecodedJpeg(
        id=image_id,
        width=header.width,
        height=header.height,
        orientation=header.orientation,
        content_hash=hash_bytes(data),
        metadata=header.metadata,
        data=torch.frombuffer(bytearray(data), dtype=torch.uint8),
    )


class _DecodeDataset(Dataset[DecodedSample]):
    def __init__(
        self,
        items: Sequence[PendingImage],
        transform: PixelTransform,
        draft_size: int,
        device_jpeg_pixels: int,
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self.draft_size = draft_size
        self.device_jpeg_pixels = device_jpeg_pixels  # 0: decode everything here

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> DecodedSample:
        image_id, stored_path = self.items[position]
        try:
            return self._decode(image_id, read_image_bytes(stored_path))
        except DecodeFailure as exc:
            return FailedImage(image_id, exc.reason)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must fail one file, not the run
            return FailedImage(image_id, f"cannot decode image: {type(exc).__name__}: {exc}")

    def _decode(self, image_id: int, data: bytes) -> DecodedPixels | UndecodedJpeg:
        if self.device_jpeg_pixels:
            jpeg = undecoded_jpeg(image_id, data, max_pixels=self.device_jpeg_pixels)
            if jpeg is not None:
                return jpeg
        decoded = decode_bytes(data, draft_size=self.draft_size)
        image = EmbeddedImage(
            id=image_id,
            width=decoded.width,
            height=decoded.height,
            content_hash=decoded.content_hash,
            metadata=decoded.metadata,
        )
        return DecodedPixels(image=image, pixels=self.transform(decoded.image))


def _collate(samples: list[DecodedSample]) -> DecodedBatch:
    """One batch of worker results, the JPEGs' bytes joined into one tensor (`UndecodedJpeg`)."""
    decoded = [s for s in samples if isinstance(s, DecodedPixels)]
    jpegs: list[UndecodedJpeg] = []
    datas: list[torch.Tensor] = []
    end = 0
    for sample in samples:
        if isinstance(sample, UndecodedJpeg) and sample.data is not None:
            start, end = end, end + sample.data.numel()
            jpegs.append(replace(sample, data=None, span=(start, end)))
            datas.append(sample.data)
    return DecodedBatch(
        pixels=torch.stack([s.pixels for s in decoded]) if decoded else None,
        ok=[s.image for s in decoded],
        failed=[s for s in samples if isinstance(s, FailedImage)],
        jpegs=jpegs,
        jpeg_bytes=torch.cat(datas) if datas else None,
    )


def _worker_init(_worker_id: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)  # first: a worker must never outlive the indexer (worker_lifetime)
    torch.set_num_threads(1)  # decode workers: one core each, leave the rest to the encoder


def decode_batches(
    items: Sequence[PendingImage],
    transform: PixelTransform,
    *,
    batch_size: int,
    workers: int,
    draft_size: int,
    device_jpeg_pixels: int = 0,
    pin_memory: bool = False,
) -> Iterator[DecodedBatch]:
    """Iterate `DecodedBatch`es for the pending `items`, decoded in `workers`
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
        multiprocessing_context="spawn" if workers and not _on_main_thread() else None,
    )
    return (batch.with_jpeg_views() for batch in loader)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
