"""The "ask a question" box in a real browser: headless Chromium types a question on an image's
detail page and the answer appears in place (`ask.js` posts to the JSON API; the page is not
reloaded), and an error of the API shows its message in the alert area."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from search.models.registry import clear_model_cache, register_captioner
from search.settings import Settings
from tests.conftest import Cli
from tests.live_server import chromium, serve_app
from tests.photos import PhotoSet
from tests.test_ask_page import OracleCaptioner

pytestmark = pytest.mark.browser

NOT_RELOADED = "() => window.__sameDocument === true"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet) -> Iterator[str]:
    """The app under uvicorn, photo set indexed, answering questions with the oracle."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_") and name != "PIXSEEK_TEST_CACHE":
                mp.delenv(name)
        root = tmp_path_factory.mktemp("ask-ui")
        mp.setenv("HF_HOME", str(root / "hf-home"))
        settings = Settings(data_dir=root / "data", model="tiny-test", workers=0, device="cpu")
        Cli(settings).json("index", str(photo_set.root))
        register_captioner("oracle-captioner", OracleCaptioner())
        try:
            with serve_app(settings.model_copy(update={"captioner": "oracle-captioner"})) as url:
                yield url
        finally:
            clear_model_cache()


@pytest.fixture
def page(base_url: str) -> Iterator[Page]:
    with chromium() as browser:
        yield _detail_page(browser, base_url)


def _detail_page(browser: Browser, base_url: str) -> Page:
    """An embedded image's detail page, marked so that a reload would be noticed."""
    page = browser.new_page()
    page.set_default_timeout(30_000)  # generous: other work shares the machine's two cores
    page.goto(f"{base_url}/?q=a+photo&k=1")
    href = page.get_attribute("#results li.result a", "href")
    assert href and href.startswith("/images/"), href
    page.goto(base_url + href)
    page.evaluate("window.__sameDocument = true")
    return page


def test_typed_question_is_answered_in_place(page: Page) -> None:
    assert page.get_attribute("#ask-answer", "aria-live") == "polite"
    page.fill("#ask-question", "what shape is it?")
    page.click("#ask-button")
    page.wait_for_function(
        "() => document.getElementById('ask-answer').textContent.includes('you asked')"
    )
    answer = page.inner_text("#ask-answer")
    assert "you asked 'what shape is it?'" in answer and OracleCaptioner.model_id in answer
    assert page.evaluate(NOT_RELOADED), "the page was reloaded"
    assert page.is_hidden("#ask-error")
    assert not page.is_disabled("#ask-button"), "the button is enabled again"


def test_an_api_error_shows_its_message(page: Page) -> None:
    page.eval_on_selector("#ask-question", "input => input.removeAttribute('maxlength')")
    page.fill("#ask-question", "why " * 100)  # over the API's limit on a question's length
    page.click("#ask-button")
    page.wait_for_selector("#ask-error:not([hidden])")
    message = page.inner_text("#ask-error")
    assert "question" in message and "HTTP" not in message, message
    assert page.get_attribute("#ask-error", "role") == "alert"
    assert page.evaluate(NOT_RELOADED), "the page was reloaded"
