"""Documentation stays true: every setting is in the README, the README's two commands and CI
agree, and the API docs at /docs render the live OpenAPI in a real browser (an old Swagger UI
answers 200 too, and then shows "Unable to render this definition" for OpenAPI 3.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from search.settings import Settings
from tests.live_server import chromium, serve_app

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"PIXSEEK_{name.upper()}"
        for name in Settings.model_fields
        if f"PIXSEEK_{name.upper()}" not in readme
    ]
    assert not missing, f"undocumented settings: {missing}"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[:20] if line.startswith("make ")]
    assert commands[:2] == ["make run PHOTOS=~/Pictures", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[str]:
    """The real app under uvicorn on a free local port, over an empty catalog (the docs need no
    index and no model: warming is off)."""
    settings = Settings(
        data_dir=tmp_path / "data", model="tiny-test", workers=0, warm_on_start=False
    )
    with serve_app(settings) as base_url:
        yield base_url


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.mark.browser
def test_api_docs_render_every_operation_offline(docs_server: str, browser: Browser) -> None:
    spec = httpx.get(docs_server + "/openapi.json").json()
    assert spec["openapi"].startswith("3.1"), spec["openapi"]
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    requested: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        answer = page.goto(docs_server + "/docs")
        assert answer is not None and answer.status == 200
        # Either the operations render or Swagger UI shows why not ("Unable to render ...").
        page.wait_for_selector(
            ".opblock-summary-path[data-path='/api/search'], .version-pragma, .errors-wrapper"
        )
        errors = page.locator(".version-pragma, .errors-wrapper")
        assert errors.count() == 0, f"Swagger UI cannot render the spec: {errors.inner_text()}"
        assert page.inner_text(".info .title").startswith("pixseek"), "the API title is missing"
        assert "OAS 3.1" in page.inner_text(".info .title"), "the OpenAPI version is not shown"
        shown = page.eval_on_selector_all(
            ".opblock",
            """blocks => blocks.map(b => [
                b.querySelector('.opblock-summary-method').textContent.trim(),
                b.querySelector('.opblock-summary-path').dataset.path])""",
        )
        assert {tuple(op) for op in shown} == operations, "/docs does not list every operation"
        image_search = page.locator(".opblock-post:has([data-path='/api/search/image'])")
        image_search.locator(".opblock-summary").click()
        # Swagger UI expands the block after the click; wait for it rather than look at once.
        expect(image_search.get_by_text("as query parameters")).to_be_visible()
        expect(image_search.locator("tr[data-param-name='k']")).to_have_count(1)  # the query param
    finally:
        context.close()
    external = [url for url in requested if not url.startswith(docs_server + "/")]
    assert not external, f"/docs fetched from outside the server: {external}"
