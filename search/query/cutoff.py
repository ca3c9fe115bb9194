"""``cutoff=auto``: a per-query relevance cutoff, placed between this query's background and its
best match.

One flat ``min_score`` cannot work on real CLIP models: the score scale moves from query to
query, so the best match for one query scores below the junk of another (Immich #5996, rclip
#207). A cut that is invariant to that shift and stretch needs two reference points per query.
Each loaded index keeps a :class:`BackgroundSample`, a fixed random sample of its vectors;
scoring the query against it (one small matrix-vector product) gives the median score of this
collection's images for this query, which the many unrelated images dominate: the *background*.
The best ranked match gives the other end. :func:`auto_cutoff` keeps the results scoring at
least ``fraction`` of the way from the background median up to the best match, then moves the
cut to the widest gap between consecutive ranked scores within a tenth of that span around the
line, where a relevant group and the rest part most clearly. The best match is always kept, so
the result is never empty; the response says where the cut fell.

The one tunable is ``fraction`` (:data:`DEFAULT_FRACTION`), chosen on the train queries of
``benchmarks/cutoff_quality.py``; larger keeps fewer, surer results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search.storage.faiss_index import VectorIndex

__all__ = [
    "DEFAULT_BACKGROUND_SEED",
    "DEFAULT_BACKGROUND_SIZE",
    "DEFAULT_FRACTION",
    "BackgroundSample",
    "auto_cutoff",
]

DEFAULT_FRACTION = 0.7
"""How far from the background median (0) to the best match (1) a result must score to be kept."""

DEFAULT_BACKGROUND_SIZE = 1000
"""Vectors in a background sample: enough for a stable median, < 1 ms to score."""

DEFAULT_BACKGROUND_SEED = 0
"""Seed of the sample: the same index always gives the same cut for the same query."""

_GAP_WINDOW = 0.1  # the cut may move to a gap within this share of the span around the line
_MIN_SPAN = 1e-6  # a best match no higher than the background than this: nothing stands out


@dataclass(frozen=True)
class BackgroundSample:
    """A fixed random sample of one index's vectors, to score a query against its background.

    Build it once per loaded index with :meth:`from_index`; rebuild it when the index grows a
    lot (a sample of the old vectors still describes the background well, so this is not urgent).
    """

    vectors: np.ndarray  # (n, d) float32, L2-normalised like the index

    @classmethod
    def from_index(
        cls,
        index: VectorIndex,
        *,
        size: int = DEFAULT_BACKGROUND_SIZE,
        seed: int = DEFAULT_BACKGROUND_SEED,
    ) -> BackgroundSample:
        """Sample ``size`` vectors (all of them when the index holds fewer) with ``seed``."""
        ids = index.ids()
        if len(ids) > size:
            rng = np.random.default_rng(seed)
            ids = np.sort(rng.choice(ids, size=size, replace=False))
        vectors = np.empty((len(ids), index.dim), dtype=np.float32)
        for row, image_id in enumerate(ids):
            vectors[row] = index.reconstruct(int(image_id))
        return cls(vectors=vectors)

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    def scores(self, query_vector: np.ndarray) -> np.ndarray:
        """Cosine scores of the query (shape ``(d,)`` or ``(1, d)``) against the sample."""
        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        # einsum runs one plain loop (~0.35 ms for 1000 x 512); `@` goes to multi-threaded BLAS,
        # which was measured at 12 ms per call when other processes kept the cores busy.
        scores: np.ndarray = np.einsum("ij,j->i", self.vectors, query)
        return scores


def _widest_gap_near(ranked: np.ndarray, line: float, window: float) -> int | None:
    """Results to keep when cutting at the widest gap between consecutive scores that touches
    ``[line - window, line + window]``, or None when no gap does."""
    upper, lower = ranked[:-1], ranked[1:]  # the cut after position i splits upper[i], lower[i]
    near = np.flatnonzero((upper >= line - window) & (lower <= line + window))
    if len(near) == 0:
        return None
    return int(near[np.argmax(upper[near] - lower[near])]) + 1


def auto_cutoff(
    ranked_scores: np.ndarray, background: np.ndarray, *, fraction: float = DEFAULT_FRACTION
) -> int:
    """How many of ``ranked_scores`` (descending) to keep, given this query's ``background``.

    ``background`` is :meth:`BackgroundSample.scores` for the same query vector. The result is
    between 1 and ``len(ranked_scores)`` (0 only for no results): see the module docstring.
    """
    ranked = np.asarray(ranked_scores, dtype=np.float64).reshape(-1)
    if len(ranked) <= 1:
        return len(ranked)
    sample = np.asarray(background, dtype=np.float64).reshape(-1)
    sample = sample[np.isfinite(sample)]
    if len(sample) == 0:
        return len(ranked)  # nothing to compare with: cut nothing
    center = float(np.median(sample))
    span = float(ranked[0]) - center
    if span < _MIN_SPAN:
        return 1  # the best match is no better than the background: keep only it
    line = center + fraction * span
    at_gap = _widest_gap_near(ranked, line, _GAP_WINDOW * span)
    keep = at_gap if at_gap is not None else int(np.count_nonzero(ranked >= line))
    return max(1, keep)
