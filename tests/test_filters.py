"""Exact metadata filters, checked against brute force on SQLite and PostgreSQL: every filter's
matching set (count, ids, candidate check), and the filtered vector search, by both of its ways
(FAISS ID selector, over-fetch + post-filter) and as chosen, equals numpy over the matching set,
including a filter that one image in 10,000 matches. Facets count what the filters select."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest

from benchmarks.filter_world import RARE_CAMERA, FilterWorld, Row, build_filter_world
from search.catalog import open_catalog
from search.catalog.filters import day_end, day_start
from search.images.metadata import camera_label
from search.images.paths import display_path
from search.query import filtering
from search.query.filtering import filtered_vector_hits
from search.schemas import SearchFilters
from search.storage.faiss_index import VectorIndex
from tests.conftest import create_postgres_database, drop_postgres_database

N_IMAGES = 10_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FilterWorld]:
    if request.param == "sqlite":
        url, server = f"sqlite:///{tmp_path_factory.mktemp('filters') / 'catalog.db'}", None
    else:
        server = request.getfixturevalue("postgres_server")
        url = create_postgres_database(server)
    catalog = open_catalog(url, upgrade=True)
    try:
        yield build_filter_world(catalog, N_IMAGES)
    finally:
        catalog.close()
        if server is not None:
            drop_postgres_database(server, url)


# -- the meaning of each filter, written out independently of the SQL -------------------------


def _in_folder(row: Row, folder: str) -> bool:
    shown = display_path(row.path)
    base = folder.rstrip("/")
    return shown.startswith(base + "/") or (
        base.lower().endswith(".tar") and shown.startswith(base + "#")
    )


def _labels(row: Row) -> set[str]:
    return {tag["label"].lower() for tag in row.tags}


def _size_ok(row: Row, f: SearchFilters) -> bool:
    w, h = row.width, row.height
    checks = [
        (f.min_width, lambda: w >= f.min_width),
        (f.max_width, lambda: w <= f.max_width),
        (f.min_height, lambda: h >= f.min_height),
        (f.max_height, lambda: h <= f.max_height),
        (f.min_megapixels, lambda: w * h >= f.min_megapixels * 1e6),
        (f.max_megapixels, lambda: w * h <= f.max_megapixels * 1e6),
        (
            f.orientation,
            lambda: {"landscape": w > h, "portrait": w < h, "square": w == h}[f.orientation],
        ),
    ]
    wanted = [check for bound, check in checks if bound is not None]
    if wanted and (w is None or h is None):
        return False
    return all(check() for check in wanted)


def _matches(row: Row, f: SearchFilters) -> bool:  # noqa: PLR0911 - one line per filter
    if row.status != "embedded":
        return False
    if f.folder is not None and not _in_folder(row, f.folder):
        return False
    if f.date_from is not None and not (row.taken_at and row.taken_at >= day_start(f.date_from)):
        return False
    if f.date_to is not None and not (row.taken_at and row.taken_at < day_end(f.date_to)):
        return False
    camera = f"{row.camera_make or ''} {row.camera_model or ''}".lower()
    if f.camera is not None and f.camera.lower() not in camera:
        return False
    labels = _labels(row)
    if not {t.lower() for t in f.tag} <= labels:
        return False
    if f.any_tag and not {t.lower() for t in f.any_tag} & labels:
        return False
    types = {{"jpg": "jpeg"}.get(t.lower(), t.lower()) for t in f.file_type}
    if types and row.file_type not in types:
        return False
    if f.has_caption is not None and bool(row.caption) != f.has_caption:
        return False
    return _size_ok(row, f)


FILTERS = {
    "none": SearchFilters(),
    "folder": SearchFilters(folder="/photos/rome"),
    "folder trailing slash": SearchFilters(folder="/photos/rome/"),
    "folder case": SearchFilters(folder="/photos/Rome"),
    "folder parent": SearchFilters(folder="/photos/paris"),
    "folder like wildcards": SearchFilters(folder="/photos/100%_done"),
    "folder non-ascii with fsbytes names": SearchFilters(folder="/photos/café"),
    "folder of a shard": SearchFilters(folder="/data/shard-000.tar"),
    "folder of shards": SearchFilters(folder="/data"),
    "date range": SearchFilters(date_from=date(2020, 3, 1), date_to=date(2021, 2, 28)),
    "one day (edges)": SearchFilters(date_from=date(2022, 6, 15), date_to=date(2022, 6, 15)),
    "date from": SearchFilters(date_from=date(2024, 6, 1)),
    "camera make": SearchFilters(camera="canon"),
    "camera label": SearchFilters(camera="Apple iPhone"),
    "camera 1 in 10,000": SearchFilters(camera="leica m11"),
    "all of tags": SearchFilters(tag=["beach", "SUNSET"]),
    "any of tags": SearchFilters(any_tag=["dog", "cat"]),
    "size": SearchFilters(min_width=1000, max_width=3000, min_height=500),
    "megapixels": SearchFilters(min_megapixels=4.5, max_megapixels=12.25),
    "square": SearchFilters(orientation="square"),
    "portrait": SearchFilters(orientation="portrait"),
    "file types": SearchFilters(file_type=["JPG", "webp"]),
    "captioned": SearchFilters(has_caption=True),
    "uncaptioned": SearchFilters(has_caption=False),
    "combined": SearchFilters(
        folder="/photos/paris",
        date_from=date(2020, 1, 1),
        camera="nikon",
        any_tag=["snow", "city"],
        orientation="landscape",
    ),
    "nothing matches": SearchFilters(camera="hasselblad"),
}


def _expected_ids(world: FilterWorld, f: SearchFilters, collection_ids: list[int]) -> set[int]:
    return {r.id for r in world.rows if r.collection_id in collection_ids and _matches(r, f)}


@pytest.mark.parametrize("name", list(FILTERS))
def test_matching_set_equals_brute_force(world: FilterWorld, name: str) -> None:
    f, catalog = FILTERS[name], world.catalog
    collections = [world.collection_id, world.other_collection_id]
    expected = _expected_ids(world, f, collections)
    assert catalog.count_matching(f, collections) == len(expected)
    assert set(catalog.matching_ids(f, collections).tolist()) == expected
    only_main = _expected_ids(world, f, [world.collection_id])
    assert set(catalog.matching_ids(f, [world.collection_id]).tolist()) == only_main
    sample = random.Random(name).sample([r.id for r in world.rows], 700)
    assert catalog.filter_ids(f, sample) == expected & set(sample)
    assert catalog.count_matching(f, []) == 0


def test_rare_filter_matches_one_image_in_ten_thousand(world: FilterWorld) -> None:
    f = FILTERS["camera 1 in 10,000"]
    (rare,) = [r for r in world.rows if (r.camera_make, r.camera_model) == RARE_CAMERA]
    assert world.catalog.matching_ids(f, [world.collection_id]).tolist() == [rare.id]
    assert filtering.selector_limit(world.index.count, 10) >= 1
    query = world.vectors[rare.id] * -1  # the rare image is the worst match of all
    hits = filtered_vector_hits(world.catalog, world.index, query[None], f, world.collection_id, 10)
    assert [image_id for _, image_id in hits] == [rare.id]


def _brute_force(world: FilterWorld, query: np.ndarray, ids: set[int], k: int) -> list[int]:
    in_index = set(world.index.ids().tolist())
    ordered = sorted(ids & in_index)
    if not ordered:
        return []
    scores = np.stack([world.vectors[i] for i in ordered]) @ query
    best = np.argsort(-scores, kind="stable")[:k]
    return [ordered[i] for i in best]


@pytest.fixture(params=["auto", "selector", "post-filter"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "auto":  # every filter through the one way (-1: none is selective)
        limit = 10**9 if request.param == "selector" else -1
        monkeypatch.setattr(filtering, "selector_limit", lambda *_: limit)
    return str(request.param)


@pytest.mark.parametrize("fetch", [1, 10, 200])
@pytest.mark.parametrize("name", list(FILTERS))
def test_filtered_search_equals_brute_force(
    world: FilterWorld, strategy: str, name: str, fetch: int
) -> None:
    f = FILTERS[name]
    query = np.random.default_rng(abs(hash((name, fetch))) % 2**32).standard_normal(16)
    query = (query / np.linalg.norm(query)).astype(np.float32)
    expected = _brute_force(world, query, _expected_ids(world, f, [world.collection_id]), fetch)
    hits = filtered_vector_hits(
        world.catalog, world.index, query[None], f, world.collection_id, fetch
    )
    got = [image_id for _, image_id in hits]
    assert got == expected, f"{name} ({strategy}, fetch {fetch}): {got[:5]} != {expected[:5]}"
    scores = [score for score, _ in hits]
    wanted = [float(world.vectors[i] @ query) for i in expected]
    assert np.allclose(scores, wanted, atol=1e-5)


def test_post_filter_grows_its_fetch_until_enough_matched(
    world: FilterWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index where the filter's matches all rank last: the first over-fetch finds none of
    them, and the search keeps fetching until it has them."""
    monkeypatch.setattr(filtering, "selector_limit", lambda *_: -1)
    f = FILTERS["folder like wildcards"]
    matching = _expected_ids(world, f, [world.collection_id])
    ids = world.index.ids()
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((len(ids), 16)).astype(np.float32) * 0.1
    vectors[:, 0] = [-1.0 if i in matching else 1.0 for i in ids.tolist()]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(16)
    index.add(ids, vectors)
    query = np.eye(16, dtype=np.float32)[:1]
    checked: list[int] = []
    original = world.catalog.filter_ids

    def counting(filters: SearchFilters, candidates: list[int]) -> set[int]:
        checked.append(len(candidates))
        return original(filters, candidates)

    monkeypatch.setattr(world.catalog, "filter_ids", counting)
    hits = filtered_vector_hits(world.catalog, index, query, f, world.collection_id, 50)
    scores = {int(i): float(v @ query[0]) for i, v in zip(ids, vectors, strict=True)}
    expected = sorted(matching & set(scores), key=lambda i: -scores[i])[:50]
    assert [i for _, i in hits] == expected
    assert len(checked) > 1, "expected the post-filter to fetch more than once"


def test_facets_count_the_filtered_images(world: FilterWorld) -> None:
    f = SearchFilters(folder="/photos", has_caption=True)
    collections = [world.collection_id, world.other_collection_id]
    rows = [r for r in world.rows if r.collection_id in collections and _matches(r, f)]
    facets = world.catalog.facets(f, collections)
    assert facets.total == len(rows)
    names = {world.collection_id: "main", world.other_collection_id: "other"}
    assert {c.value: c.count for c in facets.collections} == Counter(
        names[r.collection_id] for r in rows
    )
    years = Counter(str(r.taken_at.year) for r in rows if r.taken_at)
    assert {c.value: c.count for c in facets.years} == years
    assert [c.value for c in facets.years] == sorted(years)
    cameras = Counter(camera_label(r.camera_make, r.camera_model) for r in rows)
    cameras.pop(None, None)
    assert {c.value: c.count for c in facets.cameras} == cameras
    tags = Counter(label for r in rows for label in _labels(r))
    assert {c.value: c.count for c in facets.tags} == tags
    assert [c.count for c in facets.tags] == sorted(tags.values(), reverse=True)
    types = Counter(r.file_type for r in rows if r.file_type)
    assert {c.value: c.count for c in facets.file_types} == types
    for camera in facets.cameras:  # a camera facet's value is a filter that selects it
        chosen = world.catalog.count_matching(
            SearchFilters(folder="/photos", has_caption=True, camera=camera.value), collections
        )
        assert chosen >= camera.count
