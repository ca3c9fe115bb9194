"""Near-duplicate images by cosine similarity, through FAISS range search (never O(n^2) Python):
each embedded vector is queried against the index in batches, and pairs above the threshold are
joined into groups with union-find."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from search.storage.faiss_index import VectorIndex

__all__ = ["DEFAULT_DUPLICATE_THRESHOLD", "collapse_near_duplicates", "duplicate_groups"]

DEFAULT_DUPLICATE_THRESHOLD = 0.95


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            self.parent[root] = self.parent[self.parent[root]]
            root = self.parent[root]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def duplicate_groups(
    index: VectorIndex, threshold: float = DEFAULT_DUPLICATE_THRESHOLD, batch_size: int = 2048
) -> list[tuple[list[int], float]]:
    """Groups of ids whose vectors are at least `threshold` similar (transitively), each with the
    lowest similarity of the pairs that joined it; biggest groups first."""
    ids = index.ids()
    sets = _UnionFind()
    weakest: dict[tuple[int, int], float] = {}
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        vectors = np.stack([index.reconstruct(int(i)) for i in chunk]).astype(np.float32)
        limits, scores, found = index.index.range_search(vectors, float(threshold))
        for row, query_id in enumerate(chunk.tolist()):
            hits = slice(int(limits[row]), int(limits[row + 1]))
            for score, found_id in zip(scores[hits], found[hits], strict=True):
                other = int(found_id)
                if other != query_id:
                    sets.union(query_id, other)
                    weakest[(min(query_id, other), max(query_id, other))] = float(score)
    members: dict[int, list[int]] = defaultdict(list)
    for item in sets.parent:
        members[sets.find(item)].append(item)
    groups = []
    for group in members.values():
        if len(group) < 2:
            continue
        inside = set(group)
        low = min(s for (a, b), s in weakest.items() if a in inside and b in inside)
        groups.append((sorted(group), low))
    groups.sort(key=lambda g: (-len(g[0]), g[0][0]))
    return groups


def collapse_near_duplicates(
    hits: list[tuple[float, int]],
    vectors: dict[int, np.ndarray],
    threshold: float = DEFAULT_DUPLICATE_THRESHOLD,
) -> list[tuple[float, int]]:
    """Keep the best-scoring hit of each near-duplicate cluster (hits sorted by score)."""
    kept: list[tuple[float, int]] = []
    kept_vectors: list[np.ndarray] = []
    for score, image_id in hits:
        vector = vectors.get(image_id)
        if (
            vector is not None
            and kept_vectors
            and float(np.max(np.stack(kept_vectors) @ vector)) >= threshold
        ):
            continue
        kept.append((score, image_id))
        if vector is not None:
            kept_vectors.append(vector)
    return kept
