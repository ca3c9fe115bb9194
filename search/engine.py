"""The query engine: text, image and image-id queries against one or all collections.

Query path: encode (once per distinct encoder among the searched collections) -> FAISS top-k
per collection -> merge by score -> catalog rows -> results. Indexes are loaded once and kept;
before each query the engine compares the catalog's index generation and embedded count with
what it holds and catches up from the vector store, so searches see new images while an
indexer is still running.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from search.catalog import Catalog, CollectionInfo, ImageRecord
from search.collection_store import CollectionStore
from search.duplicates import DEFAULT_DUPLICATE_THRESHOLD, collapse_near_duplicates, duplicate_groups
from search.errors import InputError, ModelMismatchError, NotFoundError
from search.faiss_index import VectorIndex
from search.image_decode import DecodeFailure, decode_bytes
from search.image_source import is_archive_member, read_image_bytes
from search.models import Encoder, load_encoder
from search.models.model_spec import parse_encoder_spec
from search.paths import decode_path, display_path
from search.schemas import (
    CollectionStats,
    DuplicateGroup,
    DuplicatesResponse,
    ImageDetail,
    SearchResponse,
    SearchResult,
    StatsResponse,
    Tag,
)
from search.settings import Settings
from search.thumbnails import thumbnail_for

__all__ = ["MAX_K", "MAX_QUERY_CHARS", "SearchEngine"]

MAX_K = 1000
MAX_QUERY_CHARS = 1000


@dataclass
class _LoadedIndex:
    index: VectorIndex
    generation: int | None


def image_urls(image_id: int) -> dict[str, str]:
    return {
        "file_url": f"/api/images/{image_id}/file",
        "thumbnail_url": f"/api/images/{image_id}/thumbnail",
    }


class SearchEngine:
    """Answers queries for one data directory. Thread-safe; build one per process."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._lock = threading.Lock()
        self._indexes: dict[int, _LoadedIndex] = {}
        self._encoders: dict[tuple[int, str], Encoder] = {}

    # -- collections and indexes -------------------------------------------------------------

    def _collections(self, name: str | None) -> list[CollectionInfo]:
        if name:
            return [self.catalog.require_collection(name)]
        collections = self.catalog.list_collections()
        if not collections:
            raise NotFoundError("Nothing is indexed yet. Index a folder first: pixseek index PATH")
        return collections

    def index_for(self, collection: CollectionInfo) -> VectorIndex:
        """The collection's FAISS index, caught up with the catalog."""
        store = CollectionStore(self.settings, self.catalog, collection)
        build = self.catalog.index_build(collection.id)
        generation = build.generation if build else None
        embedded = self.catalog.count_by_status(collection.id).get("embedded", 0)
        with self._lock:
            loaded = self._indexes.get(collection.id)
            if loaded is None or loaded.generation != generation:
                loaded = _LoadedIndex(store.load_index(), generation)
                self._indexes[collection.id] = loaded
            if loaded.index.count != embedded:
                loaded.index, _ = store.sync_index(loaded.index)
            return loaded.index

    def _encoder(self, collection: CollectionInfo, model: str | None) -> Encoder:
        """The collection's encoder (loaded once; spec parsing hashes weight files, so cache it)."""
        if model is not None:
            wanted = parse_encoder_spec(model).model_id
            if wanted != collection.model_id:
                raise ModelMismatchError(
                    f"Collection {collection.name!r} was indexed with {collection.model_id}; the query "
                    f"encoder --model {model} is {wanted}. Scores across different encoders are "
                    "meaningless: drop --model to use the collection's own encoder."
                )
        key = (collection.id, collection.model_id)
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = load_encoder(collection.model_spec, self.settings.device)
            if encoder.model_id != collection.model_id:
                raise ModelMismatchError(
                    f"Collection {collection.name!r} was indexed with {collection.model_id}, but its model spec "
                    f"{collection.model_spec!r} now loads {encoder.model_id} (the weights changed). Re-index "
                    "into a new collection to search with the new weights."
                )
            self._encoders[key] = encoder
        return encoder

    # -- queries -----------------------------------------------------------------------------

    def _check_k(self, k: int | None) -> int:
        k = self.settings.default_k if k is None else k
        if not 1 <= k <= MAX_K:
            raise InputError(f"k must be between 1 and {MAX_K}, got {k}.")
        return k

    def search_text(self, query: str, *, k: int | None = None, collection: str | None = None,
                    model: str | None = None, dedupe: bool = False) -> SearchResponse:
        query = query.strip()
        if not query:
            raise InputError("The query is empty: type some words to search for.")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"The query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}.")
        return self._search(lambda enc: enc.encode_texts([query]), k=self._check_k(k),
                            collection=collection, model=model, query=query, dedupe=dedupe)

    def search_image_bytes(self, data: bytes, *, k: int | None = None, collection: str | None = None,
                           source: str = "upload", dedupe: bool = False) -> SearchResponse:
        if len(data) > self.settings.max_upload_bytes:
            raise InputError(
                f"{source} is {len(data)} bytes; the limit is {self.settings.max_upload_bytes} "
                "(PIXSEEK_MAX_UPLOAD_BYTES)."
            )
        try:
            decoded = decode_bytes(data, draft_size=512, max_pixels=self.settings.max_upload_pixels)
        except DecodeFailure as exc:
            raise InputError(f"{source}: {exc.reason}.") from exc
        return self.search_image(decoded.image, k=k, collection=collection, dedupe=dedupe)

    def search_image(self, image: Image.Image, *, k: int | None = None,
                     collection: str | None = None, dedupe: bool = False) -> SearchResponse:
        return self._search(lambda enc: enc.encode_images([image]), k=self._check_k(k),
                            collection=collection, model=None, query=None, dedupe=dedupe)

    def similar(self, image_id: int, *, k: int | None = None) -> SearchResponse:
        k = self._check_k(k)
        record = self.catalog.get_image(image_id)
        info = self.catalog.collection_by_id(record.collection_id)
        started = time.perf_counter()
        index = self.index_for(info)
        try:
            vector = index.reconstruct(image_id)[None, :]
        except RuntimeError as exc:
            raise NotFoundError(f"Image {image_id} has no vector yet (status {record.status}).") from exc
        scores, ids = index.search(vector, k + 1)
        hits = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0 and i != image_id][:k]
        search_ms = (time.perf_counter() - started) * 1000
        results, meta_ms = self._results(hits, {info.id: info})
        return SearchResponse(query=None, k=k, results=results,
                              timings={"search_ms": search_ms, "metadata_ms": meta_ms})

    def _search(self, encode, *, k: int, collection: str | None, model: str | None,  # type: ignore[no-untyped-def]
                query: str | None, dedupe: bool = False) -> SearchResponse:
        collections = self._collections(collection)
        timings = {"encode_ms": 0.0, "search_ms": 0.0}
        hits: list[tuple[float, int]] = []
        vectors: dict[str, np.ndarray] = {}
        hit_vectors: dict[int, np.ndarray] = {}
        fetch = min(MAX_K, k * 4) if dedupe else k
        for info in collections:
            started = time.perf_counter()
            if info.model_id not in vectors:
                vectors[info.model_id] = encode(self._encoder(info, model))
            timings["encode_ms"] += (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            index = self.index_for(info)
            scores, ids = index.search(vectors[info.model_id], fetch)
            found = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]
            hits.extend(found)
            if dedupe:
                hit_vectors.update((i, index.reconstruct(i)) for _, i in found)
            timings["search_ms"] += (time.perf_counter() - started) * 1000
        hits.sort(key=lambda hit: (-hit[0], hit[1]))
        if dedupe:
            hits = collapse_near_duplicates(hits, hit_vectors)
        results, meta_ms = self._results(hits[:k], {c.id: c for c in collections})
        timings["metadata_ms"] = meta_ms
        timings["total_ms"] = sum(timings.values())
        return SearchResponse(query=query, k=k, results=results, timings=timings)

    def _results(self, hits: list[tuple[float, int]],
                 collections: dict[int, CollectionInfo]) -> tuple[list[SearchResult], float]:
        started = time.perf_counter()
        records = self.catalog.get_images([image_id for _, image_id in hits])
        results = []
        for score, image_id in hits:
            record = records.get(image_id)
            if record is None:  # deleted after the index was read
                continue
            info = collections.get(record.collection_id) or self.catalog.collection_by_id(record.collection_id)
            results.append(
                SearchResult(
                    id=image_id,
                    path=record.display_path,
                    score=score,
                    clip_score=score,
                    collection=info.name,
                    width=record.width,
                    height=record.height,
                    caption=record.caption,
                    **image_urls(image_id),
                )
            )
        return results, (time.perf_counter() - started) * 1000

    # -- images ------------------------------------------------------------------------------

    def image_detail(self, image_id: int) -> ImageDetail:
        record = self.catalog.get_image(image_id)
        info = self.catalog.collection_by_id(record.collection_id)
        return ImageDetail(
            id=record.id,
            path=record.display_path,
            collection=info.name,
            status=record.status,
            error=record.error,
            size=record.size,
            width=record.width,
            height=record.height,
            content_hash=record.content_hash,
            caption=record.caption,
            caption_model=record.caption_model,
            tags=[Tag(label=t["label"], score=t["score"]) for t in record.tags or []],
            similar_url=f"/api/images/{record.id}/similar",
            **image_urls(record.id),
        )

    def image_file(self, image_id: int) -> tuple[Path | bytes, str]:
        """The indexed file of an image (a path, or the bytes of a tar member) and its name:
        only ever what the catalog says, never a path taken from a request."""
        record = self.catalog.get_image(image_id)
        name = record.display_path.rsplit("#", 1)[-1]
        if is_archive_member(record.path):
            try:
                return read_image_bytes(record.path), name
            except DecodeFailure as exc:
                raise NotFoundError(f"The file of image {image_id} is gone: {exc.reason}.") from exc
        path = decode_path(record.path)
        if not path.is_file():
            raise NotFoundError(f"The file of image {image_id} ({display_path(record.path)}) is gone.")
        return path, name

    def thumbnail(self, image_id: int) -> Path:
        return thumbnail_for(self.catalog.get_image(image_id), self.settings.thumbnail_dir())

    def record(self, image_id: int) -> ImageRecord:
        return self.catalog.get_image(image_id)

    def duplicates(self, *, threshold: float = DEFAULT_DUPLICATE_THRESHOLD,
                   collection: str | None = None) -> DuplicatesResponse:
        """Groups of near-identical images in each collection."""
        if not 0 < threshold <= 1:
            raise InputError(f"threshold must be in (0, 1], got {threshold}.")
        groups = []
        for info in self._collections(collection):
            found = duplicate_groups(self.index_for(info), threshold)
            records = self.catalog.get_images([i for ids, _ in found for i in ids])
            for ids, similarity in found:
                groups.append(DuplicateGroup(collection=info.name, similarity=similarity, ids=ids,
                                             paths=[records[i].display_path for i in ids if i in records]))
        return DuplicatesResponse(threshold=threshold, groups=groups)

    # -- stats -------------------------------------------------------------------------------

    def stats(self) -> StatsResponse:
        per_collection = []
        for info in self.catalog.list_collections():
            counts = self.catalog.count_by_status(info.id)
            per_collection.append(
                CollectionStats(
                    name=info.name,
                    model_id=info.model_id,
                    images=sum(counts.values()),
                    embedded=counts.get("embedded", 0),
                    failed=counts.get("failed", 0),
                    pending=counts.get("pending", 0),
                    index_vectors=self.index_for(info).count,
                )
            )
        model_ids = {c.model_id for c in per_collection}
        return StatsResponse(
            images=sum(c.images for c in per_collection),
            embedded=sum(c.embedded for c in per_collection),
            failed=sum(c.failed for c in per_collection),
            pending=sum(c.pending for c in per_collection),
            index_vectors=sum(c.index_vectors for c in per_collection),
            model_id=model_ids.pop() if len(model_ids) == 1 else None,
            collections=per_collection,
        )
