"""Every page in a real browser, for everyone: headless Debian Chromium (Playwright) opens the
search page (empty, with results, with its filters open, with nothing matching, answering an
uploaded image), an image's detail page, the collections list, a collection (folders, dates,
failed files), the jobs page and the error page, in light and dark colour schemes at a phone's
360 px and a desktop's 1280 px, and checks that axe-core (from npm, `npm ci`) finds no serious
or critical violation, that nothing scrolls sideways on the phone, and that the dark scheme
really is dark. A keyboard alone searches, opens a result and comes back, and every element
Tab reaches shows where the focus is. Nothing may be fetched from outside the server.

Screenshots of each page ({page}-{phone|desktop}-{light|dark}.png, full page) go to
test-artifacts/screenshots/ in the repository (ignored by git), or to SCREENSHOT_DIR."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from search.settings import Settings
from tests.conftest import Cli
from tests.live_server import axe_violations, chromium, serve_app
from tests.photos import PhotoSet, make_photo_set

pytestmark = pytest.mark.browser

REPOSITORY = Path(__file__).resolve().parents[1]
WIDTHS = {"phone": (360, 740), "desktop": (1280, 900)}
SCHEMES = ("light", "dark")
BLOCKING_IMPACTS = {"serious", "critical"}
LOAD_IMAGES = """() => Promise.all([...document.images].map(img => {
  img.loading = 'eager';
  return img.decode().catch(() => null);
}))"""
# The focused element (null: none), and whether it shows an outline.
FOCUS_SHOWN = """() => {
  const a = document.activeElement;
  if (!a || a === document.body) return null;
  const s = getComputedStyle(a);
  return {outlined: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
          tag: a.tagName, id: a.id, href: a.getAttribute('href'),
          text: (a.textContent || a.value || '').trim().slice(0, 40)};
}"""


@dataclass
class Site:
    base_url: str
    photos: PhotoSet
    image_id: int  # an embedded image with a caption and tags


@dataclass
class Visit:
    """One page as a test sees it: its name (the screenshot's) and how to open it."""

    name: str
    open: Callable[[Page, Site], None]


def _goto(path: str) -> Callable[[Page, Site], None]:
    def open_page(page: Page, site: Site) -> None:
        page.goto(site.base_url + path.format(image_id=site.image_id))

    return open_page


def _search_by_image(page: Page, site: Site) -> None:
    page.goto(site.base_url + "/")
    page.set_input_files("#file", str(site.photos.good[3]))
    with page.expect_navigation():
        page.click("#image-search-button")
    page.wait_for_selector("#results li.result")


def _search_with_filters_open(page: Page, site: Site) -> None:
    page.goto(site.base_url + "/?q=a+red+circle&k=8&scores=1")
    page.click("#add-filter summary")
    page.wait_for_selector("#facets")


PAGES = [
    Visit("search", _goto("/")),
    Visit("search-results", _goto("/?q=a+red+circle&k=8")),
    Visit("search-filters", _search_with_filters_open),
    Visit("search-nothing", _goto("/?q=a+red+circle&folder=/nowhere")),
    Visit("search-by-image", _search_by_image),
    Visit("detail", _goto("/images/{image_id}")),
    Visit("collections", _goto("/collections")),
    Visit("collection", _goto("/collections/default")),
    Visit("jobs", _goto("/jobs")),
    Visit("error", _goto("/images/999999")),
]


def _taken(index: int) -> datetime:
    return datetime(2021 + index % 2, 1 + index % 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app on a free local port over the photo set (two files fail), indexed with taken
    dates, tags and captions by the tiny-test models."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_") and name != "PIXSEEK_TEST_CACHE":
                mp.delenv(name)
        root = tmp_path_factory.mktemp("accessibility")
        mp.setenv("HF_HOME", str(root / "hf-home"))
        photos = make_photo_set(root / "photos")
        for index, path in enumerate(photos.good):
            os.utime(path, (_taken(index).timestamp(), _taken(index).timestamp()))
        settings = Settings(
            data_dir=root / "data", model="tiny-test", workers=0, device="cpu", warm_on_start=False
        )
        cli = Cli(settings)
        cli.json("index", str(photos.root))
        cli.json("caption", "--captioner", "tiny-test")
        with serve_app(settings) as base_url:
            found = cli.json("search", "a red circle", "--k", "1")
            yield Site(base_url, photos, int(found["results"][0]["id"]))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def screenshots() -> Path:
    kept = os.environ.get("SCREENSHOT_DIR")
    folder = Path(kept) if kept else REPOSITORY / "test-artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Contexts:
    """Browser contexts opened by a test, with every URL their pages requested."""

    browser: Browser
    opened: list[BrowserContext] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def new(self, **options: Any) -> BrowserContext:
        context = self.browser.new_context(**options)
        context.set_default_timeout(15_000)
        context.on("request", lambda request: self.requested.append(request.url))
        self.opened.append(context)
        return context


@pytest.fixture
def contexts(browser: Browser, site: Site) -> Iterator[Contexts]:
    """Fresh browser contexts; afterwards, no request may have left the server."""
    made = Contexts(browser)
    try:
        yield made
    finally:
        for context in made.opened:
            context.close()
    external = [u for u in made.requested if not u.startswith((site.base_url + "/", "data:"))]
    assert not external, f"a page fetched from outside {site.base_url}: {external}"


def _blocking(violations: list[dict[str, Any]]) -> list[str]:
    """The serious and critical violations, one line each: rule, help, first targets."""
    lines = []
    for v in violations:
        if v.get("impact") not in BLOCKING_IMPACTS:
            continue
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:3]]
        more = f" (+{len(v['nodes']) - 3} more)" if len(v["nodes"]) > 3 else ""
        lines.append(f"{v['impact']} {v['id']}: {v['help']} at {targets}{more}")
    return lines


def _body_background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")  # type: ignore[no-any-return]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_is_accessible_in_light_and_dark(
    contexts: Contexts, site: Site, screenshots: Path, width: str
) -> None:
    """axe finds no serious or critical violation on any page, in either scheme; the phone
    never scrolls sideways; the dark scheme changes every page's background."""
    w, h = WIDTHS[width]
    tabs = {
        scheme: contexts.new(viewport={"width": w, "height": h}, color_scheme=scheme).new_page()
        for scheme in SCHEMES
    }
    problems: list[str] = []
    for visit in PAGES:
        backgrounds = {}
        for scheme, page in tabs.items():
            where = f"{visit.name} ({width}, {scheme})"
            visit.open(page, site)
            problems += [f"{where}: {line}" for line in _blocking(axe_violations(page))]
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            if overflow > 1:
                problems.append(f"{where}: the page is {overflow} px wider than the {w} px screen")
            backgrounds[scheme] = _body_background(page)
            page.evaluate(LOAD_IMAGES)
            page.screenshot(
                path=str(screenshots / f"{visit.name}-{width}-{scheme}.png"), full_page=True
            )
        if backgrounds["light"] == backgrounds["dark"]:
            problems.append(
                f"{visit.name} ({width}): the dark scheme keeps the light background "
                f"{backgrounds['light']}"
            )
    assert not problems, "\n".join(problems)


def _tab_until(page: Page, wanted: Callable[[dict[str, Any]], bool], presses: int = 80) -> Any:
    """Presses Tab until the focused element is `wanted`; each element on the way must show
    its focus. Returns what FOCUS_SHOWN saw of the wanted one."""
    unmarked = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_SHOWN)
        if focused is None:
            continue
        if not focused["outlined"]:
            unmarked.append(focused)
        if wanted(focused):
            assert not unmarked, f"focus is invisible on {unmarked}"
            return focused
    pytest.fail(f"Tab never reached the element within {presses} presses")


def test_keyboard_alone_searches_opens_a_result_and_comes_back(
    contexts: Contexts, site: Site
) -> None:
    page = contexts.new(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(site.base_url + "/")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("a red circle")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    search_url = page.url
    first = page.get_attribute("#results li.result", "data-id")
    focused = _tab_until(page, lambda f: bool(f["href"]) and f["href"].startswith("/images/"))
    assert focused["href"] == f"/images/{first}", "the first result is not the first Tab stop"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{site.base_url}/images/{first}"
    with page.expect_navigation():
        page.keyboard.press("Escape")
    assert page.url == search_url
    assert page.get_attribute("#results li.result", "data-id") == first


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    "path", ["/?q=a+red+circle&k=4", "/images/{image_id}", "/collections/default?limit=6", "/jobs"]
)
def test_every_tab_stop_shows_where_the_focus_is(
    contexts: Contexts, site: Site, path: str, scheme: str
) -> None:
    """Tab walks the whole page, from the first stop round to it again: each link, button and
    field it reaches is outlined (a visible focus), in both schemes."""
    page = contexts.new(viewport={"width": 1280, "height": 900}, color_scheme=scheme).new_page()
    page.goto(site.base_url + path.format(image_id=site.image_id))
    page.evaluate("document.activeElement.blur()")
    stops: list[dict[str, Any]] = []
    for _ in range(400):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_SHOWN)
        if focused is None:
            if stops:
                break  # past the last stop
            continue
        if stops and focused == stops[0]:
            break
        stops.append(focused)
    else:
        pytest.fail(f"Tab did not come round in 400 presses: {stops[:5]} ...")
    links = page.locator("a[href]:visible, button:visible, input:visible, select:visible").count()
    assert len(stops) >= links, f"Tab reached {len(stops)} of {links} links, buttons and fields"
    unmarked = [stop for stop in stops if not stop["outlined"]]
    assert not unmarked, f"no visible focus on {unmarked}"
