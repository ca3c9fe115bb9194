"""The web UI in a real browser: the app runs under uvicorn on a free local port, headless
Chromium (Debian's `/usr/bin/chromium`, driven by Playwright) searches by text and by an uploaded
image, opens a detail page, meets the error paths, and must never fetch anything from outside
the server. One server and one browser serve the whole module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from search.settings import Settings
from tests.conftest import Cli
from tests.live_server import chromium, serve_app
from tests.photos import PhotoSet

pytestmark = pytest.mark.browser

TEXT_QUERY = "a red circle on a blue background"
TEXT_K = 7

ALL_THUMBNAILS_LOADED = """() => {
  const images = [...document.querySelectorAll('#results li.result img')];
  return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
}"""
BROKEN_THUMBNAILS = """() => [...document.querySelectorAll('#results li.result img')]
  .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute('src'))"""


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    photo_set: PhotoSet


@dataclass
class Tab:
    """A browser page plus every URL it requested, for the no-external-resources check."""

    page: Page
    requested: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet
) -> Iterator[LiveServer]:
    """The real app on 127.0.0.1 with the photo set indexed on SQLite (tiny-test encoder)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_"):
                mp.delenv(name)
        mp.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("web-ui")
        mp.setenv("HF_HOME", str(root / "hf-home"))
        settings = Settings(data_dir=root / "data", model="tiny-test", workers=0, device="cpu")
        summary = Cli(settings).json("index", str(photo_set.root))
        assert summary["indexed"] == len(photo_set.good), summary

        with serve_app(settings) as base_url:
            yield LiveServer(base_url=base_url, settings=settings, photo_set=photo_set)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def tab(browser: Browser, live_server: LiveServer) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    opened = Tab(page=page)
    page.on("request", lambda request: opened.requested.append(request.url))
    try:
        yield opened
    finally:
        context.close()
    external = [url for url in opened.requested if not url.startswith(live_server.base_url + "/")]
    assert not external, f"the page fetched from outside {live_server.base_url}: {external}"


def _result_cards(page: Page) -> list[dict[str, object]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#results li.result",
        """cards => cards.map(li => ({id: Number(li.dataset.id), score: Number(li.dataset.score),
                                       title: li.querySelector('a[title]')?.getAttribute('title'),
                                       href: li.querySelector('a')?.getAttribute('href')}))""",
    )


def _assert_thumbnails_loaded(page: Page) -> None:
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    try:
        page.wait_for_function(ALL_THUMBNAILS_LOADED, timeout=5_000)
    except Exception:  # noqa: BLE001 - report which thumbnails failed instead of a bare timeout
        pytest.fail(f"thumbnails did not load: {page.evaluate(BROKEN_THUMBNAILS)}")
    page.evaluate("window.scrollTo(0, 0)")


def test_text_search_shows_k_ranked_results_that_open_a_detail_page(
    tab: Tab, live_server: LiveServer, tmp_path: Path
) -> None:
    page = tab.page
    answer = page.goto(live_server.base_url + "/")
    assert answer.status == 200
    page.fill("#q", TEXT_QUERY)
    page.fill("input[name=k]", str(TEXT_K))
    with page.expect_navigation():
        page.click("#search-button")
    page.wait_for_selector("#results li.result")
    assert page.query_selector("#error") is None, page.inner_text("#error")
    assert page.input_value("#q") == TEXT_QUERY

    cards = _result_cards(page)
    scores = [c["score"] for c in cards]
    assert len(cards) == TEXT_K, cards
    assert scores == sorted(scores, reverse=True), f"scores not in descending order: {scores}"
    assert page.inner_text("#summary").startswith(f"{TEXT_K} results")
    api = httpx.get(
        f"{live_server.base_url}/api/search", params={"q": TEXT_QUERY, "k": TEXT_K}
    ).json()
    assert [c["id"] for c in cards] == [r["id"] for r in api["results"]], "page and API disagree"
    _assert_thumbnails_loaded(page)
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)

    first = cards[0]
    with page.expect_navigation():
        page.click(f"#results li.result[data-id='{first['id']}'] a[href^='/images/']")
    assert page.url == f"{live_server.base_url}/images/{first['id']}"
    detail = page.wait_for_selector("section#image-detail")
    assert detail.get_attribute("data-id") == str(first["id"])
    assert first["title"] in detail.inner_text(), "the detail page does not show the file path"
    page.wait_for_function(
        "() => { const i = document.querySelector('#image-detail img.large');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert page.get_by_role("heading", name="Similar images").is_visible()
    similar = _result_cards(page)
    assert similar, "the detail page shows no similar images"
    assert first["id"] not in [c["id"] for c in similar], "an image is listed as similar to itself"
    _assert_thumbnails_loaded(page)
    page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)


def test_image_upload_finds_the_same_image_first(tab: Tab, live_server: LiveServer) -> None:
    page = tab.page
    query = live_server.photo_set.good[3]
    page.goto(live_server.base_url + "/")
    page.set_input_files("#file", str(query))
    with page.expect_navigation():
        page.click("#image-search-button")
    page.wait_for_selector("#results li.result")
    assert page.query_selector("#error") is None, page.inner_text("#error")
    assert query.name in page.inner_text(".query-image")

    with query.open("rb") as handle:
        api = httpx.post(
            f"{live_server.base_url}/api/search/image",
            files={"file": (query.name, handle)},
            data={"k": "3"},
        ).json()
    expected = api["results"][0]
    assert expected["path"] == str(query), api
    first = _result_cards(page)[0]
    assert (first["id"], first["title"]) == (expected["id"], str(query)), first
    assert first["score"] == pytest.approx(1.0, abs=2e-3)
    _assert_thumbnails_loaded(page)

    # On a phone-sized screen the forms and the grid fit: nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the results page is {overflow} px wider than a 390 px screen"


def test_bad_input_shows_a_readable_error_not_a_crash(tab: Tab, live_server: LiveServer) -> None:
    page = tab.page
    base = live_server.base_url

    # Searching with an empty or blank box: the search page again, no results, no error page.
    for blank in ("", "   "):
        page.goto(base + "/")
        page.fill("#q", blank)
        with page.expect_navigation() as navigation:
            page.click("#search-button")
        assert navigation.value.status in (200, 400), navigation.value.status
        assert page.query_selector("#q") is not None, "a blank query left the search page"
        assert page.query_selector("#results") is None, f"a blank query {blank!r} returned results"

    # The box stops typing at 1000 characters; a longer query in the URL gets a readable error.
    page.goto(base + "/")
    page.fill("#q", "x" * 1500)
    assert len(page.input_value("#q")) == 1000
    answer = page.goto(base + "/?q=" + "x" * 1001)
    assert answer.status == 422
    message = page.inner_text("#error")
    assert "q:" in message and "1000" in message, message
    assert "Traceback" not in page.content()

    # A file that is not a picture: the search page again with the decoder's reason.
    page.goto(base + "/")
    page.set_input_files("#file", str(live_server.photo_set.not_an_image))
    with page.expect_navigation() as navigation:
        page.click("#image-search-button")
    assert navigation.value.status == 400
    message = page.inner_text("#error")
    assert live_server.photo_set.not_an_image.name in message, message
    assert page.query_selector("#q") is not None, "the upload error page lost the search form"
    assert page.query_selector("#results") is None
