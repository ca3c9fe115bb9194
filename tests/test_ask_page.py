"""The "ask a question" box of the image detail page without a browser: shown only when a
captioner is configured, and its no-JavaScript form route (`POST /images/{id}/ask`) answering
with a registered captioner, or saying which weights to download when they are missing."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from search.models.registry import clear_model_cache, register_captioner
from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app

MISSING_REPO = "Salesforce/blip2-opt-2.7b"


class OracleCaptioner:
    """A captioner that answers with what it was asked and the image's size: an honest
    `Captioner`, so the page's answer can be checked exactly."""

    model_id = "oracle-captioner/v1"

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        return [f"an image of {image.width}x{image.height}" for image in images]

    def ask(self, image: Image.Image, question: str) -> str:
        return f"you asked {question!r} about a {image.width}x{image.height} image"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet) -> Iterator[Settings]:
    """The photo set indexed once on SQLite (tiny-test encoder); tests vary the captioner."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_") and name != "PIXSEEK_TEST_CACHE":
                mp.delenv(name)
        root = tmp_path_factory.mktemp("ask-page")
        mp.setenv("HF_HOME", str(root / "hf-home"))
        settings = Settings(data_dir=root / "data", model="tiny-test", workers=0, device="cpu")
        summary = Cli(settings).json("index", str(photo_set.root))
        assert summary["indexed"] == len(photo_set.good), summary
        yield settings


@pytest.fixture(scope="module")
def image_id(indexed: Settings) -> int:
    """An image that decoded and was embedded (not the photo set's corrupt file)."""
    with TestClient(create_app(indexed)) as client:
        hits = client.get("/api/search", params={"q": "a photo", "k": 1}).json()["results"]
    return int(hits[0]["id"])


@pytest.fixture
def oracle() -> Iterator[str]:
    register_captioner("oracle-captioner", OracleCaptioner())
    yield "oracle-captioner"
    clear_model_cache()


def _client(settings: Settings, captioner: str) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"captioner": captioner})))


@pytest.mark.parametrize(
    ("captioner", "shown"),
    [("tiny-test", True), (MISSING_REPO, True), ("multilingual", False), ("", False)],
)
def test_question_box_is_shown_only_when_a_captioner_is_configured(
    indexed: Settings, image_id: int, captioner: str, shown: bool
) -> None:
    with _client(indexed, captioner) as client:
        page = client.get(f"/images/{image_id}", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    assert page.context["can_ask"] is shown  # type: ignore[attr-defined]
    assert ('id="ask-form"' in page.text) is shown, f"captioner {captioner!r}"
    assert ("ask.js" in page.text) is shown
    if shown:
        assert '<label for="ask-question">' in page.text and 'aria-live="polite"' in page.text
        assert f'action="/images/{image_id}/ask"' in page.text
        assert f'data-api="/api/images/{image_id}/ask"' in page.text


def test_form_post_without_javascript_shows_the_answer(
    indexed: Settings, image_id: int, oracle: str
) -> None:
    with _client(indexed, oracle) as client:
        page = client.post(f"/images/{image_id}/ask", data={"question": "what colour is it?"})
        detail = client.get(f"/api/images/{image_id}").json()
    assert page.status_code == 200, page.text
    answer = page.context["answer"]  # type: ignore[attr-defined]
    assert answer.model == OracleCaptioner.model_id and answer.question == "what colour is it?"
    assert answer.answer.startswith("you asked 'what colour is it?'"), answer
    assert answer.answer.replace("'", "&#39;") in page.text
    assert page.context["image"].id == image_id  # type: ignore[attr-defined]
    assert page.context["ask_error"] is None  # type: ignore[attr-defined]
    assert 'value="what colour is it?"' in page.text, "the question stays in the box"
    assert detail["path"] in page.text, "the rest of the detail page is there"


def test_form_post_of_an_empty_question_says_so(
    indexed: Settings, image_id: int, oracle: str
) -> None:
    with _client(indexed, oracle) as client:
        page = client.post(f"/images/{image_id}/ask", data={"question": "  "})
    assert page.status_code == 400
    assert "The question is empty" in page.context["ask_error"]  # type: ignore[attr-defined]
    assert 'role="alert"' in page.text and "The question is empty" in page.text


def test_missing_weights_name_what_to_download_on_the_page_and_in_the_api(
    indexed: Settings, image_id: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    # huggingface_hub reads these once, at import; pin them to this test's empty offline cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with _client(indexed, MISSING_REPO) as client:
        page = client.post(f"/images/{image_id}/ask", data={"question": "is it round?"})
        api = client.post(f"/api/images/{image_id}/ask", json={"question": "is it round?"})
    assert page.status_code == 503 == api.status_code, page.text
    message = page.context["ask_error"]  # type: ignore[attr-defined]
    for expected in (MISSING_REPO, "HF_HUB_OFFLINE", "local-dir:PATH"):
        assert expected in message, f"{expected!r} missing from: {message}"
    assert api.json()["error"]["message"] == message, "the box shows the API's own message"
    assert page.context["answer"] is None  # type: ignore[attr-defined]


def test_no_question_box_for_a_file_that_failed_to_decode(indexed: Settings, oracle: str) -> None:
    with _client(indexed, oracle) as client:
        statuses = {i: client.get(f"/api/images/{i}").json().get("status") for i in range(1, 30)}
        failed = [i for i, status in statuses.items() if status == "failed"]
        assert failed, f"the photo set's corrupt file is in the catalog: {statuses}"
        page = client.get(f"/images/{failed[0]}", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.context["can_ask"] is False  # type: ignore[attr-defined]
    assert 'id="ask-form"' not in page.text
