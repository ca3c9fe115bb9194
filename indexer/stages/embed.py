"""Decode -> embed -> store, batch by batch, for the rows still `pending`.

Write order per batch (crash safety): vector segment (fsync) -> catalog rows `embedded`
(commit) -> FAISS in memory. The FAISS file is saved atomically every `save_every` seconds
(and by the pipeline at the end); each save is followed by marking the index dirty again, since
the run is still writing and a crash after it must rebuild rather than trust that file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from indexer.decode.device_jpeg import DeviceJpegDecoder, device_jpeg_max_pixels, use_device_jpeg
from indexer.decode.rebatch import rebatch
from indexer.decode.worker import decode_batches
from indexer.enrich.tags import build_tagger
from indexer.records import DecodedBatch
from indexer.stages.run import Run
from search.catalog import EmbeddedImage, PendingImage, TagUpdate
from search.images.paths import display_path
from search.models import Encoder
from search.models.zero_shot_tags import ZeroShotTagger
from search.settings import Settings
from search.storage.faiss_index import VectorIndex

__all__ = ["embed_pending"]


def embed_pending(
    run: Run, index: VectorIndex, encoder: Encoder, pending: list[PendingImage]
) -> None:
    """Embed `pending` into `index` and the collection's files; stops early, `cancelled`, when
    the run's options ask to."""
    on_device = use_device_jpeg(run.settings.jpeg_decode, encoder)
    run.report.jpeg_decode = "device" if on_device else "workers"
    device_decoder = None
    if on_device:
        device_decoder = DeviceJpegDecoder(
            encoder.pixel_transform, encoder.device, encoder.image_size
        )
    batches = _decoded_batches(run.settings, encoder, pending, on_device)
    tagger = build_tagger(run.settings, encoder, compute=False)  # None: tagged afterwards
    writer = _BatchWriter(run, index, encoder, pending, device_decoder, tagger)
    for batch in batches:
        writer.write(batch)
        if run.options.stop_requested():
            run.report.cancelled = True
            break


def _decode_workers(settings: Settings) -> int:
    return settings.workers if settings.workers is not None else min(os.cpu_count() or 1, 16)


def _decoded_batches(
    settings: Settings, encoder: Encoder, pending: list[PendingImage], on_device: bool
) -> Iterator[DecodedBatch]:
    """Encoder-sized batches of `pending`, decoded by the workers (plain JPEGs left undecoded
    when they go to the device). Workers start here, before the first batch is asked for."""
    workers = _decode_workers(settings)
    # DataLoader workers each build whole batches: small ones keep every worker busy, and the
    # main process joins them into encoder-sized batches.
    chunk = settings.batch_size
    if workers:
        chunk = max(1, min(8, settings.batch_size // workers or 1))
    decoded = decode_batches(
        pending,
        encoder.pixel_transform,
        batch_size=chunk,
        workers=workers,
        draft_size=encoder.image_size,
        device_jpeg_pixels=device_jpeg_max_pixels() if on_device else 0,
    )
    return rebatch(decoded, settings.batch_size)


class _BatchWriter:
    """Stores decoded batches in crash-safe order and keeps the report and progress current."""

    def __init__(
        self,
        run: Run,
        index: VectorIndex,
        encoder: Encoder,
        pending: list[PendingImage],
        device_decoder: DeviceJpegDecoder | None,
        tagger: ZeroShotTagger | None,
    ) -> None:
        self.run = run
        self.index = index
        self.encoder = encoder
        self.device_decoder = device_decoder
        self.tagger = tagger
        self.cuda = getattr(encoder, "device", "cpu").startswith("cuda")
        self.path_of = {item.id: item.path for item in pending}
        self.total = len(pending)
        self.done = 0
        save_every = run.options.save_every
        self.save_every = run.settings.index_save_seconds if save_every is None else save_every
        self.last_save = time.monotonic()
        self._progress(0)

    def write(self, batch: DecodedBatch) -> None:
        batch = self._to_device(batch)
        if batch.pixels is None:
            self.run.catalog.finish_batch(batch.ok, batch.failed)
        else:
            ids = np.asarray([item.id for item in batch.ok], dtype=np.int64)
            vectors = self.encoder.encode_pixels(batch.pixels)
            self.run.store.vectors.append(ids, vectors)  # durable before the catalog says so
            self.run.catalog.finish_batch(self._tagged(batch.ok, vectors), batch.failed)
            self.index.add(ids, vectors)
        self._count(batch)
        self._save_now_and_then()

    def _to_device(self, batch: DecodedBatch) -> DecodedBatch:
        if self.cuda and batch.pixels is not None:
            # Page-locked host memory lets the copy to the GPU run without a staging copy.
            batch.pixels = batch.pixels.pin_memory()
        if self.device_decoder is not None:
            batch = self.device_decoder(batch)
        return batch

    def _tagged(self, images: list[EmbeddedImage], vectors: np.ndarray) -> list[EmbeddedImage]:
        """`images` with their tags, when the tagger is at hand; from the vectors as stored
        (float16), as the tagging stage would: the same tags either way."""
        if self.tagger is None:
            return images
        threshold = self.run.settings.tag_threshold
        tags = self.tagger.tag(vectors.astype(np.float16), threshold=threshold)
        identity = self.tagger.identity
        return [
            replace(image, tags=TagUpdate(tags=found, model=identity))
            for image, found in zip(images, tags, strict=False)
        ]

    def _count(self, batch: DecodedBatch) -> None:
        report = self.run.report
        report.indexed += len(batch.ok)
        report.add_failures(batch.failed, lambda image_id: display_path(self.path_of[image_id]))
        self.done += len(batch.ok) + len(batch.failed)
        self._progress(report.failed)

    def _progress(self, failed: int) -> None:
        if self.run.options.progress:
            self.run.options.progress(self.done, self.total, failed)

    def _save_now_and_then(self) -> None:
        if time.monotonic() - self.last_save > self.save_every:
            self.run.store.save_index(self.index)
            # still writing: a crash after this point must rebuild, not trust this file
            self.run.catalog.mark_index_dirty(self.run.collection.id)
            self.last_save = time.monotonic()
