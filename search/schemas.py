"""The shapes of what goes into and out of the engine, shared by the CLI, the JSON API and the
HTML pages (one definition, so they cannot drift apart).

`SearchRequest` is the one description of a search: every front end builds it and hands it to
`SearchEngine.search`, and every limit on a search (query length, k, rerank_k, the modes) is
declared on it, once. The result models carry ids and data only: the web layer adds the URLs
(`web.responses`), so the engine knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from search.errors import InputError

__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MAX_QUESTION_CHARS",
    "MAX_RERANK_K",
    "MAX_TAG_CHARS",
    "SEARCH_MODES",
    "AnswerResponse",
    "AskRequest",
    "CollectionStats",
    "DuplicateGroup",
    "DuplicatesResponse",
    "ImageDetail",
    "ResultCount",
    "SearchMode",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "StatsResponse",
    "Tag",
    "parse_search_request",
]

MAX_K = 1000
MAX_RERANK_K = 512
MAX_QUERY_CHARS = 1000
MAX_TAG_CHARS = 200
MAX_QUESTION_CHARS = 300

SearchMode = Literal["vector", "text", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)

ResultCount = Annotated[int, Field(ge=1, le=MAX_K)]
"""A number of results: what `SearchRequest.k` accepts, for routes that take only k."""


class SearchRequest(BaseModel):
    """One search: a text query, or an image id, or (with image bytes passed alongside) an
    example image, plus the options that shape the answer. Validation here is the only place
    the limits live; the engine trusts a built request."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    query: str | None = Field(
        default=None,
        validation_alias="q",
        max_length=MAX_QUERY_CHARS,
        description="Text query (blanks at either end are dropped). A search needs one of a "
        "text query, an image_id or an example image.",
    )
    image_id: int | None = Field(
        default=None,
        description="Find images like this catalog image instead of a text query.",
    )
    k: ResultCount | None = Field(
        default=None,
        description="Number of results (default PIXSEEK_DEFAULT_K).",
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
    tag: str | None = Field(
        default=None,
        max_length=MAX_TAG_CHARS,
        description="Only images with this tag.",
    )

    @field_validator("query", mode="before")
    @classmethod
    def _strip_query(cls, value: Any) -> Any:
        """The length limit counts what is searched, so blanks are dropped first; a blank
        query stays "" and the engine says it is empty (a page re-shows its form then)."""
        return value.strip() if isinstance(value, str) else value

    @field_validator("collection", "model", "tag", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        """An empty form field ("all collections", no tag) means "not given"."""
        if isinstance(value, str):
            return value.strip() or None
        return value


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


class SearchResponse(BaseModel):
    """The answer to a `SearchRequest`: results best first, and where the time went."""

    query: str | None = Field(default=None, description="The text query, if any.")
    k: int
    results: list[SearchResult]
    timings: dict[str, float] = Field(default_factory=dict, description="Milliseconds per stage.")


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
