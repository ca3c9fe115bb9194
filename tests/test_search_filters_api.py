"""Filters, facets and date order through the JSON API, end to end: photos with EXIF dates and
cameras are indexed with the normal path, and every filtered search returns only matching
images, k of them whenever k match, in the order asked for."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from search.settings import Settings
from tests.conftest import Cli
from web.app import create_app

CAMERAS = [("Canon", "Canon EOS R5"), ("NIKON CORPORATION", "NIKON Z 6"), (None, None)]


def _photo(path: Path, index: int, rng: random.Random) -> dict[str, object]:
    """A JPEG with an EXIF date (2019-2024) and a camera (or none), landscape or portrait."""
    year = 2019 + index % 6
    make, model = CAMERAS[index % 3]
    exif = Image.Exif()
    if make and model:
        exif[271], exif[272] = make, model
    exif.get_ifd(0x8769)[36867] = f"{year}:0{1 + index % 9}:1{index % 10} 10:00:00"
    size = (96, 64) if index % 2 else (64, 96)
    colour = tuple(rng.randrange(256) for _ in range(3))
    Image.new("RGB", size, colour).save(path, "JPEG", exif=exif)
    return {"year": year, "make": make, "landscape": index % 2 == 1}


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, dict[str, object]]]]:
    root = tmp_path_factory.mktemp("exif-photos")
    rng = random.Random(3)
    truth: dict[str, dict[str, object]] = {}
    for folder in ("trips", "trips2", "home"):
        (root / folder).mkdir()
    for index in range(36):
        folder = ("trips", "trips2", "home")[index % 3]
        path = root / folder / f"p{index:02d}.jpg"
        truth[str(path)] = _photo(path, index, rng) | {"folder": folder}
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("filters") / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        tags=False,
    )
    Cli(settings).json("index", str(root))
    with TestClient(create_app(settings)) as client:
        yield client, truth


def _search(client: TestClient, **params: object) -> dict:
    answer = client.get("/api/search", params={"q": "a photo", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_filters_return_k_matching_results(
    indexed: tuple[TestClient, dict[str, dict[str, object]]],
) -> None:
    client, truth = indexed
    cases = [
        ({"camera": "canon"}, lambda t: t["make"] == "Canon"),
        ({"camera": "z 6"}, lambda t: t["make"] == "NIKON CORPORATION"),
        ({"date_from": "2021-01-01", "date_to": "2022-12-31"}, lambda t: t["year"] in (2021, 2022)),
        ({"orientation": "portrait"}, lambda t: not t["landscape"]),
        ({"min_width": 90}, lambda t: t["landscape"]),
        ({"file_type": "jpeg", "orientation": "landscape"}, lambda t: t["landscape"]),
    ]
    for params, matches in cases:
        expected = {path for path, t in truth.items() if matches(t)}
        answer = _search(client, k=len(expected), **params)
        got = {r["path"] for r in answer["results"]}
        assert got == expected, params
        answer = _search(client, k=3, **params)
        assert len(answer["results"]) == 3 and {r["path"] for r in answer["results"]} <= expected


def test_folder_filter_is_the_folder_not_a_name_prefix(
    indexed: tuple[TestClient, dict[str, dict[str, object]]],
) -> None:
    client, truth = indexed
    trips = str(Path(next(iter(truth))).parent.parent / "trips")
    answer = _search(client, folder=trips, k=100)
    assert answer["total"] == 12
    assert all(r["path"].startswith(trips + "/") for r in answer["results"])


def test_sort_by_date_orders_the_result_set(
    indexed: tuple[TestClient, dict[str, dict[str, object]]],
) -> None:
    client, _ = indexed
    by_relevance = _search(client, k=20)
    newest = _search(client, k=20, sort="date_desc")
    oldest = _search(client, k=20, sort="date_asc")
    ids = {r["id"] for r in by_relevance["results"]}
    assert {r["id"] for r in newest["results"]} == ids == {r["id"] for r in oldest["results"]}
    dates = [r["taken_at"] for r in newest["results"]]
    assert dates == sorted(dates, reverse=True) and all(
        d.endswith("Z") or "+00:00" in d for d in dates
    )
    assert [r["taken_at"] for r in oldest["results"]] == sorted(dates)
    assert all(r["taken_at_source"] == "exif" for r in newest["results"])
    assert {r["camera"] for r in newest["results"]} <= {"Canon EOS R5", "NIKON Z 6", None}


def test_facets_count_the_filter_set(
    indexed: tuple[TestClient, dict[str, dict[str, object]]],
) -> None:
    client, truth = indexed
    answer = client.get("/api/facets", params={"orientation": "landscape"})
    assert answer.status_code == 200, answer.text
    facets = answer.json()
    landscape = [t for t in truth.values() if t["landscape"]]
    assert facets["total"] == len(landscape)
    years = {f["value"]: f["count"] for f in facets["years"]}
    for year in {t["year"] for t in landscape}:
        assert years[str(year)] == sum(1 for t in landscape if t["year"] == year)
    assert sum(f["count"] for f in facets["file_types"]) == len(landscape)
