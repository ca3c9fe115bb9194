"""Turning the vector ranking and the full-text ranking into the one ranking a search mode asks
for: `vector` (CLIP similarity), `text` (full-text score) or `hybrid` (reciprocal-rank fusion)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["RRF_K", "rank_for_mode", "reciprocal_rank_fusion"]

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[int]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked id lists into one: (id, fused score) best first.

    Each list adds `1 / (k + rank)` (rank from 1) to the score of every id it contains, so an id
    near the top of several lists beats one at the top of a single list, and no list's raw
    score scale matters. `k = 60` is the constant of Cormack, Clarke and Büttcher,
    "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning Methods"
    (SIGIR 2009); a smaller k lets the very top ranks dominate more. Ties keep the order in
    which ids were first seen. An id repeated within one list counts at its best rank.
    """
    if k < 0:
        raise ValueError(f"reciprocal_rank_fusion needs k >= 0, got k={k}.")
    scores: dict[int, float] = {}
    for ranking in rankings:
        seen: set[int] = set()
        for rank, image_id in enumerate(ranking, start=1):
            if image_id in seen:
                continue
            seen.add(image_id)
            scores[image_id] = scores.get(image_id, 0.0) + 1.0 / (k + rank)
    order = {image_id: i for i, image_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def rank_for_mode(
    mode: str, vector_hits: list[tuple[float, int]], text_scores: dict[int, float]
) -> list[tuple[float, int]]:
    """(score, image id) best first for `mode`; `vector_hits` are sorted best first and
    `text_scores` are in full-text rank order."""
    if mode == "vector":
        return vector_hits
    if mode == "text":
        return [(score, image_id) for image_id, score in text_scores.items()]
    fused = reciprocal_rank_fusion([[i for _, i in vector_hits], list(text_scores)])
    return [(score, image_id) for image_id, score in fused]
