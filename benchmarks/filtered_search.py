"""Filtered vector search: milliseconds per query for filters of every selectivity, by each way
`search.query.filtering` can answer them (FAISS ID selector, over-fetch + post-filter, and the
one it chooses) against brute force (the catalog's matching ids, then numpy over their vectors).

    python -m benchmarks.filtered_search [--n 10000] [--fetch 10] [--postgres URL]

Builds `benchmarks.filter_world` in a temporary SQLite file (or the given PostgreSQL database,
which must be empty) and prints one row per filter. Every answer is checked against brute force.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.filter_world import FilterWorld, build_filter_world
from search.catalog import open_catalog
from search.query import filtering
from search.schemas import SearchFilters

FILTERS = {
    "1 image (camera)": SearchFilters(camera="leica m11"),
    "folder (~1%)": SearchFilters(folder="/photos/café", file_type=["jpeg"]),
    "folder (~5%)": SearchFilters(folder="/photos/100%_done"),
    "date range (~17%)": SearchFilters(date_from=date(2020, 1, 1), date_to=date(2020, 12, 31)),
    "camera (~30%)": SearchFilters(camera="canon"),
    "has tag (~70%)": SearchFilters(any_tag=["beach", "dog", "cat"]),
    "embedded (~100%)": SearchFilters(min_width=1),
}


def _brute_force(world: FilterWorld, f: SearchFilters, query: np.ndarray, fetch: int) -> list[int]:
    ids = world.catalog.matching_ids(f, [world.collection_id])
    if len(ids) == 0:
        return []
    scores = np.stack([world.vectors[i] for i in ids.tolist()]) @ query
    return [int(ids[i]) for i in np.argsort(-scores, kind="stable")[:fetch]]


def _timed(run: Callable[[], list[int]], repeats: int) -> tuple[float, list[int]]:
    times, result = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _ways(
    world: FilterWorld, f: SearchFilters, query: np.ndarray, fetch: int
) -> dict[str, Callable[[], list[int]]]:
    def search(forced_limit: int | None) -> Callable[[], list[int]]:
        def run() -> list[int]:
            original = filtering.selector_limit
            if forced_limit is not None:
                filtering.selector_limit = lambda *_: forced_limit  # type: ignore[assignment]
            try:
                hits = filtering.filtered_vector_hits(
                    world.catalog, world.index, query[None], f, world.collection_id, fetch
                )
            finally:
                filtering.selector_limit = original
            return [image_id for _, image_id in hits]

        return run

    return {
        "auto": search(None),
        "selector": search(10**12),
        "post-filter": search(-1),
        "brute force": lambda: _brute_force(world, f, query, fetch),
    }


def report(world: FilterWorld, fetch: int, repeats: int) -> None:
    total = world.index.count
    query = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    query /= np.linalg.norm(query)
    print(
        f"{total} vectors, fetch {fetch}, selector up to "
        f"{filtering.selector_limit(total, fetch)} matching, median of {repeats} queries, ms"
    )
    print(
        f"{'filter':<20} {'matching':>8} {'chosen':>11} {'auto':>8} {'selector':>9} "
        f"{'post-filt':>9} {'brute':>8}"
    )
    for name, f in FILTERS.items():
        matching = world.catalog.count_matching(f, [world.collection_id])
        selective = matching <= filtering.selector_limit(total, fetch)
        chosen = "selector" if selective else "post-filter"
        times = {}
        expected = _brute_force(world, f, query, fetch)
        for way, run in _ways(world, f, query, fetch).items():
            times[way], got = _timed(run, repeats)
            assert got == expected, f"{name} by {way}: {got} != {expected}"
        print(
            f"{name:<20} {matching:>8} {chosen:>11} {times['auto']:>8.2f} "
            f"{times['selector']:>9.2f} {times['post-filter']:>9.2f} {times['brute force']:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="images in the collection")
    parser.add_argument("--fetch", type=int, default=10, help="results per query")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite:///{Path(folder) / 'catalog.db'}"
        catalog = open_catalog(url, upgrade=True)
        try:
            started = time.perf_counter()
            world = build_filter_world(catalog, args.n)
            print(f"built in {time.perf_counter() - started:.1f} s ({catalog.dialect})")
            report(world, args.fetch, args.repeats)
        finally:
            catalog.close()


if __name__ == "__main__":
    main()
