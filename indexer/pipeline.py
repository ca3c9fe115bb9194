"""One indexing run: scan sources, reconcile with the catalog, embed what is new or changed,
store vectors durably, then the catalog rows, then the FAISS index.

Write order per batch (crash safety): vector segment (fsync) -> catalog rows `embedded`
(commit) -> FAISS in memory; the FAISS file is saved atomically every `save_every` seconds and
at the end. A run killed at any instant is finished by running the same command again: rows
still `pending` are embedded, and a FAISS file older than the catalog is rebuilt from the
vector store before anything else happens.

A file whose bytes are already in the collection (renamed, moved, or a duplicate) is not
decoded or embedded again: its vector is copied under the new id. Only new files whose size
matches a known file are hashed for this, so the fast path stays (path, size, mtime).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from indexer.decode.worker import DecodedBatch, decode_batches
from indexer.decode.device_jpeg import DeviceJpegDecoder, device_jpeg_max_pixels, use_device_jpeg
from indexer.sources import (
    FoundFile,
    PruneScope,
    UnchangedCheck,
    expand_inputs,
    iter_file_list,
    iter_sources,
)
from indexer.enrich.tags import build_tagger, tag_untagged
from search.catalog import Catalog, CollectionInfo, KnownImage
from search.storage.collection_store import CollectionStore
from search.images.content_hash import hash_bytes, hash_file
from search.errors import ModelMismatchError
from search.storage.faiss_index import VectorIndex
from search.images.decode import DecodeFailure
from search.images.source import is_archive_member, read_image_bytes
from search.models import Encoder, load_encoder
from search.models.model_spec import parse_encoder_spec
from search.images.paths import decode_path, display_path, path_key
from search.settings import Settings
from search.models.zero_shot_tags import load_vocabulary, tagger_identity

__all__ = ["IndexReport", "ProgressCallback", "index_paths"]

ProgressCallback = Callable[[int, int, int], None]  # (done, total, failed) of the images to embed


@dataclass
class IndexReport:
    """What one run did. `seen` = `indexed` + `unchanged` + `failed` (files found this run)."""

    collection: str
    seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    reused: int = 0
    tagged: int = 0  # images tagged after embedding (those the embedding batches could not tag)
    seconds: float = 0.0
    cancelled: bool = False
    jpeg_decode: str | None = None  # where JPEGs were decoded (workers, device); None: nothing decoded
    failure_reasons: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), first 100

    @property
    def rate(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "seen": self.seen,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "removed": self.removed,
            "reused": self.reused,
            "tagged": self.tagged,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 2),
            "cancelled": self.cancelled,
            "jpeg_decode": self.jpeg_decode,
            "failure_reasons": dict(self.failure_reasons.most_common()),
        }


def _reason_kind(reason: str) -> str:
    """Group failure reasons for the summary: the text before the first colon."""
    return reason.split(":", 1)[0]


def _open_collection(
    settings: Settings, catalog: Catalog, name: str, model_spec: str | None
) -> tuple[CollectionInfo, Encoder | None]:
    collection = catalog.get_collection(name)
    if collection is None:
        spec = model_spec or settings.model
        encoder = load_encoder(spec, settings.device, settings.cpu_precision)
        return catalog.create_collection(name, model_spec=spec, model_id=encoder.model_id, dim=encoder.dim), encoder
    if model_spec is not None:
        wanted = parse_encoder_spec(model_spec).model_id
        if wanted != collection.model_id:
            raise ModelMismatchError(
                f"Collection {name!r} was indexed with {collection.model_id}; --model {model_spec} is "
                f"{wanted}. Mixing encoders would make scores meaningless: index into another "
                "collection (--collection NEW_NAME) or drop --model to use the collection's own."
            )
    return collection, None


def _encoder_for(settings: Settings, collection: CollectionInfo) -> Encoder:
    encoder = load_encoder(collection.model_spec, settings.device, settings.cpu_precision)
    if encoder.model_id != collection.model_id:
        raise ModelMismatchError(
            f"Collection {collection.name!r} was indexed with {collection.model_id}, but its model spec "
            f"{collection.model_spec!r} now loads {encoder.model_id} (the weights changed). Index into a "
            "new collection to use the new weights."
        )
    return encoder


def _scan(paths: Iterable[Path], from_list: Path | None, follow_symlinks: bool,
          is_unchanged: UnchangedCheck) -> Iterator[FoundFile]:
    yield from iter_sources(paths, follow_symlinks=follow_symlinks, is_unchanged=is_unchanged)
    if from_list is not None:
        yield from iter_file_list(from_list, is_unchanged=is_unchanged)


def index_paths(
    settings: Settings,
    catalog: Catalog,
    paths: Iterable[Path],
    *,
    collection: str = "default",
    model_spec: str | None = None,
    from_list: Path | None = None,
    prune: bool = True,
    follow_symlinks: bool = False,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    save_every: float | None = None,
    job_id: int | None = None,
) -> IndexReport:
    """Index image files under `paths` into `collection`; see the module docstring."""
    started = time.monotonic()
    roots = expand_inputs(paths)  # brace patterns expanded; InputError names what is missing
    info, encoder = _open_collection(settings, catalog, collection, model_spec)
    report = IndexReport(collection=info.name)
    store = CollectionStore(settings, catalog, info)
    with store.writer_lock():
        if job_id is not None:
            catalog.attach_job(job_id, info.id)
        store.remove_temp_files()  # of segments and FAISS saves a crash interrupted
        index = store.load_index()
        stale = not store.index_is_current(index)
        index, orphans = store.sync_index(index, full=stale)
        if orphans:
            catalog.mark_changed([(image_id, -1, -1.0) for image_id in orphans])
        if stale or orphans:
            store.save_index(index)

        known = catalog.image_states(info.id)
        seen_keys: set[str] = set()
        new_items: list[dict[str, Any]] = []
        changed: list[tuple[int, int, float]] = []
        def is_unchanged(stored: str, size: int, mtime: float) -> bool:
            row = known.get(path_key(stored))
            return row is not None and row.size == size and row.mtime == mtime

        for found in _scan(roots, from_list, follow_symlinks, is_unchanged):
            stored = found.stored_path
            key = path_key(stored)
            if key in seen_keys:
                continue
            seen_keys.add(key)
            report.seen += 1
            row = known.get(key)
            if row is None:
                new_items.append({"path": stored, "path_key": key, "size": found.size, "mtime": found.mtime,
                                  "caption": found.caption, "metadata": found.metadata})
            elif row.size != found.size or row.mtime != found.mtime:
                changed.append((row.id, found.size, found.mtime))
            elif row.status != "pending":
                report.unchanged += 1
        gone = _vanished(known, seen_keys, PruneScope(roots)) if prune else []
        waiting = any(known[key].status == "pending" for key in seen_keys if key in known)
        if not (new_items or changed or gone or waiting):
            if _has_untagged(settings, catalog, info):
                report.tagged = tag_untagged(settings, catalog, store, encoder or _encoder_for(settings, info),
                                             should_stop)
            report.seconds = time.monotonic() - started
            return report

        # From here until the final save the FAISS file lags the catalog; mark it so that a
        # crash in between makes the next writer rebuild it from the vector store.
        catalog.mark_index_dirty(info.id)
        new_ids: list[int] = []
        for start in range(0, len(new_items), 1000):
            new_ids += catalog.add_pending_images(info.id, new_items[start : start + 1000])
        catalog.mark_changed(changed)
        _reuse_known_content(catalog, store, index, known, list(zip(new_ids, new_items)), report)
        if gone:
            catalog.delete_images(gone)
            index.remove(np.asarray(gone, dtype=np.int64))
            report.removed = len(gone)
        pending = catalog.pending_images(info.id, seen_keys)
        if pending:
            encoder = encoder or _encoder_for(settings, info)
            _embed(settings, catalog, store, index, encoder, pending, report, progress, should_stop,
                   settings.index_save_seconds if save_every is None else save_every)
        store.save_index(index)
        _compact_if_wasteful(store, index)
        if not report.cancelled and _has_untagged(settings, catalog, info):
            # after the FAISS save: every image is searchable before tagging starts
            report.tagged = tag_untagged(settings, catalog, store, encoder or _encoder_for(settings, info),
                                         should_stop)
    report.seconds = time.monotonic() - started
    return report


def _has_untagged(settings: Settings, catalog: Catalog, info: CollectionInfo) -> bool:
    if not settings.tags:
        return False
    return bool(catalog.untagged_ids(info.id, tagger_identity(info.model_id, load_vocabulary(settings.tag_vocabulary))))


def _vanished(known: dict[str, KnownImage], seen: set[str], scope: PruneScope) -> list[int]:
    """Ids of catalog rows this scan did not see and whose source it covers."""
    return [row.id for key, row in known.items() if key not in seen and scope.covers(row.path)]


def _reuse_known_content(
    catalog: Catalog,
    store: CollectionStore,
    index: VectorIndex,
    known: dict[str, KnownImage],
    new_rows: list[tuple[int, dict[str, Any]]],
    report: IndexReport,
) -> None:
    """Give new files whose bytes the collection already embedded (moved, renamed, copied) the
    existing vector instead of decoding and embedding them again."""
    by_size: dict[int, dict[str, KnownImage]] = {}
    for row in known.values():
        if row.status == "embedded" and row.content_hash:
            by_size.setdefault(row.size, {})[row.content_hash] = row
    matches: list[tuple[int, KnownImage]] = []
    for new_id, item in new_rows:
        same_size = by_size.get(item["size"])
        if not same_size:
            continue
        try:
            digest = hash_bytes(read_image_bytes(item["path"])) if is_archive_member(item["path"]) \
                else hash_file(decode_path(item["path"]))
        except (OSError, DecodeFailure):
            continue  # unreadable now: the decode stage records why
        if digest in same_size:
            matches.append((new_id, same_size[digest]))
    if not matches:
        return
    ids, vectors = store.vectors.latest(source.id for _, source in matches)
    vector_of = dict(zip(ids.tolist(), vectors))
    usable = [(new_id, source) for new_id, source in matches if source.id in vector_of]
    if not usable:
        return
    new_ids = np.asarray([new_id for new_id, _ in usable], dtype=np.int64)
    new_vectors = np.stack([vector_of[source.id] for _, source in usable])
    store.vectors.append(new_ids, new_vectors)
    source_rows = catalog.get_images([source.id for _, source in usable])
    catalog.finish_batch(
        [{"id": new_id, "width": s.width, "height": s.height, "content_hash": s.content_hash,
          "tags": source_rows[s.id].tags if s.id in source_rows else None} for new_id, s in usable],
        [],
    )
    index.add(new_ids, new_vectors)
    report.reused += len(usable)
    report.indexed += len(usable)


def _rebatch(chunks: Iterable[DecodedBatch], size: int) -> Iterator[DecodedBatch]:
    """Join decoded chunks into batches of at least `size` images (the last may be smaller)."""
    waiting: list[DecodedBatch] = []
    count = 0
    for chunk in chunks:
        waiting.append(chunk)
        count += chunk.size
        if count >= size:
            yield _join(waiting)
            waiting, count = [], 0
    if waiting:
        yield _join(waiting)


def _join(chunks: list[DecodedBatch]) -> DecodedBatch:
    if len(chunks) == 1:
        return chunks[0]
    tensors = [c.pixels for c in chunks if c.pixels is not None]
    return DecodedBatch(
        pixels=torch.cat(tensors) if tensors else None,
        ok=[item for c in chunks for item in c.ok],
        failed=[item for c in chunks for item in c.failed],
        jpegs=[item for c in chunks for item in c.jpegs],
    )


def _compact_if_wasteful(store: CollectionStore, index: VectorIndex) -> None:
    """Rewrite the vector store once superseded or deleted vectors outnumber live ones by 25%."""
    live = index.count
    if store.vectors.stored_count() > 1.25 * live + 1000:
        store.vectors.compact(index.ids())


def _embed(
    settings: Settings,
    catalog: Catalog,
    store: CollectionStore,
    index: Any,
    encoder: Encoder,
    pending: list[tuple[int, str]],
    report: IndexReport,
    progress: ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
    save_every: float,
) -> None:
    workers = settings.workers if settings.workers is not None else min(os.cpu_count() or 1, 16)
    cuda = getattr(encoder, "device", "cpu").startswith("cuda")
    # DataLoader workers each build whole batches: small ones keep every worker busy, and the
    # main process joins them into encoder-sized batches.
    chunk = settings.batch_size if workers == 0 else max(1, min(8, settings.batch_size // workers or 1))
    on_device = use_device_jpeg(settings.jpeg_decode, encoder)
    report.jpeg_decode = "device" if on_device else "workers"
    device_decoder = DeviceJpegDecoder(encoder.pixel_transform, encoder.device, encoder.image_size) \
        if on_device else None
    batches = _rebatch(
        decode_batches(pending, encoder.pixel_transform, batch_size=chunk, workers=workers,
                       draft_size=encoder.image_size,
                       device_jpeg_pixels=device_jpeg_max_pixels() if on_device else 0),
        settings.batch_size,
    )
    tagger = build_tagger(settings, encoder, compute=False)  # None: tag_untagged does it afterwards
    done = 0
    path_of = dict(pending)
    last_save = time.monotonic()
    if progress:
        progress(0, len(pending), 0)
    for batch in batches:
        if cuda and batch.pixels is not None:
            # Page-locked host memory lets the copy to the GPU run without a staging copy.
            batch.pixels = batch.pixels.pin_memory()
        if device_decoder is not None:
            batch = device_decoder(batch)
        ids = np.asarray([item["id"] for item in batch.ok], dtype=np.int64)
        if batch.pixels is not None:
            vectors = encoder.encode_pixels(batch.pixels)
            store.vectors.append(ids, vectors)  # durable before the catalog says `embedded`
            if tagger is not None:
                # from the vectors as stored (float16), as the tagging pass would: same tags either way
                stored = vectors.astype(np.float16)
                for item, tags in zip(batch.ok, tagger.tag(stored, threshold=settings.tag_threshold)):
                    item["tags"], item["tags_model"] = tags, tagger.identity
        catalog.finish_batch(batch.ok, batch.failed)
        if batch.pixels is not None:
            index.add(ids, vectors)
        report.indexed += len(batch.ok)
        report.failed += len(batch.failed)
        report.failure_reasons.update(_reason_kind(reason) for _, reason in batch.failed)
        if batch.failed and len(report.failures) < 100:
            report.failures += [(display_path(path_of[i]), reason) for i, reason in batch.failed][:100]
        done += len(batch.ok) + len(batch.failed)
        if progress:
            progress(done, len(pending), report.failed)
        if time.monotonic() - last_save > save_every:
            store.save_index(index)
            # still writing: a crash after this point must rebuild, not trust this file
            catalog.mark_index_dirty(store.collection.id)
            last_save = time.monotonic()
        if should_stop is not None and should_stop():
            report.cancelled = True
            break
