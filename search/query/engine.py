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
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from search.catalog import Catalog, CollectionInfo, ImageRecord
from search.catalog.fulltext import full_text_search
from search.errors import InputError, ModelMismatchError, NotFoundError
from search.images.decode import DecodeFailure, decode_bytes, decode_stored
from search.images.paths import decode_path, display_path
from search.images.source import is_archive_member, read_image_bytes
from search.images.thumbnails import thumbnail_for
from search.models import Encoder, load_encoder
from search.models.specs import parse_encoder_spec
from search.query.duplicates import (
    DEFAULT_DUPLICATE_THRESHOLD,
    collapse_near_duplicates,
    duplicate_groups,
)
from search.query.fusion import rank_for_mode
from search.query.query_cache import QueryVectorCache
from search.schemas import (
    MAX_K,
    MAX_QUESTION_CHARS,
    AnswerResponse,
    CollectionStats,
    DuplicateGroup,
    DuplicatesResponse,
    ImageDetail,
    SearchMode,
    SearchRequest,
    SearchResponse,
    SearchResult,
    StatsResponse,
    Tag,
    parse_search_request,
)
from search.settings import Settings
from search.storage.collection_store import CollectionStore
from search.storage.faiss_index import VectorIndex

__all__ = ["SearchEngine"]

RERANK_DRAFT_SIZE = 384  # BLIP and BLIP-2 look at 224-384 px: decode no bigger


@dataclass(frozen=True)
class _Options:
    """A `SearchRequest` with the settings' defaults filled in."""

    k: int
    collection: str | None = None
    model: str | None = None
    mode: SearchMode = "vector"
    dedupe: bool = False
    tag: str | None = None
    rerank_k: int = 0  # 0: no rerank


@contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] += (time.perf_counter() - started) * 1000


def _has_tag(record: ImageRecord, tag: str | None) -> bool:
    return tag is None or any(t.get("label") == tag for t in record.tags or [])


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass
class _LoadedIndex:
    index: VectorIndex
    generation: int | None


class SearchEngine:
    """Answers queries for one data directory. Thread-safe; build one per process."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._lock = threading.Lock()
        self._indexes: dict[int, _LoadedIndex] = {}
        self._encoders: dict[tuple[int, str], Encoder] = {}
        self.query_vectors = QueryVectorCache(settings.query_cache_size)

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
                    f"Collection {collection.name!r} was indexed with {collection.model_id}; the "
                    f"query encoder --model {model} is {wanted}. Scores across different encoders "
                    "are meaningless: drop --model to use the collection's own encoder."
                )
        key = (collection.id, collection.model_id)
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = load_encoder(
                collection.model_spec, self.settings.device, self.settings.cpu_precision
            )
            if encoder.model_id != collection.model_id:
                raise ModelMismatchError(
                    f"Collection {collection.name!r} was indexed with {collection.model_id}, but "
                    f"its model spec {collection.model_spec!r} now loads {encoder.model_id} "
                    "(the weights changed). Re-index into a new collection to search with the "
                    "new weights."
                )
            self._encoders[key] = encoder
        return encoder

    # -- queries -----------------------------------------------------------------------------

    def search(
        self, request: SearchRequest, image: bytes | None = None, *, source: str = "upload"
    ) -> SearchResponse:
        """The one query entry point of the CLI, the JSON API and the pages.

        What is searched for is one of `request.query` (text), `image` (the bytes of an example
        image; `source` names it in error messages) or `request.image_id` (images like a
        catalog image). The request's limits were checked when it was built."""
        given = [request.query is not None, image is not None, request.image_id is not None]
        if sum(given) > 1:
            raise InputError("Search for one thing: a text query, an example image or an image id.")
        if request.query is not None:
            return self._search_text(request.query, request)
        if request.rerank or request.mode != "vector":
            raise InputError("rerank and mode apply to text queries, not to searches by image.")
        if image is not None:
            return self._search_image_bytes(image, request, source)
        if request.image_id is not None:
            return self._similar(request.image_id, request)
        raise InputError(
            "Nothing to search for: give a text query, an example image or an image id."
        )

    def search_text(self, query: str, **options: Any) -> SearchResponse:
        """`search` for a text query, for Python callers (evaluation, demo, benchmarks);
        `options` are `SearchRequest` fields."""
        return self.search(parse_search_request(query=query, **options))

    def search_image_bytes(
        self, data: bytes, *, source: str = "upload", **options: Any
    ) -> SearchResponse:
        """`search` by an example image's bytes, for Python callers; `options` are
        `SearchRequest` fields."""
        return self.search(parse_search_request(**options), data, source=source)

    def _options(self, request: SearchRequest) -> _Options:
        rerank_k = (request.rerank_k or self._default_rerank_k()) if request.rerank else 0
        return _Options(
            k=request.k or self.settings.default_k,
            collection=request.collection,
            model=request.model,
            mode=request.mode,
            dedupe=request.dedupe,
            tag=request.tag,
            rerank_k=rerank_k,
        )

    def _default_rerank_k(self) -> int:
        """PIXSEEK_RERANK_K, else what the device reranks in about the time of a query."""
        on_cuda = self.settings.device.startswith("cuda") or (
            self.settings.device == "auto" and _cuda_available()
        )
        return self.settings.rerank_k or (128 if on_cuda else 16)

    def _search_text(self, query: str, request: SearchRequest) -> SearchResponse:
        """`mode`: vector (CLIP), text (caption/tag/file-name full text) or hybrid (reciprocal-
        rank fusion of both); `rerank` reorders the top `rerank_k` with the ITM model."""
        if not query:
            raise InputError("The query is empty: type some words to search for.")

        def encode(enc: Encoder) -> np.ndarray:
            return self.query_vectors.get(enc.model_id, query, lambda: enc.encode_texts([query]))

        return self._search(encode, self._options(request), query=query)

    def warm(self) -> list[str]:
        """Load every collection's FAISS index and encoder and run one text and one image
        through the encoder (the first call of a torch model builds its kernels), so the first
        query is as fast as the tenth. Returns the names of the collections warmed."""
        warmed = []
        for info in self.catalog.list_collections():
            self.index_for(info)
            encoder = self._encoder(info, None)
            encoder.encode_texts(["a photo"])
            encoder.encode_images([Image.new("RGB", (encoder.image_size, encoder.image_size))])
            warmed.append(info.name)
        return warmed

    def _search_image_bytes(
        self, data: bytes, request: SearchRequest, source: str
    ) -> SearchResponse:
        if len(data) > self.settings.max_upload_bytes:
            raise InputError(
                f"{source} is {len(data)} bytes; the limit is {self.settings.max_upload_bytes} "
                "(PIXSEEK_MAX_UPLOAD_BYTES)."
            )
        try:
            decoded = decode_bytes(data, draft_size=512, max_pixels=self.settings.max_upload_pixels)
        except DecodeFailure as exc:
            raise InputError(f"{source}: {exc.reason}.") from exc
        image = decoded.image
        return self._search(
            lambda enc: enc.encode_images([image]), self._options(request), query=None
        )

    def _similar(self, image_id: int, request: SearchRequest) -> SearchResponse:
        """Nearest neighbours of a catalog image in its own collection (itself left out)."""
        if request.collection or request.model or request.tag or request.dedupe:
            raise InputError(
                "A search by image id takes only k: it searches the image's own collection."
            )
        k = request.k or self.settings.default_k
        record = self.catalog.get_image(image_id)
        info = self.catalog.collection_by_id(record.collection_id)
        started = time.perf_counter()
        index = self.index_for(info)
        try:
            vector = index.reconstruct(image_id)[None, :]
        except RuntimeError as exc:
            raise NotFoundError(
                f"Image {image_id} has no vector yet (status {record.status})."
            ) from exc
        scores, ids = index.search(vector, k + 1)
        hits = [
            (float(s), int(i))
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0 and i != image_id
        ][:k]
        search_ms = (time.perf_counter() - started) * 1000
        records = self.catalog.get_images([i for _, i in hits])
        results = [
            self._result(records[i], s, {info.id: info}, clip_score=s)
            for s, i in hits
            if i in records
        ]
        return SearchResponse(query=None, k=k, results=results, timings={"search_ms": search_ms})

    def _search(
        self, encode: Callable[[Encoder], np.ndarray], options: _Options, query: str | None
    ) -> SearchResponse:
        collections = {c.id: c for c in self._collections(options.collection)}
        timings: dict[str, float] = defaultdict(float)
        wanted = max(options.k, options.rerank_k)
        fetch = min(MAX_K, wanted * 4 if (options.dedupe or options.tag) else wanted)
        query_vectors, indexes, vector_hits = self._vector_hits(
            encode, options, collections, fetch, timings
        )
        clip = {image_id: score for score, image_id in vector_hits}
        text_scores: dict[int, float] = {}
        if options.mode in ("text", "hybrid") and query is not None:
            with _timer(timings, "text_ms"):
                text_hits = full_text_search(
                    self.catalog, query, collection_ids=list(collections), limit=fetch
                )
            text_scores = dict(text_hits)
        ranked = rank_for_mode(
            options.mode if query is not None else "vector", vector_hits, text_scores
        )

        with _timer(timings, "metadata_ms"):
            records = self.catalog.get_images([image_id for _, image_id in ranked])
            ranked = [
                (s, i) for s, i in ranked if i in records and _has_tag(records[i], options.tag)
            ]
            for _, image_id in ranked:  # text-only hits still get their CLIP similarity
                if image_id not in clip:
                    info = collections[records[image_id].collection_id]
                    clip[image_id] = float(
                        indexes[info.id].reconstruct(image_id) @ query_vectors[info.model_id][0]
                    )
            if options.dedupe:
                vectors = {i: indexes[records[i].collection_id].reconstruct(i) for _, i in ranked}
                ranked = collapse_near_duplicates(ranked, vectors)

        rerank_scores: dict[int, float] = {}
        if options.rerank_k and query is not None and ranked:
            with _timer(timings, "rerank_ms"):
                ranked, rerank_scores = self._rerank(query, ranked, records, options.rerank_k)
        results = [
            self._result(
                records[i],
                score,
                collections,
                clip_score=clip[i],
                text_score=text_scores.get(i),
                rerank_score=rerank_scores.get(i),
            )
            for score, i in ranked[: options.k]
        ]
        timings["total_ms"] = sum(timings.values())
        return SearchResponse(query=query, k=options.k, results=results, timings=dict(timings))

    def _vector_hits(
        self,
        encode: Callable[[Encoder], np.ndarray],
        options: _Options,
        collections: dict[int, CollectionInfo],
        fetch: int,
        timings: dict[str, float],
    ) -> tuple[dict[str, np.ndarray], dict[int, VectorIndex], list[tuple[float, int]]]:
        """The query vector per model, the index per collection, and the FAISS hits of every
        collection merged best first (none in `text` mode, which still needs the vectors)."""
        query_vectors: dict[str, np.ndarray] = {}
        indexes: dict[int, VectorIndex] = {}
        vector_hits: list[tuple[float, int]] = []
        for info in collections.values():
            with _timer(timings, "encode_ms"):
                if info.model_id not in query_vectors:
                    query_vectors[info.model_id] = encode(self._encoder(info, options.model))
            with _timer(timings, "search_ms"):
                indexes[info.id] = index = self.index_for(info)
                if options.mode != "text":
                    scores, ids = index.search(query_vectors[info.model_id], fetch)
                    vector_hits += [
                        (float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0
                    ]
        vector_hits.sort(key=lambda hit: (-hit[0], hit[1]))
        return query_vectors, indexes, vector_hits

    def _rerank(
        self,
        query: str,
        ranked: list[tuple[float, int]],
        records: dict[int, ImageRecord],
        rerank_k: int,
    ) -> tuple[list[tuple[float, int]], dict[int, float]]:
        """Reorder the top `rerank_k` candidates by ITM match probability (the final score);
        candidates below them keep their order and first-stage score."""
        from search.models.registry import load_reranker

        head, tail = ranked[:rerank_k], ranked[rerank_k:]
        reranker = load_reranker(self.settings.reranker, self.settings.device)
        images, keys, kept = [], [], []
        for _, image_id in head:
            try:
                images.append(
                    decode_stored(records[image_id].path, draft_size=RERANK_DRAFT_SIZE).image
                )
            except DecodeFailure:
                continue  # the file went away since indexing: it cannot be judged, drop it
            keys.append((image_id, records[image_id].content_hash))
            kept.append(image_id)
        probabilities = reranker.score(query, images, keys=keys) if images else np.zeros(0)
        scores = {image_id: float(p) for image_id, p in zip(kept, probabilities, strict=True)}
        reordered = sorted(((scores[i], i) for i in kept), key=lambda hit: (-hit[0], hit[1]))
        return reordered + tail, scores

    def _result(
        self,
        record: ImageRecord,
        score: float,
        collections: dict[int, CollectionInfo],
        *,
        clip_score: float,
        text_score: float | None = None,
        rerank_score: float | None = None,
    ) -> SearchResult:
        info = collections.get(record.collection_id) or self.catalog.collection_by_id(
            record.collection_id
        )
        return SearchResult(
            id=record.id,
            path=record.display_path,
            score=score,
            clip_score=clip_score,
            text_score=text_score,
            rerank_score=rerank_score,
            collection=info.name,
            width=record.width,
            height=record.height,
            caption=record.caption,
            tags=[Tag(label=t["label"], score=t["score"]) for t in record.tags or []],
        )

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
            raise NotFoundError(
                f"The file of image {image_id} ({display_path(record.path)}) is gone."
            )
        return path, name

    def ask(self, image_id: int, question: str) -> AnswerResponse:
        """Answer a question about one image with the captioning/VQA model
        (BLIP-2 prompt "Question: ... Answer:")."""
        from search.models.registry import load_captioner

        question = question.strip()
        if not question:
            raise InputError("The question is empty: ask something about the image.")
        if len(question) > MAX_QUESTION_CHARS:
            raise InputError(
                f"The question is {len(question)} characters long; the limit is "
                f"{MAX_QUESTION_CHARS}."
            )
        record = self.catalog.get_image(image_id)
        try:
            image = decode_stored(record.path, draft_size=RERANK_DRAFT_SIZE).image
        except DecodeFailure as exc:
            raise NotFoundError(f"Image {image_id} cannot be read: {exc.reason}.") from exc
        captioner = load_captioner(self.settings.captioner, self.settings.device)
        started = time.perf_counter()
        answer = captioner.ask(image, question)
        return AnswerResponse(
            id=image_id,
            question=question,
            answer=answer,
            model=captioner.model_id,
            ms=(time.perf_counter() - started) * 1000,
        )

    def thumbnail(self, image_id: int) -> Path:
        return thumbnail_for(self.catalog.get_image(image_id), self.settings.thumbnail_dir())

    def duplicates(
        self, *, threshold: float = DEFAULT_DUPLICATE_THRESHOLD, collection: str | None = None
    ) -> DuplicatesResponse:
        """Groups of near-identical images in each collection."""
        if not 0 < threshold <= 1:
            raise InputError(f"threshold must be in (0, 1], got {threshold}.")
        groups = []
        for info in self._collections(collection):
            found = duplicate_groups(self.index_for(info), threshold)
            records = self.catalog.get_images([i for ids, _ in found for i in ids])
            for ids, similarity in found:
                groups.append(
                    DuplicateGroup(
                        collection=info.name,
                        similarity=similarity,
                        ids=ids,
                        paths=[records[i].display_path for i in ids if i in records],
                    )
                )
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
