"""Browsing without a query, over HTTP, on SQLite and PostgreSQL: keyset pages with no
duplicate and no gap in every order (also while images are added between pages), the folder
tree and the years and months with their counts, the folder and date filters, the failed files
on the collection page, and unknown collections answered with 404 in the one error shape.
Nothing here may load an encoder."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from search.catalog import open_catalog
from search.catalog.schema import Image
from search.images.paths import path_key
from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app

PAGE = 5  # 22 dated + 2 undated images: five pages, the last one short


def _taken(index: int) -> datetime:
    """Spread the photos over two years and five months, with ties (same instant) on purpose."""
    return datetime(2021 + index % 2, 1 + index % 5, 10, 12, 0, tzinfo=UTC)


@dataclass
class Browsed:
    client: TestClient
    photos: PhotoSet
    settings: Settings
    undated: set[str]  # display paths whose taken time was removed

    def get(self, url: str, **params: Any) -> Any:
        answer = self.client.get(url, params=params)
        assert answer.status_code == 200, (url, params, answer.text)
        return answer.json()

    def add_image(self, path: str, taken_at: datetime) -> int:
        """A row straight into the catalog, as an indexer running beside the reader would."""
        catalog = open_catalog(self.settings.resolved_database_url())
        try:
            collection = catalog.require_collection("default")
            with catalog.session() as s:
                now = datetime.now(UTC)
                new = Image(
                    collection_id=collection.id,
                    path=path,
                    path_key=path_key(path),
                    size=1,
                    mtime=0.0,
                    status="embedded",
                    taken_at=taken_at,
                    created_at=now,
                    updated_at=now,
                )
                s.add(new)
                s.flush()
                return new.id
        finally:
            catalog.close()


@pytest.fixture
def browsed(settings: Settings, cli: Cli, photos: PhotoSet) -> Iterator[Browsed]:
    """The photo set indexed with taken dates set by mtime, two images made undated."""
    for index, path in enumerate(photos.good):
        stamp = _taken(index).timestamp()
        os.utime(path, (stamp, stamp))
    summary = cli.json("index", str(photos.root))
    assert summary["indexed"] == len(photos.good), summary
    undated = {str(photos.good[3]), str(photos.good[10])}
    catalog = open_catalog(settings.resolved_database_url())
    try:
        with catalog.session() as s:
            s.execute(update(Image).where(Image.path.in_(undated)).values(taken_at=None))
    finally:
        catalog.close()
    quiet = settings.model_copy(update={"warm_on_start": False})
    with TestClient(create_app(quiet)) as client:
        yield Browsed(client, photos, settings, undated)
        assert client.app.state.engine._encoders == {}, "browsing loaded an encoder"  # type: ignore[attr-defined]


def _all_pages(browsed: Browsed, **params: Any) -> tuple[list[dict[str, Any]], int]:
    results: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        page = browsed.get("/api/browse", limit=PAGE, cursor=cursor, **params)
        pages += 1
        assert len(page["results"]) <= PAGE
        results += page["results"]
        cursor = page["next_cursor"]
        if cursor is None:
            return results, pages
        assert pages < 50, "the cursor never ends"


def _expected_order(browsed: Browsed, sort: str, ids: dict[str, int]) -> list[str]:
    """The promised order: by taken date (undated last) or path, ties broken by catalog id."""
    paths = [str(p) for p in browsed.photos.good]
    if sort == "path":
        return sorted(paths)
    newest_first = sort == "date_desc"
    taken = {str(p): _taken(i) for i, p in enumerate(browsed.photos.good)}
    dated = [p for p in paths if p not in browsed.undated]
    undated = [p for p in paths if p in browsed.undated]
    dated.sort(key=lambda p: (taken[p], ids[p]), reverse=newest_first)
    undated.sort(key=lambda p: ids[p], reverse=newest_first)
    return dated + undated


@pytest.mark.parametrize("sort", ["date_desc", "date_asc", "path"])
def test_pages_have_no_duplicate_and_no_gap(browsed: Browsed, sort: str) -> None:
    results, pages = _all_pages(browsed, collection="default", sort=sort)
    paths = [r["path"] for r in results]
    assert pages >= 3, f"only {pages} pages of {PAGE}"
    assert len(paths) == len(set(paths)), (
        f"a page repeated an image: {Counter(paths).most_common(3)}"
    )
    expected = _expected_order(browsed, sort, {r["path"]: r["id"] for r in results})
    assert paths == expected, "the listing is not in the promised order"
    first = browsed.get("/api/browse", collection="default", sort=sort, limit=PAGE)
    assert first["total"] == first["k"] == len(browsed.photos.good)
    assert first["query"] is None
    assert {r["score"] for r in results} == {0.0}, "browse results have no score"
    assert all(r["thumbnail_url"].endswith(f"/{r['id']}/thumbnail") for r in results)


def test_images_added_between_pages_shift_nothing(browsed: Browsed) -> None:
    first = browsed.get("/api/browse", collection="default", limit=PAGE)
    # newer than every image shown (before the cursor) and older than all (after it)
    browsed.add_image(str(browsed.photos.root / "new_newest.jpg"), datetime(2030, 1, 1, tzinfo=UTC))
    browsed.add_image(str(browsed.photos.root / "new_oldest.jpg"), datetime(2000, 1, 1, tzinfo=UTC))
    rest, _ = _all_pages_from(browsed, first["next_cursor"])
    paths = [r["path"] for r in first["results"] + rest]
    assert len(paths) == len(set(paths)), Counter(paths).most_common(3)
    assert str(browsed.photos.root / "new_newest.jpg") not in paths  # it sorts before the cursor
    assert str(browsed.photos.root / "new_oldest.jpg") in paths  # after it: still shown
    assert len(paths) == len(browsed.photos.good) + 1


def _all_pages_from(browsed: Browsed, cursor: str | None) -> tuple[list[dict[str, Any]], int]:
    results: list[dict[str, Any]] = []
    pages = 0
    while cursor is not None:
        page = browsed.get("/api/browse", collection="default", limit=PAGE, cursor=cursor)
        results += page["results"]
        cursor = page["next_cursor"]
        pages += 1
    return results, pages


def test_cursor_of_another_listing_is_refused(browsed: Browsed) -> None:
    first = browsed.get("/api/browse", collection="default", limit=PAGE, sort="date_desc")
    for params in (
        {"sort": "path", "cursor": first["next_cursor"]},
        {"folder": str(browsed.photos.root / "holiday"), "cursor": first["next_cursor"]},
        {"cursor": "not-a-cursor"},
    ):
        answer = browsed.client.get("/api/browse", params={"collection": "default", **params})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "bad_input" and "cursor" in error["message"], error
    # only limit may change from page to page
    second = browsed.get("/api/browse", collection="default", limit=2, cursor=first["next_cursor"])
    assert len(second["results"]) == 2


def test_folder_tree_counts(browsed: Browsed) -> None:
    tree = browsed.get("/api/collections/default/folders")
    root = str(browsed.photos.root)
    assert (tree["path"], tree["count"]) == (root, len(browsed.photos.good)), tree
    by_folder = Counter(str(p.parent) for p in browsed.photos.good)
    assert tree["direct"] == by_folder[root]
    (holiday,) = tree["folders"]
    assert holiday["path"] == f"{root}/holiday" and holiday["name"] == "holiday"
    assert holiday["direct"] == by_folder[f"{root}/holiday"]
    (day2,) = holiday["folders"]
    assert day2["count"] == day2["direct"] == by_folder[f"{root}/holiday/day2"] > 0
    assert holiday["count"] == holiday["direct"] + day2["count"]


def test_date_counts(browsed: Browsed) -> None:
    dates = browsed.get("/api/collections/default/dates")
    expected: Counter[tuple[int, int]] = Counter(
        (_taken(i).year, _taken(i).month)
        for i, p in enumerate(browsed.photos.good)
        if str(p) not in browsed.undated
    )
    seen = Counter(
        {(y["year"], m["month"]): m["count"] for y in dates["years"] for m in y["months"]}
    )
    assert seen == expected
    assert [y["year"] for y in dates["years"]] == sorted({y for y, _ in expected}, reverse=True)
    for year in dates["years"]:
        assert year["count"] == sum(m["count"] for m in year["months"])
    assert dates["undated"] == len(browsed.undated)


def test_filter_by_folder_and_by_year(browsed: Browsed) -> None:
    holiday = browsed.photos.root / "holiday"
    under = [p for p in browsed.photos.good if holiday in p.parents]
    results, _ = _all_pages(browsed, collection="default", folder=str(holiday))
    assert sorted(r["path"] for r in results) == sorted(map(str, under))
    in_2022 = [
        str(p)
        for i, p in enumerate(browsed.photos.good)
        if _taken(i).year == 2022 and str(p) not in browsed.undated
    ]
    results, _ = _all_pages(
        browsed, collection="default", date_from="2022-01-01", date_to="2022-12-31"
    )
    assert sorted(r["path"] for r in results) == sorted(in_2022)
    dates = browsed.get(
        "/api/collections/default/dates", folder=str(holiday), date_from="2022-01-01"
    )
    assert sum(y["count"] for y in dates["years"]) == len(
        [p for p in in_2022 if Path(p).is_relative_to(holiday)]
    )


def test_pages_list_collections_and_failed_files(browsed: Browsed) -> None:
    listing = browsed.client.get("/collections")
    assert listing.status_code == 200
    (summary,) = listing.context["collections"]  # type: ignore[attr-defined]
    assert (summary.name, summary.embedded, summary.failed) == ("default", 24, 2)
    assert summary.model_id and summary.model_id in listing.text
    page = browsed.client.get("/collections/default", params={"limit": PAGE})
    assert page.status_code == 200
    failed = {f.path: f.reason for f in page.context["failed_files"]}  # type: ignore[attr-defined]
    assert set(failed) == {str(browsed.photos.corrupt), str(browsed.photos.not_an_image)}
    assert all(failed.values()), failed
    for path, reason in failed.items():
        assert path in page.text and reason.split(":")[0] in page.text
    assert len(page.context["response"].results) == PAGE  # type: ignore[attr-defined]
    assert 'id="next-page"' in page.text and "cursor=" in page.text


def test_unknown_collection_is_404_in_the_error_shape(browsed: Browsed) -> None:
    for url in (
        "/api/collections/nope/folders",
        "/api/collections/nope/dates",
        "/api/browse?collection=nope",
    ):
        answer = browsed.client.get(url)
        assert answer.status_code == 404, (url, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "not_found" and "nope" in error["message"], error
        assert "default" in error["message"], "the message should name the known collections"
    page = browsed.client.get("/collections/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "nope" in page.text


def test_browse_routes_are_documented(browsed: Browsed) -> None:
    paths = browsed.client.get("/openapi.json").json()["paths"]
    for route in (
        "/api/browse",
        "/api/collections/{name}/folders",
        "/api/collections/{name}/dates",
    ):
        responses = paths[route]["get"]["responses"]
        assert {"200", "400", "404", "422"} <= set(responses), (route, sorted(responses))
    assert "/collections" not in paths, "pages stay out of the API document"
