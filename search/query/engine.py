"""The query engine: text, image and image-id queries against one or all collections.

Query path: encode (once per distinct encoder among the searched collections) -> FAISS top-k
per collection -> merge by score -> catalog rows -> results. Indexes are loaded once and kept;
before each query the engine compares the catalog's index generation and embedded count with
what it holds and catches up from the vector store, so searches see new images while an
indexer is still running.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from search.catalog import Catalog, CollectionInfo, ImageRecord
from search.catalog.fulltext import full_text_search
from search.errors import InputError, ModelMismatchError, NotFoundError
from search.images.decode import DecodeFailure, decode_bytes, decode_stored
from search.images.originals import OriginalFile
from search.images.thumbnails import CachedThumbnail
from search.models import Encoder, load_encoder
from search.models.specs import parse_encoder_spec
from search.query.cutoff import DEFAULT_BACKGROUND_SIZE, BackgroundSample, auto_cutoff
from search.query.duplicates import (
    DEFAULT_DUPLICATE_THRESHOLD,
    collapse_near_duplicates,
    duplicate_groups,
)
from search.query.filtering import filtered_vector_hits
from search.query.fusion import rank_for_mode
from search.query.paging import Hit, PageCursor, ResultSet, ResultSetCache, fingerprint
from search.query.query_cache import QueryVectorCache
from search.query.results import result_from_record
from search.query.terms import QueryImage, check_terms, combine, parse_query, plain_text
from search.schemas import (
    MAX_K,
    MAX_QUESTION_CHARS,
    AnswerResponse,
    CollectionStats,
    DuplicateGroup,
    DuplicatesResponse,
    FacetsResponse,
    ImageDetail,
    QueryTerm,
    SearchFilters,
    SearchMode,
    SearchOptions,
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
    filters: SearchFilters | None = None  # None: no filter narrows the search
    rerank_k: int = 0  # 0: no rerank
    min_score: float | None = None
    auto_cutoff: bool = False
    sort: str = "relevance"


@contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] += (time.perf_counter() - started) * 1000


def _by_date(
    ranked: list[tuple[float, int]], records: dict[int, ImageRecord], *, newest_first: bool
) -> list[tuple[float, int]]:
    """The result set ordered by taken date (ties and undated images keep their relevance
    order; undated images come last either way)."""
    dated = [(taken, s, i) for s, i in ranked if (taken := records[i].taken_at) is not None]
    undated = [(s, i) for s, i in ranked if records[i].taken_at is None]
    dated.sort(key=lambda hit: hit[0], reverse=newest_first)  # stable: ties keep relevance
    return [(s, i) for _, s, i in dated] + undated


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class _Rows:
    """The catalog rows and collections a result set was computed from."""

    records: dict[int, ImageRecord]
    collections: dict[int, CollectionInfo]


@dataclass
class _LoadedIndex:
    index: VectorIndex
    generation: int | None
    background: BackgroundSample | None = None  # for cutoff=auto, taken on first use
    background_count: int = 0


class SearchEngine:
    """Answers queries for one data directory. Thread-safe; build one per process."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._lock = threading.Lock()
        self._indexes: dict[int, _LoadedIndex] = {}
        self._encoders: dict[tuple[int, str], Encoder] = {}
        self.query_vectors = QueryVectorCache(settings.query_cache_size)
        self.results = ResultSetCache()

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
        self,
        request: SearchRequest,
        image: bytes | None = None,
        *,
        source: str = "upload",
        images: Sequence[QueryImage] = (),
    ) -> SearchResponse:
        """The one query entry point of the CLI, the JSON API and the pages.

        What is searched for is the weighted sum of the query's terms: `request.query` (text,
        with query arithmetic), or `request.terms` (the same as JSON), or `request.image_id`
        (images like a catalog image), plus example images given as bytes (`image`, named
        `source` in error messages, and `images`). The request's limits were checked when it
        was built. One page of the result set comes back; `next_cursor` names the next."""
        query_images = ([QueryImage(image, source)] if image is not None else []) + list(images)
        terms = self._terms(request, query_images)
        text = plain_text(terms) if not query_images else None
        if (request.rerank or request.mode != "vector") and text is None:
            raise InputError(
                "mode text/hybrid and rerank need a plain text query: no arithmetic, no image "
                "ids and no example images."
            )
        started = time.perf_counter()
        extra = hashlib.blake2b(b"".join(i.data for i in query_images), digest_size=9).hexdigest()
        key = fingerprint(request, f"{extra}:{[i.weight for i in query_images]}")
        cursor = PageCursor.decode(request.cursor, key) if request.cursor else None
        result_set = self.results.get(key, cursor.snapshot) if cursor else None
        snapshot_hit = result_set is not None
        fresh_rows: _Rows | None = None  # the rows a just-computed set read: page 1 reuses them
        snapshot = cursor.snapshot if cursor and result_set else 0
        if result_set is None:
            result_set, fresh_rows = self._result_set(request, terms, query_images, text)
            snapshot = self.results.put(key, result_set)
        response = self._page(request, result_set, key, snapshot, cursor, text, fresh_rows)
        if snapshot_hit:  # a later page from the kept set: only the page's cost
            response.timings = {"page_ms": (time.perf_counter() - started) * 1000}
        return response

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

    def facets(self, request: SearchOptions) -> FacetsResponse:
        """Counts of the images matching the request's filters, per collection, year, camera,
        tag and file type (the query itself is ignored: facets describe the filter set)."""
        collections = self._collections(request.collection)
        return self.catalog.facets(request.filters(), [c.id for c in collections])

    def _terms(self, request: SearchRequest, query_images: list[QueryImage]) -> list[QueryTerm]:
        """The query's terms, from exactly one of q, terms and image_id (example images add
        theirs); a missing or doubled query is an error saying what to give."""
        given = [
            name
            for name, value in (
                ("q", request.query),
                ("terms", request.terms),
                ("image_id", request.image_id),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise InputError(
                f"Search for one thing: give one of {' or '.join(given)}, not both (put images "
                "and texts in one query with query arithmetic: 'id:42 + beach')."
            )
        if request.query is not None:
            if not request.query:
                raise InputError("The query is empty: type some words to search for.")
            terms = parse_query(request.query, [i.weight for i in query_images])
        elif request.terms is not None:
            terms = list(request.terms)
        elif request.image_id is not None:
            terms = [QueryTerm(image_id=request.image_id)]
        elif query_images:
            terms = []
        else:
            raise InputError(
                "Nothing to search for: give a text query, an example image or an image id."
            )
        check_terms(terms, [i.weight for i in query_images])
        return terms

    def _options(self, request: SearchRequest) -> _Options:
        rerank_k = (request.rerank_k or self._default_rerank_k()) if request.rerank else 0
        with_cutoff = request.min_score is not None or request.cutoff is not None
        k = request.k or (MAX_K if with_cutoff else self.settings.default_k)
        return _Options(
            k=k,
            collection=request.collection,
            model=request.model,
            mode=request.mode,
            dedupe=request.dedupe,
            filters=request.filters() if request.has_filters else None,
            rerank_k=rerank_k,
            min_score=request.min_score,
            auto_cutoff=request.cutoff == "auto",
            sort=request.sort,
        )

    def _default_rerank_k(self) -> int:
        """PIXSEEK_RERANK_K, else what the device reranks in about the time of a query."""
        on_cuda = self.settings.device.startswith("cuda") or (
            self.settings.device == "auto" and _cuda_available()
        )
        return self.settings.rerank_k or (128 if on_cuda else 16)

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

    # -- building the query vector -----------------------------------------------------------

    def _decode_query_image(self, item: QueryImage) -> Image.Image:
        if len(item.data) > self.settings.max_upload_bytes:
            raise InputError(
                f"{item.source} is {len(item.data)} bytes; the limit is "
                f"{self.settings.max_upload_bytes} (PIXSEEK_MAX_UPLOAD_BYTES)."
            )
        try:
            decoded = decode_bytes(
                item.data, draft_size=512, max_pixels=self.settings.max_upload_pixels
            )
        except DecodeFailure as exc:
            raise InputError(f"{item.source}: {exc.reason}.") from exc
        return decoded.image

    def _id_terms(
        self, terms: Sequence[QueryTerm]
    ) -> tuple[dict[int, ImageRecord], CollectionInfo | None]:
        """The catalog rows of the query's image ids and the collection of the first one (an
        unknown id is an error naming the term)."""
        ids = [t.image_id for t in terms if t.image_id is not None]
        records = self.catalog.get_images(ids)
        for image_id in ids:
            if image_id not in records:
                raise NotFoundError(
                    f"The query names image id:{image_id}, which is not in the catalog."
                )
        first = self.catalog.collection_by_id(records[ids[0]].collection_id) if ids else None
        return records, first

    def _searched_collections(
        self, options: _Options, id_collection: CollectionInfo | None
    ) -> dict[int, CollectionInfo]:
        """The collections a search runs over. A query naming an image id searches that image's
        collection (or the one asked for, which must share its encoder): its vector means
        nothing to another encoder."""
        if id_collection is not None and options.collection is None:
            return {id_collection.id: id_collection}
        collections = {c.id: c for c in self._collections(options.collection)}
        if id_collection is not None:
            for info in collections.values():
                if info.model_id != id_collection.model_id:
                    raise ModelMismatchError(
                        f"The query's image comes from collection {id_collection.name!r} "
                        f"({id_collection.model_id}); collection {info.name!r} was indexed with "
                        f"{info.model_id}, so the two cannot be compared."
                    )
        return collections

    def _query_vector(
        self,
        encoder: Encoder,
        info: CollectionInfo,
        terms: Sequence[QueryTerm],
        id_records: dict[int, ImageRecord],
        pictures: Sequence[tuple[Image.Image, float]],
    ) -> np.ndarray:
        """The (1, d) vector of the query under `encoder`: one term as it is, several as the
        normalised weighted sum of their normalised vectors."""
        vectors, weights = [], []
        for term in terms:
            if term.text is not None:
                vectors.append(self._text_vector(encoder, term.text))
            else:
                assert term.image_id is not None
                record = id_records[term.image_id]
                owner = self.catalog.collection_by_id(record.collection_id)
                try:
                    vectors.append(self.index_for(owner).reconstruct(term.image_id)[None, :])
                except RuntimeError as exc:
                    raise NotFoundError(
                        f"Image id:{term.image_id} has no vector yet (status {record.status})."
                    ) from exc
            weights.append(term.weight)
        for picture, weight in pictures:
            vectors.append(encoder.encode_images([picture]))
            weights.append(weight)
        if len(vectors) == 1 and weights[0] == 1.0:
            return np.asarray(vectors[0], dtype=np.float32).reshape(1, -1)
        return combine(vectors, weights)

    def _text_vector(self, encoder: Encoder, text: str) -> np.ndarray:
        """A text's vector, from the query-vector cache when it was asked before."""
        return self.query_vectors.get(encoder.model_id, text, lambda: encoder.encode_texts([text]))

    # -- the result set ----------------------------------------------------------------------

    def _result_set(
        self,
        request: SearchRequest,
        terms: Sequence[QueryTerm],
        query_images: Sequence[QueryImage],
        text: str | None,
    ) -> tuple[ResultSet, _Rows]:
        options = self._options(request)
        timings: dict[str, float] = defaultdict(float)
        id_records, id_collection = self._id_terms(terms)
        collections = self._searched_collections(options, id_collection)
        with _timer(timings, "decode_ms"):
            pictures = [(self._decode_query_image(i), i.weight) for i in query_images]
        excluded = {t.image_id for t in terms if t.image_id is not None and t.weight > 0}

        def encode(encoder: Encoder, info: CollectionInfo) -> np.ndarray:
            return self._query_vector(encoder, info, terms, id_records, pictures)

        return self._search(encode, options, text, collections, excluded, timings)

    def _search(
        self,
        encode: Callable[[Encoder, CollectionInfo], np.ndarray],
        options: _Options,
        query: str | None,
        collections: dict[int, CollectionInfo],
        excluded: set[int],
        timings: dict[str, float],
    ) -> tuple[ResultSet, _Rows]:
        wanted = max(options.k, options.rerank_k)
        fetch = min(MAX_K + len(excluded), wanted * (4 if options.dedupe else 1) + len(excluded))
        query_vectors, indexes, vector_hits = self._vector_hits(
            encode, options, collections, fetch, timings
        )
        vector_hits = [hit for hit in vector_hits if hit[1] not in excluded]
        with _timer(timings, "cutoff_ms"):
            cutoff_score = self._cutoff_score(
                vector_hits, options, indexes, query_vectors, collections
            )
        clip = {image_id: score for score, image_id in vector_hits}
        text_scores: dict[int, float] = {}
        if options.mode in ("text", "hybrid") and query is not None:
            with _timer(timings, "text_ms"):
                text_hits = full_text_search(
                    self.catalog, query, collection_ids=list(collections), limit=fetch
                )
            if options.filters is not None:
                with _timer(timings, "filter_ms"):
                    matching = self.catalog.filter_ids(options.filters, [i for i, _ in text_hits])
                    text_hits = [(i, s) for i, s in text_hits if i in matching]
            text_scores = dict(text_hits)
        with _timer(timings, "fusion_ms"):
            ranked = rank_for_mode(
                options.mode if query is not None else "vector", vector_hits, text_scores
            )
            if cutoff_score is not None and (options.mode == "vector" or query is None):
                # the score is the CLIP score here: cut before reading rows (a cutoff fetches 1000)
                ranked = [(score, i) for score, i in ranked if score >= cutoff_score]
        with _timer(timings, "metadata_ms"):
            records = self.catalog.get_images([image_id for _, image_id in ranked])
            ranked = [(s, i) for s, i in ranked if i in records and i not in excluded]
            for _, image_id in ranked:  # text-only hits still get their CLIP similarity
                if image_id not in clip:
                    info = collections[records[image_id].collection_id]
                    clip[image_id] = float(
                        indexes[info.id].reconstruct(image_id) @ query_vectors[info.model_id][0]
                    )
            if cutoff_score is not None:
                ranked = [(s, i) for s, i in ranked if clip[i] >= cutoff_score]
            if options.dedupe:
                vectors = {i: indexes[records[i].collection_id].reconstruct(i) for _, i in ranked}
                ranked = collapse_near_duplicates(ranked, vectors)

        rerank_scores: dict[int, float] = {}
        if options.rerank_k and query is not None and ranked:
            with _timer(timings, "rerank_ms"):
                ranked, rerank_scores = self._rerank(query, ranked, records, options.rerank_k)
        ranked = ranked[: options.k]
        if options.sort != "relevance":
            ranked = _by_date(ranked, records, newest_first=options.sort == "date_desc")
        hits = tuple(
            Hit(i, score, clip[i], text_scores.get(i), rerank_scores.get(i)) for score, i in ranked
        )
        timings["total_ms"] = sum(timings.values())
        return ResultSet(hits, options.k, cutoff_score, dict(timings)), _Rows(records, collections)

    def _cutoff_score(
        self,
        vector_hits: list[tuple[float, int]],
        options: _Options,
        indexes: dict[int, VectorIndex],
        query_vectors: dict[str, np.ndarray],
        collections: dict[int, CollectionInfo],
    ) -> float | None:
        """The CLIP score below which results are dropped: min_score, or with cutoff=auto the
        score where the ranking falls into this query's background (`search.query.cutoff`);
        with both, the higher."""
        cut = options.min_score
        if options.auto_cutoff and vector_hits:
            background = np.concatenate(
                [
                    self._background(info).scores(query_vectors[info.model_id][0])
                    for info in collections.values()
                ]
            )
            scores = np.array([s for s, _ in vector_hits], dtype=np.float32)
            kept = auto_cutoff(scores, background)
            # nothing stands out (kept == 0): a cut just above the best keeps nothing
            auto = float(scores[kept - 1]) if kept > 0 else float(scores[0]) + 1e-6
            cut = auto if cut is None else max(cut, auto)
        return cut

    def _background(self, info: CollectionInfo) -> BackgroundSample:
        """The collection's fixed background sample, taken from the loaded index. It is taken
        again when the collection changed enough to move its background (all of a small
        collection, or a tenth of a large one), not on every image an indexer adds while
        people search."""
        index = self.index_for(info)
        with self._lock:
            loaded = self._indexes[info.id]
            changed = abs(index.count - loaded.background_count)
            small = loaded.background_count <= DEFAULT_BACKGROUND_SIZE  # the sample is all of it
            if loaded.background is None or (
                changed and (small or changed * 10 > loaded.background_count)
            ):
                loaded.background = BackgroundSample.from_index(index)
                loaded.background_count = index.count
            return loaded.background

    def _page(
        self,
        request: SearchRequest,
        result_set: ResultSet,
        key: str,
        snapshot: int,
        cursor: PageCursor | None,
        text: str | None,
        fresh: _Rows | None = None,
    ) -> SearchResponse:
        """One page of a result set, with the cursor of the next one. `fresh`: the rows the
        set was just computed from (page 1 reads nothing again); a kept set reads its page."""
        with_cutoff = result_set.cutoff_score is not None
        limit = request.limit or (
            self.settings.default_k if with_cutoff and request.k is None else result_set.k
        )
        offset = cursor.offset if cursor else 0
        page = result_set.hits[offset : offset + limit]
        wanted = [hit.image_id for hit in page]
        if fresh is not None and all(i in fresh.records for i in wanted):
            records, collections = fresh.records, fresh.collections
        else:
            records = self.catalog.get_images(wanted)
            collections = {c.id: c for c in self.catalog.list_collections()}
        results = [
            self._result(
                records[hit.image_id],
                hit.score,
                collections,
                clip_score=hit.clip_score,
                text_score=hit.text_score,
                rerank_score=hit.rerank_score,
                above_cutoff=True if with_cutoff else None,
            )
            for hit in page
            if hit.image_id in records  # deleted since the set was computed
        ]
        end = offset + limit
        next_cursor = (
            PageCursor(key, snapshot, end).encode() if end < len(result_set.hits) else None
        )
        return SearchResponse(
            query=request.query if request.query is not None else text,
            k=result_set.k,
            total=len(result_set.hits),
            results=results,
            next_cursor=next_cursor,
            cutoff_score=result_set.cutoff_score,
            timings=result_set.timings,
        )

    def _vector_hits(
        self,
        encode: Callable[[Encoder, CollectionInfo], np.ndarray],
        options: _Options,
        collections: dict[int, CollectionInfo],
        fetch: int,
        timings: dict[str, float],
    ) -> tuple[dict[str, np.ndarray], dict[int, VectorIndex], list[tuple[float, int]]]:
        """The query vector per model, the index per collection, and the FAISS hits of every
        collection merged best first (none in `text` mode, which still needs the vectors).
        With filters, each collection returns its best `fetch` matching images exactly."""
        query_vectors: dict[str, np.ndarray] = {}
        indexes: dict[int, VectorIndex] = {}
        vector_hits: list[tuple[float, int]] = []
        for info in collections.values():
            with _timer(timings, "encode_ms"):
                if info.model_id not in query_vectors:
                    query_vectors[info.model_id] = encode(self._encoder(info, options.model), info)
            with _timer(timings, "ann_ms"):
                indexes[info.id] = index = self.index_for(info)
            if options.mode == "text":
                continue
            vector = query_vectors[info.model_id]
            if options.filters is not None:
                with _timer(timings, "filter_ms"):  # the SQL filter and the exact ANN within it
                    vector_hits += filtered_vector_hits(
                        self.catalog, index, vector, options.filters, info.id, fetch
                    )
                continue
            with _timer(timings, "ann_ms"):
                scores, ids = index.search(vector, fetch)
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
        above_cutoff: bool | None = None,
    ) -> SearchResult:
        info = collections.get(record.collection_id) or self.catalog.collection_by_id(
            record.collection_id
        )
        return result_from_record(
            record,
            info.name,
            score=score,
            clip_score=clip_score,
            text_score=text_score,
            rerank_score=rerank_score,
            above_cutoff=above_cutoff,
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

    def image_file(self, image_id: int) -> OriginalFile:
        """The indexed file of an image, its name and content identity (read from disk only
        when its content is asked for): only ever what the catalog says, never a path taken
        from a request."""
        return OriginalFile(self.catalog.get_image(image_id))

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

    def thumbnail(self, image_id: int) -> CachedThumbnail:
        """An image's thumbnail: its ETag from the catalog row, its file made on first use."""
        return CachedThumbnail(self.catalog.get_image(image_id), self.settings.thumbnail_dir())

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
