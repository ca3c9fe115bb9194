"""The browse pages in a real browser: headless Debian Chromium (Playwright) opens /collections,
follows a collection, a folder and a year, scrolls until the infinite scroll has loaded a
second page (no image twice), and sees the failed files with their reasons; nothing is fetched
from outside the server. Screenshots go to a temporary folder (SCREENSHOT_DIR to keep
them elsewhere); they are test artifacts, never committed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from search.settings import Settings
from tests.conftest import Cli
from tests.live_server import chromium, serve_app
from tests.photos import PhotoSet, make_photo_set

pytestmark = pytest.mark.browser

PAGE = 6  # images per page: 24 images make four pages


def _taken(index: int) -> datetime:
    return datetime(2021 + index % 2, 1 + index % 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PhotoSet]]:
    """The app on a free local port, the photo set indexed with taken dates in 2021 and 2022."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_"):
                mp.delenv(name)
        root = tmp_path_factory.mktemp("browse-ui")
        mp.setenv("HF_HOME", str(root / "hf-home"))
        photos = make_photo_set(root / "photos")
        for index, path in enumerate(photos.good):
            os.utime(path, (_taken(index).timestamp(), _taken(index).timestamp()))
        settings = Settings(
            data_dir=root / "data", model="tiny-test", workers=0, device="cpu", warm_on_start=False
        )
        Cli(settings).json("index", str(photos.root))
        with serve_app(settings) as base_url:
            yield base_url, photos


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("SCREENSHOT_DIR")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("browse-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _result_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#results li.result", "items => items.map(li => li.dataset.id)"
    )


@pytest.fixture
def tab(browser: Browser, server: tuple[str, PhotoSet]) -> Iterator[Page]:
    """A fresh desktop-sized page; after the test, no request may have left the server."""
    base_url, _ = server
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        yield page
    finally:
        context.close()
    external = [url for url in requested if not url.startswith(base_url + "/")]
    assert not external, f"the page fetched from outside {base_url}: {external}"


def _titles(page: Page) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#results li.result a[title]", "links => links.map(a => a.title)"
    )


def test_browse_a_collection_by_folder_and_year(
    tab: Page, server: tuple[str, PhotoSet], screenshots: Path
) -> None:
    base_url, photos = server
    page = tab
    page.goto(f"{base_url}/collections")
    row = page.locator("#collections tr[data-name=default]")
    assert row.locator(".embedded").inner_text() == str(len(photos.good))
    assert row.locator(".failed").inner_text() == "2"
    page.screenshot(path=str(screenshots / "collections.png"), full_page=True)

    row.locator("a.collection-link").click()
    page.wait_for_url(f"{base_url}/collections/default")
    failed = page.locator("#failed-files")
    for path in (photos.corrupt, photos.not_an_image):
        reason = failed.locator("tr", has_text=str(path)).locator(".reason").inner_text()
        assert reason.strip(), f"no reason shown for {path}"
    page.screenshot(path=str(screenshots / "collection.png"), full_page=True)

    # a folder: only its images, and its link marked as the current one
    holiday = str(photos.root / "holiday")
    page.locator(f'#folders a.folder[data-path="{holiday}"]').click()
    page.wait_for_selector(f'#folders a.folder[data-path="{holiday}"][aria-current=page]')
    under = [p for p in photos.good if (photos.root / "holiday") in p.parents]
    assert sorted(_titles(page)) == sorted(map(str, under))

    # a year, within the folder
    page.locator("#dates a.year[data-year='2022']").click()
    page.wait_for_selector("#dates a.year[data-year='2022'][aria-current=page]")
    expected = [str(p) for i, p in enumerate(photos.good) if p in under and _taken(i).year == 2022]
    assert sorted(_titles(page)) == sorted(expected)
    page.screenshot(path=str(screenshots / "collection-folder-year.png"), full_page=True)


def test_scrolling_loads_every_page_once(
    tab: Page, browser: Browser, server: tuple[str, PhotoSet], screenshots: Path
) -> None:
    base_url, photos = server
    page = tab
    page.goto(f"{base_url}/collections/default?limit={PAGE}")
    assert len(_result_ids(page)) >= PAGE
    for _ in range(40):
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(100)
        if page.locator("#next-page").count() == 0:
            break
    ids = _result_ids(page)
    assert len(ids) == len(set(ids)), f"an image was shown twice: {ids}"
    assert len(ids) == len(photos.good), f"scrolling stopped at {len(ids)} images"
    assert page.locator("#shown-count").inner_text() == str(len(photos.good))
    assert page.locator("#error").is_hidden()
    page.screenshot(path=str(screenshots / "collection-scrolled.png"))

    # without JavaScript, "Next page" is a plain link to the next page of the listing
    plain_context = browser.new_context(java_script_enabled=False)
    try:
        plain = plain_context.new_page()
        plain.goto(f"{base_url}/collections/default?limit={PAGE}")
        first = _result_ids(plain)
        plain.locator("#next-page").click()
        plain.wait_for_url("**cursor=**")
        second = _result_ids(plain)
    finally:
        plain_context.close()
    assert len(first) == len(second) == PAGE and not set(first) & set(second)
    assert first + second == ids[: 2 * PAGE], "the plain pages differ from the scrolled ones"
