"""cutoff=auto: the rule on known score distributions, its edge cases, its background sample,
and on the synthetic world with the trained tiny CLIP, the measured gap over the best flat
min_score on held-out queries (the same measurement as `benchmarks/cutoff_quality.py`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from indexer.quality.cutoff_evaluation import CutoffReport, evaluate_cutoffs
from search.query.cutoff import BackgroundSample, auto_cutoff
from search.storage.faiss_index import VectorIndex
from tests.world_fixtures import world_cache_dir


def _scores(
    rng: np.random.Generator, relevant: int, unrelated: int, *, gap: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """(ranked descending, background sample of 1000) for a collection of unrelated images
    around 0.1 and relevant ones ``gap`` higher; the sample holds relevant ones in proportion."""
    unrelated_scores = rng.normal(0.1, 0.03, unrelated)
    relevant_scores = rng.normal(0.1 + gap, 0.03, relevant)
    collection = np.concatenate([relevant_scores, unrelated_scores])
    background = rng.choice(collection, size=min(1000, len(collection)), replace=False)
    return np.sort(collection)[::-1], background


def _index(vectors: np.ndarray) -> VectorIndex:
    index = VectorIndex(vectors.shape[1])
    index.add(np.arange(1, len(vectors) + 1, dtype=np.int64) * 10, vectors)
    return index


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("relevant", [1, 5, 20, 200, 600])
def test_auto_keeps_the_relevant_mode_whatever_its_size(relevant: int) -> None:
    ranked, background = _scores(np.random.default_rng(relevant), relevant, 2000 - relevant)
    assert auto_cutoff(ranked, background) == relevant


@pytest.mark.parametrize("offset", [-0.3, 0.0, 0.45])
def test_auto_follows_the_query_scale_where_a_flat_threshold_cannot(offset: float) -> None:
    ranked, background = _scores(np.random.default_rng(7), 30, 1970)
    assert auto_cutoff(ranked + offset, background + offset) == 30


def test_a_query_matching_nothing_keeps_only_the_far_tail() -> None:
    ranked, background = _scores(np.random.default_rng(3), 0, 5000)
    assert 1 <= auto_cutoff(ranked, background) <= 50  # the top 1% of pure noise at most


def test_auto_is_between_one_and_all_on_any_input() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 50))
        ranked = np.sort(rng.normal(rng.uniform(-1, 1), rng.uniform(0, 0.3), n))[::-1]
        background = rng.normal(rng.uniform(-1, 1), rng.uniform(0, 0.3), int(rng.integers(1, 50)))
        keep = auto_cutoff(ranked, background)
        assert 1 <= keep <= n, (keep, n)


def test_degenerate_inputs() -> None:
    assert auto_cutoff(np.zeros(0), np.array([0.1, 0.2])) == 0
    assert auto_cutoff(np.array([0.3]), np.array([0.3])) == 1  # one vector: itself
    assert auto_cutoff(np.array([0.1, 0.0]), np.array([0.5, 0.6])) == 1  # below the background
    assert auto_cutoff(np.full(10, 0.2), np.full(10, 0.2)) == 1  # all equal: nothing stands out
    assert auto_cutoff(np.array([0.5, 0.4]), np.zeros(0)) == 2  # no background: cut nothing
    ranked, background = _scores(np.random.default_rng(5), 10, 990)
    background[:50] = np.nan
    assert auto_cutoff(ranked, background) == 10  # NaN in the sample is ignored


def test_a_mostly_tied_background_still_has_a_spread() -> None:
    background = np.concatenate([np.full(800, 0.1), np.linspace(0.0, 0.2, 200)])
    ranked = np.sort(np.concatenate([np.full(8, 0.6), background]))[::-1]
    assert auto_cutoff(ranked, background) == 8


def test_background_sample_of_a_small_collection_is_all_of_it() -> None:
    rng = np.random.default_rng(0)
    vectors = _unit_vectors(rng, 5, 16)
    sample = BackgroundSample.from_index(_index(vectors), size=1000, seed=0)
    assert sample.size == 5
    np.testing.assert_allclose(np.sort(sample.scores(vectors[0])), np.sort(vectors @ vectors[0]))
    ranked = np.sort(vectors @ vectors[0])[::-1]
    assert 1 <= auto_cutoff(ranked, sample.scores(vectors[0])) <= 5


def test_background_sample_is_a_fixed_sample_of_the_index() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit_vectors(rng, 300, 8)
    index = _index(vectors)
    first = BackgroundSample.from_index(index, size=50, seed=4)
    again = BackgroundSample.from_index(index, size=50, seed=4)
    assert first.size == 50
    np.testing.assert_array_equal(first.vectors, again.vectors)
    rows = {tuple(np.round(v, 6)) for v in vectors}
    assert all(tuple(np.round(v, 6)) in rows for v in first.vectors)
    assert BackgroundSample.from_index(VectorIndex(8)).size == 0
    assert first.scores(vectors[:1]).shape == (50,)  # a (1, d) query works as well as (d,)


def test_scoring_and_cutting_take_under_a_millisecond() -> None:
    rng = np.random.default_rng(2)
    sample = BackgroundSample(vectors=_unit_vectors(rng, 1000, 512))
    query = _unit_vectors(rng, 1, 512)[0]
    ranked = np.sort(rng.normal(0.2, 0.05, 1000))[::-1]
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        auto_cutoff(ranked, sample.scores(query))
        timings.append(time.perf_counter() - started)
    # one millisecond on an idle machine; the bound leaves room for a busy CI runner
    assert float(np.median(timings)) < 0.005, timings


@pytest.fixture(scope="module")
def world_report(trained_world: tuple[Path, Path]) -> CutoffReport:
    _, model_dir = trained_world
    return evaluate_cutoffs(world_cache_dir(), model_dir)


@pytest.mark.slow
def test_auto_on_held_out_world_queries_is_never_empty_and_no_worse_than_flat(
    world_report: CutoffReport,
) -> None:
    auto, flat = world_report.held_out("auto"), world_report.held_out("global")
    assert not auto.empty_with_relevant_top5, auto
    assert auto.f1 >= flat.f1 - 0.02, (auto, flat, world_report.threshold)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 13's goal, not met yet: on the tiny CLIP, even the per-query best cut is only "
    "~0.09 F1 above the best flat threshold (see benchmarks/cutoff_quality.py)",
)
def test_auto_beats_the_best_flat_threshold_by_ten_points_on_held_out_world_queries(
    world_report: CutoffReport,
) -> None:
    auto, flat = world_report.held_out("auto"), world_report.held_out("global")
    assert auto.f1 >= flat.f1 + 0.10, (auto, flat, world_report.threshold)
