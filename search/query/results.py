"""A catalog row as a search result: one builder for every listing that answers in the
`SearchResult` shape (searches and browsing), so the fields they show cannot drift apart."""

from __future__ import annotations

from search.catalog import ImageRecord
from search.schemas import SearchResult, Tag

__all__ = ["result_from_record"]


def result_from_record(
    record: ImageRecord,
    collection: str,
    *,
    score: float = 0.0,
    clip_score: float = 0.0,
    text_score: float | None = None,
    rerank_score: float | None = None,
    above_cutoff: bool | None = None,
) -> SearchResult:
    """`record` with its scores (0 for a listing with no query, such as browsing)."""
    return SearchResult(
        id=record.id,
        path=record.display_path,
        score=score,
        clip_score=clip_score,
        text_score=text_score,
        rerank_score=rerank_score,
        collection=collection,
        width=record.width,
        height=record.height,
        caption=record.caption,
        tags=[Tag(label=t["label"], score=t["score"]) for t in record.tags or []],
        taken_at=record.taken_at,
        taken_at_source=record.taken_at_source,  # type: ignore[arg-type]  # "exif" | "mtime"
        camera=record.camera,
        above_cutoff=above_cutoff,
    )
