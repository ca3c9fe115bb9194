"""The shapes of what goes into and out of the engine, shared by the CLI, the JSON API and the
HTML pages (one definition, so they cannot drift apart).

`SearchRequest` is the one description of a search: every front end builds it and hands it to
`SearchEngine.search`, and every limit on a search (query length, k, rerank_k, the modes) is
declared on it, once. The result models carry ids and data only: the web layer adds the URLs
(`web.responses`), so the engine knows nothing of HTTP.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from search.errors import InputError
from search.timestamps import UtcDateTime

__all__ = [
    "MAX_K",
    "MAX_LIMIT",
    "MAX_QUERY_CHARS",
    "MAX_QUESTION_CHARS",
    "MAX_RERANK_K",
    "MAX_TAG_CHARS",
    "MAX_TERMS",
    "SEARCH_MODES",
    "AnswerResponse",
    "AskRequest",
    "CollectionStats",
    "DuplicateGroup",
    "DuplicatesResponse",
    "FacetCount",
    "FacetsResponse",
    "ImageDetail",
    "Orientation",
    "QueryTerm",
    "ResultCount",
    "SearchFilters",
    "SearchMode",
    "SearchOptions",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "SortOrder",
    "StatsResponse",
    "Tag",
    "parse_search_request",
]

MAX_K = 1000
MAX_RERANK_K = 512
MAX_QUERY_CHARS = 1000
MAX_TAG_CHARS = 200
MAX_QUESTION_CHARS = 300
MAX_LIMIT = 200  # one page of results
MAX_TERMS = 16  # terms of one query-arithmetic expression
MAX_FILTER_VALUES = 32  # values of one repeatable filter (tag, any_tag, file_type)

SearchMode = Literal["vector", "text", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
SortOrder = Literal["relevance", "date_desc", "date_asc"]
Orientation = Literal["landscape", "portrait", "square"]
FilterValues = Annotated[list[str], Field(max_length=MAX_FILTER_VALUES)]

ResultCount = Annotated[int, Field(ge=1, le=MAX_K)]
"""A number of results: what `SearchRequest.k` accepts, for routes that take only k."""


class SearchFilters(BaseModel):
    """Exact metadata filters: a result always matches every one given, and a filtered query
    returns k results whenever k matching images exist. Each is None (or empty) when not given.
    The catalog turns them into SQL (`search.catalog.filters`)."""

    model_config = ConfigDict(frozen=True)

    folder: str | None = Field(
        default=None,
        max_length=MAX_QUERY_CHARS,
        description="Only images under this folder (a directory as paths are shown in results, "
        "e.g. /photos/2024/rome; every level below it is included).",
    )
    date_from: date | None = Field(
        default=None,
        description="Only images taken on or after this day (ISO date, inclusive). The taken date "
        "is EXIF DateTimeOriginal, else the file's modification time (`taken_at_source`).",
    )
    date_to: date | None = Field(
        default=None,
        description="Only images taken on or before this day (ISO date, inclusive).",
    )
    camera: str | None = Field(
        default=None,
        max_length=MAX_TAG_CHARS,
        description="Only images whose EXIF camera Make or Model contains this text "
        "(case-insensitive), e.g. canon or 'EOS R5'.",
    )
    tag: FilterValues = Field(
        default_factory=list,
        description="Only images with every one of these zero-shot tags (repeatable).",
    )
    any_tag: FilterValues = Field(
        default_factory=list,
        description="Only images with at least one of these zero-shot tags (repeatable).",
    )
    min_width: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Only images at least this many pixels wide."
    )
    max_width: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Only images at most this many pixels wide."
    )
    min_height: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Only images at least this many pixels high."
    )
    max_height: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Only images at most this many pixels high."
    )
    min_megapixels: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Only images of at least this many megapixels (width*height/1e6)."
    )
    max_megapixels: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Only images of at most this many megapixels."
    )
    orientation: Orientation | None = Field(
        default=None,
        description="Only landscape (wider than high), portrait (higher than wide) or square "
        "images (after EXIF rotation).",
    )
    file_type: FilterValues = Field(
        default_factory=list,
        description="Only these file types (repeatable): jpeg, png, webp, gif, tiff, bmp, heif, "
        "as sniffed from the content at index time.",
    )
    has_caption: bool | None = Field(
        default=None,
        description="true: only images with a caption; false: only images without one.",
    )

    @field_validator("folder", "camera", mode="before")
    @classmethod
    def _blank_filter_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("tag", "any_tag", "file_type", mode="before")
    @classmethod
    def _drop_blank_values(cls, value: Any) -> Any:
        """A single value is a one-item list; blank values (an empty form field) are dropped."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [v.strip() if isinstance(v, str) else v for v in value if v != "" and v != " "]
        return value

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> SearchFilters:
        for low, high in (
            ("date_from", "date_to"),
            ("min_width", "max_width"),
            ("min_height", "max_height"),
            ("min_megapixels", "max_megapixels"),
        ):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} ({lo}) is after {high} ({hi}): nothing can match")
        return self

    def filters(self) -> SearchFilters:
        """Only the filter fields (a `SearchRequest` is a `SearchFilters` plus the rest)."""
        return SearchFilters.model_validate(
            {name: getattr(self, name) for name in SearchFilters.model_fields}
        )

    @property
    def has_filters(self) -> bool:
        """Whether any filter narrows the search (besides the collection)."""
        return any(getattr(self, name) not in (None, []) for name in SearchFilters.model_fields)


class SearchOptions(SearchFilters):
    """Every option of a search that fits in a URL or a form: a text query (with query
    arithmetic), or an image id, plus filters, cutoff, order and paging. Validation here is the
    only place the limits live; the engine trusts a built request."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    query: str | None = Field(
        default=None,
        validation_alias="q",
        max_length=MAX_QUERY_CHARS,
        description="Text query (blanks at either end are dropped). Query arithmetic: terms "
        "joined by ' + ' and ' - ', each optionally weighted 'W:' (a number), and 'id:N' names a "
        "catalog image, e.g. 'beach + 2:sunset - people' or 'id:42 - snow'. Quotes keep a "
        'literal " + ", " - " or "2:" inside a term ("a clock at 10:30"). A search needs one of '
        "a text query, an image_id or an example image.",
    )
    image_id: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Find images like this catalog image instead of a text query.",
    )
    k: ResultCount | None = Field(
        default=None,
        description="Size of the result set over all pages: the top k (default PIXSEEK_DEFAULT_K; "
        f"with min_score or cutoff, {MAX_K}, and the cutoff decides).",
    )
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None = Field(
        default=None,
        description="Results per page (default: k, or PIXSEEK_DEFAULT_K with a cutoff). "
        "next_cursor in the response fetches the next page.",
    )
    cursor: str | None = Field(
        default=None,
        max_length=200,
        description="The next_cursor of the previous page of the same search.",
    )
    collection: str | None = Field(default=None, description="Only this collection (default: all).")
    model: str | None = Field(
        default=None,
        description="Query encoder SPEC; it must match the collection's encoder.",
    )
    mode: SearchMode = Field(
        default="vector",
        description="vector: CLIP similarity; text: full text over captions, tags and file names; "
        "hybrid: reciprocal-rank fusion (k=60) of both. Text queries only.",
    )
    dedupe: bool = Field(
        default=False,
        description="Collapse near-duplicate images into their best hit.",
    )
    rerank: bool = Field(
        default=False,
        description="Reorder the top rerank_k candidates by BLIP/BLIP-2 ITM match probability "
        "(text queries only).",
    )
    rerank_k: Annotated[int, Field(ge=1, le=MAX_RERANK_K)] | None = Field(
        default=None,
        description="Candidates to rerank (default PIXSEEK_RERANK_K, else 128 on CUDA, 16 on CPU).",
    )
    min_score: Annotated[float, Field(ge=-1, le=1)] | None = Field(
        default=None,
        description="Keep only results whose CLIP cosine similarity is at least this.",
    )
    cutoff: Literal["auto"] | None = Field(
        default=None,
        description="auto: keep the results that stand out from this collection's background "
        "for this query (a per-query cutoff; see the README); the response's cutoff_score says "
        "where the cut fell.",
    )
    sort: SortOrder = Field(
        default="relevance",
        description="relevance (best first), or the result set ordered by taken date: "
        "date_desc (newest first) or date_asc.",
    )

    @field_validator("query", mode="before")
    @classmethod
    def _strip_query(cls, value: Any) -> Any:
        """The length limit counts what is searched, so blanks are dropped first; a blank
        query stays "" and the engine says it is empty (a page re-shows its form then)."""
        return value.strip() if isinstance(value, str) else value

    @field_validator("collection", "model", "cursor", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        """An empty form field ("all collections", no cursor) means "not given"."""
        if isinstance(value, str):
            return value.strip() or None
        return value


class QueryTerm(BaseModel):
    """One weighted term of a query-arithmetic expression: a text or a catalog image."""

    model_config = ConfigDict(frozen=True)

    text: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_CHARS)
    image_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    weight: float = Field(
        default=1.0,
        description="Multiplies the term's normalised vector; negative subtracts it.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> QueryTerm:
        if (self.text is None) == (self.image_id is None):
            raise ValueError("a term is either a text or an image_id")
        if self.weight == 0 or self.weight != self.weight or abs(self.weight) > 1e6:
            raise ValueError(f"weight must be a finite non-zero number, got {self.weight}")
        return self


class SearchRequest(SearchOptions):
    """One search, as `POST /api/search` takes it: every option, plus `terms`, the JSON form of
    query arithmetic (instead of `q`)."""

    terms: Annotated[list[QueryTerm], Field(min_length=1, max_length=MAX_TERMS)] | None = Field(
        default=None,
        description="Query arithmetic as JSON: the weighted sum of the terms' normalised "
        "vectors, normalised again, is searched. Instead of q.",
    )

    @classmethod
    def from_options(cls, options: SearchOptions) -> SearchRequest:
        """The request of options read from a URL or a form (the fields they set stay set, so
        a clash check or a fingerprint sees the same thing)."""
        return cls.model_validate(
            {name: getattr(options, name) for name in options.model_fields_set}
        )


def _validation_message(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        shown = repr(error.get("input"))
        got = f" (got {shown})" if error.get("input") is not None and len(shown) <= 40 else ""
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}{got}")
    return "; ".join(parts)


def parse_search_request(**values: Any) -> SearchRequest:
    """A `SearchRequest` from Python values (the CLI, library callers); a bad value is an
    `InputError`, the error users see as one sentence, not a pydantic traceback."""
    try:
        return SearchRequest.model_validate(values)
    except ValidationError as exc:
        raise InputError(f"Invalid search: {_validation_message(exc)}.") from None


class Tag(BaseModel):
    """A zero-shot tag of an image and its probability."""

    label: str
    score: float


class SearchResult(BaseModel):
    """One hit: the image's catalog data and the scores that ranked it."""

    id: int = Field(description="Catalog id of the image (also its vector id).")
    path: str = Field(description="File path as indexed.")
    score: float = Field(
        description="Final score, by which results are ordered: the ITM match probability (0-1) "
        "when reranked; else the cosine similarity (mode=vector), the full-text rank score "
        "(mode=text) or the reciprocal-rank-fusion score (mode=hybrid)."
    )
    clip_score: float = Field(
        description="Cosine similarity between the query and image CLIP embeddings.",
    )
    text_score: float | None = Field(
        default=None,
        description="Full-text relevance (mode=text/hybrid).",
    )
    rerank_score: float | None = Field(
        default=None,
        description="BLIP/BLIP-2 ITM match probability, when reranked.",
    )
    collection: str
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    taken_at: UtcDateTime | None = Field(
        default=None,
        description="When the photo was taken (ISO 8601, UTC offset when known): EXIF "
        "DateTimeOriginal, else the file's modification time; taken_at_source says which.",
    )
    taken_at_source: Literal["exif", "mtime"] | None = None
    camera: str | None = Field(default=None, description="EXIF camera make and model.")
    above_cutoff: bool | None = Field(
        default=None,
        description="With min_score or cutoff: whether this result is above the cut (results "
        "below it are not returned; this is always true then). Null without a cutoff.",
    )


class SearchResponse(BaseModel):
    """The answer to a `SearchRequest`: one page of results (best first, or by date), and where
    the time went."""

    query: str | None = Field(default=None, description="The text query, if any.")
    k: int = Field(description="The size the result set was capped at.")
    total: int = Field(
        default=0,
        description="Results in the whole result set (over all pages), after filters and cutoff.",
    )
    results: list[SearchResult]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as cursor (with the same search) for the next page; null on the last.",
    )
    cutoff_score: float | None = Field(
        default=None,
        description="With min_score or cutoff=auto: the CLIP score at which the results were cut.",
    )
    timings: dict[str, float] = Field(default_factory=dict, description="Milliseconds per stage.")


class FacetCount(BaseModel):
    """One value of a facet and how many matching images have it."""

    value: str
    count: int


class FacetsResponse(BaseModel):
    """Counts of the images matching a filter set, per collection, year, camera and tag (the
    most frequent tags), for filter chips."""

    total: int = Field(description="Images matching the filters.")
    collections: list[FacetCount]
    years: list[FacetCount]
    cameras: list[FacetCount]
    tags: list[FacetCount]
    file_types: list[FacetCount] = Field(default_factory=list)


class ImageDetail(BaseModel):
    """One image's catalog entry, whatever its status."""

    id: int
    path: str
    collection: str
    status: str = Field(description="pending, embedded or failed")
    error: str | None = Field(
        default=None,
        description="Why the file failed to index, when it did.",
    )
    size: int
    width: int | None = None
    height: int | None = None
    content_hash: str | None = None
    caption: str | None = None
    caption_model: str | None = None
    tags: list[Tag] = Field(default_factory=list)


class CollectionStats(BaseModel):
    """Counts for one collection; `index_vectors` should equal `embedded`."""

    name: str
    model_id: str
    images: int
    embedded: int
    failed: int
    pending: int
    index_vectors: int


class StatsResponse(BaseModel):
    """Counts for the data directory: the sums over `collections`, and each of them."""

    images: int
    embedded: int
    failed: int
    pending: int
    index_vectors: int
    model_id: str | None = Field(
        description="The encoder of the index (null if none, or if collections differ).",
    )
    collections: list[CollectionStats]

    def as_json(self) -> dict[str, Any]:
        return self.model_dump()


class DuplicateGroup(BaseModel):
    """Images of one collection that are near-identical to each other."""

    collection: str
    similarity: float = Field(
        description="Lowest similarity between two images that joined the group.",
    )
    ids: list[int]
    paths: list[str]


class DuplicatesResponse(BaseModel):
    """Every group of near-duplicates at `threshold`."""

    threshold: float
    groups: list[DuplicateGroup]


class AskRequest(BaseModel):
    """A question about one image (the image is named by the route)."""

    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="A question about the image.",
    )


class AnswerResponse(BaseModel):
    """The captioning/VQA model's answer and who gave it how fast."""

    id: int
    question: str
    answer: str
    model: str = Field(description="Model id of the captioning/VQA model that answered.")
    ms: float = Field(description="Time spent generating the answer.")
