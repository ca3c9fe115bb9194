"""Measure a relevance cutoff where the truth is exact: attribute queries on the synthetic world.

``cutoff=auto`` (:mod:`search.query.cutoff`) promises to keep, per query, the results that are
relevant and drop the rest. On real photos "relevant" is a matter of opinion; on the synthetic
world it is not: "a blue circle on a striped background" is relevant to exactly the images whose
attributes say blue, circle and striped. So this module draws a fresh collection of world images
(a seed the tiny CLIP never saw pixels of), embeds it with the trained tiny CLIP into a
:class:`VectorIndex`, and asks attribute queries of one to three attributes. Each query is ranked
over the whole collection, best first, and both cutoffs are judged on the kept head of that
ranking: precision, recall and F1 against the exact relevant set.

The queries are split in two with a fixed seed, within each kind (one, two or three attributes):
the flat ``min_score`` threshold a user would pick is chosen to maximise mean F1 on the train
half, and both cutoffs are reported on the held-out half, which neither was tuned on.
``benchmarks/cutoff_quality.py`` prints the table; ``tests/test_cutoff.py`` asserts the gap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.quality.synthetic_world import (
    BACKGROUNDS,
    COLOURS,
    COUNTS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    SIZES,
    WORLD_VERSION,
    WorldItem,
    generate_world,
    load_world,
)
from indexer.quality.tiny_clip_training import build_atomically
from search.models import load_encoder
from search.query.cutoff import BackgroundSample, auto_cutoff
from search.storage.faiss_index import VectorIndex

__all__ = [
    "COLLECTION_SEED",
    "COLLECTION_SIZE",
    "SPLIT_SEED",
    "AttributeQuery",
    "CutoffQuality",
    "CutoffReport",
    "CutoffRow",
    "RankedQuery",
    "attribute_queries",
    "auto_keep",
    "best_global_threshold",
    "best_keep",
    "compare_cutoffs",
    "ensure_cutoff_collection",
    "evaluate_cutoffs",
    "kept_quality",
    "mean_quality",
    "query_text",
    "rank_queries",
    "split_queries",
    "threshold_keep",
]

COLLECTION_SEED = 1
"""World seed of the evaluated collection; the tiny CLIP is trained on the seed-0 world."""

COLLECTION_SIZE = 2000
"""Images in the evaluated collection: twice the background sample, so it is a true sample."""

SPLIT_SEED = 13
"""Seed of the train / held-out split of the queries."""

_BATCH = 256
_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
_POSITION_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}

Attributes = dict[str, str | int]


@dataclass(frozen=True)
class AttributeQuery:
    """A query text and the attributes an image must have to be relevant to it."""

    text: str
    attributes: Attributes

    @property
    def kind(self) -> str:
        return f"{len(self.attributes)}-attribute"


@dataclass(frozen=True)
class RankedQuery:
    """One query ranked over the whole collection: what a cutoff sees, and the truth."""

    query: AttributeQuery
    scores: np.ndarray  # (n,) descending cosine scores over every image
    relevant: np.ndarray  # (n,) bool: is the image at each rank relevant
    background: np.ndarray  # the query's scores against the collection's background sample


@dataclass(frozen=True)
class CutoffQuality:
    """Precision, recall and F1 of a kept set (0 for an empty one), and whether it was empty
    although a relevant image was in the top 5."""

    precision: float
    recall: float
    f1: float
    empty_with_relevant_top5: bool


def _noun_phrase(attributes: Attributes) -> str:
    count = int(attributes.get("count", 1))
    words = [str(attributes[a]) for a in ("size", "colour") if a in attributes]
    shape = str(attributes.get("shape", "shape"))
    if count > 1:
        shape = "crosses" if shape == "cross" else shape + "s"
    determiner = _COUNT_WORDS[count] if "count" in attributes else "a"
    if determiner == "a" and [*words, shape][0][0] in "aeiou":
        determiner = "an"
    return " ".join([determiner, *words, shape])


def query_text(attributes: Attributes) -> str:
    """The query in the captions' own grammar, naming only ``attributes``: "a red shape",
    "a blue circle on a striped background", "two shapes at the top on a gray background"."""
    parts = [_noun_phrase(attributes)]
    if "position" in attributes:
        parts.append(_POSITION_PHRASES[str(attributes["position"])])
    if "background" in attributes or "pattern" in attributes:
        words = [str(attributes[a]) for a in ("pattern", "background") if a in attributes]
        parts.append(f"on a {' '.join(words)} background")
    return " ".join(parts)


_VALUES: dict[str, Sequence[str | int]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "size": SIZES,
    "count": COUNTS,
    "position": POSITIONS,
    "background": tuple(BACKGROUNDS),
    "pattern": PATTERNS,
}
# Which attribute combinations are asked: every single attribute, and the pairs and triples a
# person would type (what, what colour, on what background).
_QUERY_KINDS: tuple[tuple[str, ...], ...] = (
    *((name,) for name in _VALUES),
    ("colour", "shape"),
    ("colour", "background"),
    ("shape", "pattern"),
    ("size", "shape"),
    ("count", "colour"),
    ("colour", "shape", "pattern"),
    ("colour", "shape", "background"),
    ("count", "colour", "shape"),
)


def attribute_queries() -> list[AttributeQuery]:
    """Every query of :data:`_QUERY_KINDS`, in a fixed order (shape colour = background is
    skipped: the world never draws it)."""
    queries = []
    for names in _QUERY_KINDS:
        for values in itertools.product(*(_VALUES[name] for name in names)):
            attributes = dict(zip(names, values, strict=True))
            if attributes.get("colour", "") == attributes.get("background"):
                continue
            queries.append(AttributeQuery(text=query_text(attributes), attributes=attributes))
    return queries


def split_queries(
    queries: Sequence[AttributeQuery], *, seed: int = SPLIT_SEED
) -> tuple[list[AttributeQuery], list[AttributeQuery]]:
    """Half of each kind (1, 2, 3 attributes) to train on, the other half held out."""
    rng = np.random.default_rng(seed)
    train: list[AttributeQuery] = []
    held_out: list[AttributeQuery] = []
    for kind in sorted({q.kind for q in queries}):
        of_kind = [q for q in queries if q.kind == kind]
        order = rng.permutation(len(of_kind))
        half = len(of_kind) // 2
        train.extend(of_kind[i] for i in order[:half])
        held_out.extend(of_kind[i] for i in order[half:])
    return train, held_out


def _collection_dir(cache_dir: Path) -> Path:
    return cache_dir / f"cutoff-world-v{WORLD_VERSION}-seed{COLLECTION_SEED}-n{COLLECTION_SIZE}"


def ensure_cutoff_collection(cache_dir: Path) -> list[WorldItem]:
    """The evaluated images: a world drawn with :data:`COLLECTION_SEED`, kept in ``cache_dir``."""
    folder = _collection_dir(cache_dir)
    if not folder.is_dir():
        build_atomically(
            folder,
            lambda out: generate_world(
                out, seed=COLLECTION_SEED, n_train=0, n_test=COLLECTION_SIZE, captions_per_image=1
            ),
        )
    return load_world(folder).test


def _embed_collection(model_spec: str, root: Path, items: Sequence[WorldItem]) -> VectorIndex:
    encoder = load_encoder(model_spec, "cpu")
    index = VectorIndex(encoder.dim)
    for start in range(0, len(items), _BATCH):
        batch = items[start : start + _BATCH]
        images = []
        for item in batch:
            with Image.open(root / item.file_name) as image:
                images.append(image.convert("RGB"))
        ids = np.arange(start, start + len(batch), dtype=np.int64)
        index.add(ids, encoder.encode_images(images))
    return index


def rank_queries(
    cache_dir: Path, model_dir: Path, queries: Sequence[AttributeQuery]
) -> list[RankedQuery]:
    """Embed the evaluated collection with the tiny CLIP in ``model_dir`` and rank every query
    over all of it (index ids are positions in the collection), with its background scores."""
    items = ensure_cutoff_collection(cache_dir)
    root = _collection_dir(cache_dir)
    spec = f"local-dir:{model_dir}"
    index = _embed_collection(spec, root, items)
    background = BackgroundSample.from_index(index)
    texts = load_encoder(spec, "cpu").encode_texts([q.text for q in queries])
    scores, ids = index.search(texts, index.count)
    ranked = []
    for row, query in enumerate(queries):
        truth = np.array(
            [
                all(items[i].attributes[a] == v for a, v in query.attributes.items())
                for i in ids[row]
            ]
        )
        ranked.append(RankedQuery(query, scores[row], truth, background.scores(texts[row])))
    return ranked


def kept_quality(ranked: RankedQuery, keep: int) -> CutoffQuality:
    """Quality of keeping the first ``keep`` results of ``ranked``."""
    hits = int(np.count_nonzero(ranked.relevant[:keep]))
    total = int(np.count_nonzero(ranked.relevant))
    precision = hits / keep if keep else 0.0
    recall = hits / total if total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    empty = keep == 0 and bool(ranked.relevant[:5].any())
    return CutoffQuality(precision, recall, f1, empty)


def mean_quality(qualities: Sequence[CutoffQuality]) -> CutoffQuality:
    """Mean precision, recall and F1; ``empty_with_relevant_top5`` if any query had it."""
    return CutoffQuality(
        precision=float(np.mean([q.precision for q in qualities])),
        recall=float(np.mean([q.recall for q in qualities])),
        f1=float(np.mean([q.f1 for q in qualities])),
        empty_with_relevant_top5=any(q.empty_with_relevant_top5 for q in qualities),
    )


def threshold_keep(threshold: float) -> Callable[[RankedQuery], int]:
    """A flat ``min_score``: keep every result scoring at least ``threshold``."""
    return lambda ranked: int(np.count_nonzero(ranked.scores >= threshold))


def auto_keep(fraction: float | None = None) -> Callable[[RankedQuery], int]:
    """``cutoff=auto`` with its default tunable, or with ``fraction``."""
    if fraction is None:
        return lambda ranked: auto_cutoff(ranked.scores, ranked.background)
    return lambda ranked: auto_cutoff(ranked.scores, ranked.background, fraction=fraction)


def best_keep(ranked: RankedQuery) -> int:
    """The cut with the best F1 for this query, knowing the truth: what no rule can beat."""
    hits = np.cumsum(ranked.relevant)
    kept = np.arange(1, len(hits) + 1)
    total = int(np.count_nonzero(ranked.relevant))
    return int(np.argmax(2.0 * hits / (kept + total))) + 1


def _f1_at_thresholds(ranked: RankedQuery, thresholds: np.ndarray) -> np.ndarray:
    """F1 of a flat threshold at each of ``thresholds``: F1 = 2 * hits / (kept + relevant)."""
    kept = np.searchsorted(-ranked.scores, -thresholds, side="right")  # scores >= threshold
    hits = np.concatenate([[0], np.cumsum(ranked.relevant)])[kept]
    total = int(np.count_nonzero(ranked.relevant))
    return np.asarray(2.0 * hits / np.maximum(kept + total, 1), dtype=np.float64)


def best_global_threshold(train: Sequence[RankedQuery], *, steps: int = 2000) -> float:
    """The flat threshold with the best mean F1 over ``train``, from an even grid of ``steps``
    over the range of their scores (finer than any difference it could make)."""
    low = min(float(r.scores.min()) for r in train)
    high = max(float(r.scores.max()) for r in train)
    grid = np.linspace(low, high, steps)
    mean_f1 = np.mean([_f1_at_thresholds(r, grid) for r in train], axis=0)
    return float(grid[int(np.argmax(mean_f1))])


@dataclass(frozen=True)
class CutoffRow:
    """One line of the report: a cutoff's mean quality over one split's queries of one kind."""

    split: str  # "train" or "held-out"
    kind: str  # "all" or "N-attribute"
    method: str
    queries: int
    quality: CutoffQuality


@dataclass(frozen=True)
class CutoffReport:
    """Auto against the best flat threshold (chosen on train), per split and query kind."""

    threshold: float
    rows: list[CutoffRow]

    def held_out(self, method: str) -> CutoffQuality:
        """The mean held-out quality of ``method`` ("auto" or "global") over all its queries."""
        prefix = {"auto": "auto", "global": "min_score"}[method]
        for row in self.rows:
            if row.split == "held-out" and row.kind == "all" and row.method.startswith(prefix):
                return row.quality
        raise KeyError(method)


def compare_cutoffs(
    train: Sequence[RankedQuery],
    held_out: Sequence[RankedQuery],
    *,
    fraction: float | None = None,
) -> CutoffReport:
    """Choose the flat threshold on ``train``, then judge it and ``cutoff=auto`` on both."""
    threshold = best_global_threshold(train)
    methods = {
        "auto" if fraction is None else f"auto fraction={fraction:g}": auto_keep(fraction),
        f"min_score={threshold:.3f}": threshold_keep(threshold),
        "best per query (ceiling)": best_keep,
    }
    rows = []
    for split, ranked in (("train", train), ("held-out", held_out)):
        kinds = ["all", *sorted({r.query.kind for r in ranked})]
        for kind, (method, keep) in itertools.product(kinds, methods.items()):
            chosen = [r for r in ranked if kind in ("all", r.query.kind)]
            quality = mean_quality([kept_quality(r, keep(r)) for r in chosen])
            rows.append(CutoffRow(split, kind, method, len(chosen), quality))
    return CutoffReport(threshold=threshold, rows=rows)


def evaluate_cutoffs(
    cache_dir: Path, model_dir: Path, *, fraction: float | None = None
) -> CutoffReport:
    """The whole measurement: draw and embed the collection, rank the split queries, compare."""
    train, held_out = split_queries(attribute_queries())
    ranked = rank_queries(cache_dir, model_dir, [*train, *held_out])
    return compare_cutoffs(ranked[: len(train)], ranked[len(train) :], fraction=fraction)
