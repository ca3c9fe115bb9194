"""The search page in a real browser, where meaning matters: the tiny CLIP trained on the
synthetic world indexes the world's held-out images (copied into one folder per colour, with
taken dates over three years), and headless Debian Chromium (Playwright) searches them by
typing, by filter chips, by scrolling, by order, by a dropped and a pasted image, walks the
results from the detail page with the arrow keys, and does it all by keyboard alone. Nothing
may be fetched from outside the server. Screenshots (light and dark, phone and desktop) go to
a temporary folder, or SCREENSHOT_DIR; they are test artifacts, never committed."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page

from indexer.quality.synthetic_world import load_world
from search.settings import Settings
from tests.conftest import Cli
from tests.live_server import chromium, serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

YEARS = (2021, 2022, 2023)
DROP = """async ([data, name, kind]) => {
  const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: 'image/png'}));
  const event = kind === 'drop'
    ? new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true})
    : new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true, cancelable: true});
  document.body.dispatchEvent(event);
}"""


@dataclass
class World:
    base_url: str
    attributes: dict[str, dict[str, str | int]]  # by indexed path
    taken: dict[str, datetime]
    paths: list[Path]


@pytest.fixture(scope="module")
def world(
    trained_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The app on a free local port over the world's held-out images."""
    world_dir, model_dir = trained_world
    root = tmp_path_factory.mktemp("search-ui")
    attributes: dict[str, dict[str, str | int]] = {}
    taken: dict[str, datetime] = {}
    paths: list[Path] = []
    for index, item in enumerate(load_world(world_dir).test):
        target = root / "photos" / str(item.attributes["colour"]) / Path(item.file_name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(world_dir / item.file_name, target)
        when = datetime(YEARS[index % 3], 1 + index % 12, 1 + index % 28, 12, tzinfo=UTC)
        os.utime(target, (when.timestamp(), when.timestamp()))
        attributes[str(target)], taken[str(target)] = item.attributes, when
        paths.append(target)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_") and name != "PIXSEEK_TEST_CACHE":
                mp.delenv(name)
        mp.setenv("HF_HOME", str(root / "hf-home"))
        settings = Settings(
            data_dir=root / "data",
            model=f"local-dir:{model_dir}",
            workers=0,
            device="cpu",
            tags=False,
            warm_on_start=False,
        )
        Cli(settings).json("index", str(root / "photos"))
        with serve_app(settings) as base_url:
            yield World(base_url, attributes, taken, paths)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def tab(browser: Browser, world: World) -> Iterator[Page]:
    """A fresh desktop-sized page; afterwards, no request may have left the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        yield page
    finally:
        context.close()
    external = [u for u in requested if not u.startswith((world.base_url + "/", "data:"))]
    assert not external, f"the page fetched from outside {world.base_url}: {external}"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("SCREENSHOT_DIR")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("search-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ids(page: Page) -> list[int]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#results li.result", "items => items.map(li => Number(li.dataset.id))"
    )


def _paths(page: Page) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#results li.result a.thumb", "links => links.map(a => a.title)"
    )


def _search(page: Page, world: World, text: str) -> None:
    page.goto(world.base_url + "/")
    page.fill("#q", text)
    with page.expect_navigation():
        page.press("#q", "Enter")
    page.wait_for_selector("#results li.result")


def _red_circles(world: World, paths: list[str]) -> int:
    return sum(
        world.attributes[p]["shape"] == "circle" and world.attributes[p]["colour"] == "red"
        for p in paths
    )


def _assert_red_circles_first(world: World, paths: list[str]) -> None:
    """The held-out split has 10 red circles in 400 images (2.5 %): the best match is one,
    and the top 10 hold at least 3."""
    seen = [world.attributes[p] for p in paths[:10]]
    assert _red_circles(world, paths[:1]) == 1, seen
    assert _red_circles(world, paths[:10]) >= 3, seen


def test_typing_a_query_shows_the_right_images_first(tab: Page, world: World) -> None:
    _search(tab, world, "a red circle")
    top = _paths(tab)[:5]
    _assert_red_circles_first(world, _paths(tab))
    assert parse_qs(urlsplit(tab.url).query) == {"q": ["a red circle"]}, "blanks in the URL"
    summary = tab.inner_text("#summary")
    assert "strong match" in summary, summary
    total = int(tab.inner_text("#total-count"))
    # "show weaker matches" drops the cutoff: more results, the same best ones first
    tab.click("#weaker")
    tab.wait_for_selector("#stronger")
    assert int(tab.inner_text("#total-count")) > total
    assert _paths(tab)[:5] == top


def test_a_filter_chip_is_added_and_removed(tab: Page, world: World) -> None:
    _search(tab, world, "a red circle")
    tab.click("#add-filter summary")
    year = tab.locator("#facets [data-facet=years] a.facet-link").first
    chosen = int(str(year.get_attribute("data-value")))
    with tab.expect_navigation():
        year.click()
    chip = tab.locator("#active-filters a.chip[data-filter=date]")
    assert chip.is_visible() and str(chosen) in chip.inner_text()
    assert all(world.taken[p].year == chosen for p in _paths(tab)), "a result outside the year"
    assert _red_circles(world, _paths(tab)[:3]) >= 1
    with tab.expect_navigation():
        chip.click()
    assert tab.locator("#active-filters").count() == 0
    query = parse_qs(urlsplit(tab.url).query)
    assert "date_from" not in query and query["q"] == ["a red circle"], query
    assert {world.taken[p].year for p in _paths(tab)} != {chosen}


def test_scrolling_reaches_the_third_page_without_duplicates(tab: Page, world: World) -> None:
    page = tab
    page.goto(world.base_url + "/?q=a+blue+square&k=80&limit=10")
    page.wait_for_selector("#results li.result")
    for _ in range(40):
        if len(_ids(page)) >= 30:
            break
        page.mouse.wheel(0, 3000)
        page.wait_for_timeout(150)
    ids = _ids(page)
    assert len(ids) >= 30, f"scrolling stopped at {len(ids)} results"
    assert len(ids) == len(set(ids)), f"a result was shown twice: {ids}"
    api = httpx.get(
        f"{world.base_url}/api/search", params={"q": "a blue square", "k": 80, "limit": 30}
    ).json()
    assert ids[:30] == [r["id"] for r in api["results"]], "the scrolled pages skip or reorder"
    assert page.locator("#error").count() == 0, page.inner_text("#error")


def test_sorting_by_date_orders_the_results_newest_first(tab: Page, world: World) -> None:
    _search(tab, world, "a red circle")
    relevance = set(_paths(tab))
    with tab.expect_navigation():
        tab.select_option("#sort", "date_desc")
    assert "sort=date_desc" in tab.url
    dates = [world.taken[p] for p in _paths(tab)]
    assert dates == sorted(dates, reverse=True), dates
    assert set(_paths(tab)) <= relevance | set(_paths(tab))  # the same set, re-ordered
    assert "strong match" in tab.inner_text("#summary")


def test_detail_page_walks_the_results_with_the_arrow_keys(tab: Page, world: World) -> None:
    _search(tab, world, "a red circle")
    ids = _ids(tab)
    with tab.expect_navigation():
        tab.click(f"#results li.result[data-id='{ids[0]}'] a.thumb")
    assert tab.url.endswith(f"/images/{ids[0]}")
    assert tab.inner_text("#result-position") == f"1 of {len(ids)}"
    with tab.expect_navigation():
        tab.keyboard.press("ArrowRight")
    assert tab.url.endswith(f"/images/{ids[1]}")
    with tab.expect_navigation():
        tab.keyboard.press("ArrowLeft")
    assert tab.url.endswith(f"/images/{ids[0]}")
    assert tab.get_attribute("#search-with-image", "href") == f"/?q=id:{ids[0]}"
    similar = _ids(tab)
    assert similar and ids[0] not in similar
    with tab.expect_navigation():
        tab.click(f"#results li.result[data-id='{similar[0]}'] a.thumb")
    assert tab.url.endswith(f"/images/{similar[0]}")
    with tab.expect_navigation():
        tab.keyboard.press("ArrowRight")  # now through the similar list it came from
    assert tab.url.endswith(f"/images/{similar[1]}")


def test_more_like_this_adds_the_image_to_the_query(tab: Page, world: World) -> None:
    _search(tab, world, "a red circle")
    first = _ids(tab)[0]
    with tab.expect_navigation():
        tab.click(f"#results li.result[data-id='{first}'] a.more-like")
    assert parse_qs(urlsplit(tab.url).query)["q"] == [f"a red circle + id:{first}"]
    assert first not in _ids(tab)  # an image named by id: is left out of its results
    assert _red_circles(world, _paths(tab)[:10]) >= 3


@pytest.mark.parametrize("kind", ["drop", "paste"])
def test_a_dropped_or_pasted_image_comes_back_first(
    tab: Page, world: World, kind: str, screenshots: Path
) -> None:
    query = world.paths[7]
    tab.goto(world.base_url + "/")
    data = base64.b64encode(query.read_bytes()).decode()
    tab.evaluate(DROP, [data, query.name, kind])
    tab.wait_for_selector("#results li.result")
    assert tab.locator("#error").count() == 0, tab.inner_text("#error")
    assert _paths(tab)[0] == str(query)
    assert query.name in tab.inner_text("#query-image")
    assert tab.locator("#query-image img").evaluate("img => img.naturalWidth > 0")
    if kind == "drop":
        tab.screenshot(path=str(screenshots / "search-by-image-1280-light.png"))
        # more like this on an uploaded image: the image again, plus the term
        second = _ids(tab)[1]
        tab.click(f"#results li.result[data-id='{second}'] a.more-like")
        tab.wait_for_function(
            f"() => !document.querySelector(\"#results li.result[data-id='{second}']\")"
        )
        assert "+ id:" in tab.inner_text("#query-image")


def test_keyboard_only_search_detail_and_back(tab: Page, world: World) -> None:
    page = tab
    page.goto(world.base_url + "/")
    page.locator("body").focus()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("a red circle")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    search_url = page.url
    first = _ids(page)[0]
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const a = document.activeElement;"
            " return a.matches('#results a.thumb') ? a.getAttribute('href') : null; }"
        )
        if focused:
            break
    assert focused == f"/images/{first}", "Tab never reached the first result"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/images/{first}")
    with page.expect_navigation():
        page.keyboard.press("Escape")
    assert page.url == search_url
    assert _ids(page)[0] == first


def test_screenshots_light_and_dark_phone_and_desktop(
    browser: Browser, world: World, screenshots: Path
) -> None:
    for scheme in ("light", "dark"):
        for width in (390, 1280):
            context = browser.new_context(
                viewport={"width": width, "height": 900}, color_scheme=scheme
            )
            try:
                page = context.new_page()
                page.goto(world.base_url + "/?q=a+red+circle&scores=1")
                page.click("#add-filter summary")
                page.wait_for_selector("#results li.result")
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"the page is {overflow} px wider than {width} px"
                page.screenshot(path=str(screenshots / f"search-{width}-{scheme}.png"))
                page.click("#results li.result a.thumb >> nth=0")
                page.wait_for_selector("#image-detail")
                page.screenshot(path=str(screenshots / f"detail-{width}-{scheme}.png"))
            finally:
                context.close()
