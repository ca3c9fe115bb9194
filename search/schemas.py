"""The shapes search results and image details take, shared by the engine, the JSON API, the
HTML pages and the CLI's `--json` output (one definition, so they cannot drift apart)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "AnswerResponse",
    "AskRequest",
    "CollectionStats",
    "DuplicateGroup",
    "DuplicatesResponse",
    "ImageDetail",
    "SearchResponse",
    "SearchResult",
    "StatsResponse",
    "Tag",
]


class Tag(BaseModel):
    label: str
    score: float


class SearchResult(BaseModel):
    id: int = Field(description="Catalog id of the image (also its vector id).")
    path: str = Field(description="File path as indexed.")
    score: float = Field(
        description="Final score, by which results are ordered: the ITM match probability (0-1) when "
        "reranked; else the cosine similarity (mode=vector), the full-text rank score (mode=text) or "
        "the reciprocal-rank-fusion score (mode=hybrid)."
    )
    clip_score: float = Field(description="Cosine similarity between the query and image CLIP embeddings.")
    text_score: float | None = Field(default=None, description="Full-text relevance (mode=text/hybrid).")
    rerank_score: float | None = Field(default=None, description="BLIP/BLIP-2 ITM match probability, when reranked.")
    collection: str
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    file_url: str
    thumbnail_url: str


class SearchResponse(BaseModel):
    query: str | None = Field(default=None, description="The text query, if any.")
    k: int
    results: list[SearchResult]
    timings: dict[str, float] = Field(default_factory=dict, description="Milliseconds per stage.")


class ImageDetail(BaseModel):
    id: int
    path: str
    collection: str
    status: str = Field(description="pending, embedded or failed")
    error: str | None = Field(default=None, description="Why the file failed to index, when it did.")
    size: int
    width: int | None = None
    height: int | None = None
    content_hash: str | None = None
    caption: str | None = None
    caption_model: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    file_url: str
    thumbnail_url: str
    similar_url: str


class CollectionStats(BaseModel):
    name: str
    model_id: str
    images: int
    embedded: int
    failed: int
    pending: int
    index_vectors: int


class StatsResponse(BaseModel):
    images: int
    embedded: int
    failed: int
    pending: int
    index_vectors: int
    model_id: str | None = Field(description="The encoder of the index (null if none, or if collections differ).")
    collections: list[CollectionStats]

    def as_json(self) -> dict[str, Any]:
        return self.model_dump()


class DuplicateGroup(BaseModel):
    collection: str
    similarity: float = Field(description="Lowest similarity between two images that joined the group.")
    ids: list[int]
    paths: list[str]


class DuplicatesResponse(BaseModel):
    threshold: float
    groups: list[DuplicateGroup]


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=300, description="A question about the image.")


class AnswerResponse(BaseModel):
    id: int
    question: str
    answer: str
    model: str = Field(description="Model id of the captioning/VQA model that answered.")
    ms: float = Field(description="Time spent generating the answer.")
