"""Query power through the JSON API on a small indexed folder (the random-weight tiny encoder:
these tests check mechanics, not meaning; tests/test_world_query_power.py checks meaning):
pages and cursors, query arithmetic over ids and uploads, and the JSON form of a search."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("power") / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
    )
    Cli(settings).json("index", str(photo_set.root))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _ids(response: dict) -> list[int]:
    return [r["id"] for r in response["results"]]


def _ok(client: TestClient, method: str, url: str, **kwargs: object) -> dict:
    answer = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_pages_follow_the_cursor_without_duplicates_or_gaps(client: TestClient) -> None:
    whole = _ok(client, "GET", "/api/search", params={"q": "a photo", "k": 20})
    assert whole["total"] == 20 and whole["next_cursor"] is None
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"q": "a photo", "k": 20, "limit": 6}
        if cursor:
            params["cursor"] = cursor
        page = _ok(client, "GET", "/api/search", params=params)
        assert page["total"] == 20
        seen += _ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and seen == _ids(whole)


def test_a_cursor_of_another_search_or_a_forged_one_is_refused(client: TestClient) -> None:
    first = _ok(client, "GET", "/api/search", params={"q": "a photo", "k": 10, "limit": 3})
    other = client.get(
        "/api/search", params={"q": "a cat", "k": 10, "limit": 3, "cursor": first["next_cursor"]}
    )
    assert other.status_code == 400 and "different search" in other.json()["error"]["message"]
    forged = client.get("/api/search", params={"q": "a photo", "cursor": "not-a-cursor"})
    assert forged.status_code == 400 and "cursor" in forged.json()["error"]["message"]


def test_a_later_page_does_not_run_the_model_again(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    first = _ok(client, "GET", "/api/search", params={"q": "a quiet page", "k": 12, "limit": 4})
    misses = engine.query_vectors.misses
    _ok(
        client,
        "GET",
        "/api/search",
        params={"q": "a quiet page", "k": 12, "limit": 4, "cursor": first["next_cursor"]},
    )
    assert engine.query_vectors.misses == misses and engine.query_vectors.hits >= 0


def test_similar_and_id_terms_leave_the_query_image_out(client: TestClient) -> None:
    some = _ok(client, "GET", "/api/search", params={"q": "a photo", "k": 3})
    image_id = some["results"][0]["id"]
    similar = _ok(client, "GET", f"/api/images/{image_id}/similar", params={"k": 5})
    assert image_id not in _ids(similar) and len(similar["results"]) == 5
    by_term = _ok(client, "GET", "/api/search", params={"q": f"id:{image_id}", "k": 5})
    assert _ids(by_term) == _ids(similar)


def test_arithmetic_is_the_normalised_sum_of_the_terms(client: TestClient) -> None:
    """`id:A + 2:text` searches exactly normalise(vA/|vA| + 2 t/|t|): the scores prove it."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    image_id = _ok(client, "GET", "/api/search", params={"q": "a photo", "k": 1})["results"][0][
        "id"
    ]
    answer = _ok(client, "GET", "/api/search", params={"q": f"id:{image_id} + 2:red", "k": 5})
    info = engine.catalog.list_collections()[0]
    index = engine.index_for(info)
    encoder = engine._encoder(info, None)
    a = index.reconstruct(image_id)
    t = encoder.encode_texts(["red"])[0]
    q = a / np.linalg.norm(a) + 2 * t / np.linalg.norm(t)
    q /= np.linalg.norm(q)
    for result in answer["results"]:
        assert result["id"] != image_id
        assert result["score"] == pytest.approx(
            float(index.reconstruct(result["id"]) @ q), abs=1e-4
        )
    json_form = _ok(
        client,
        "POST",
        "/api/search",
        json={"terms": [{"image_id": image_id}, {"text": "red", "weight": 2}], "k": 5},
    )
    assert _ids(json_form) == _ids(answer)


def test_bad_terms_answer_a_clear_4xx(client: TestClient) -> None:
    for query, status, words in [
        ("red + ", 400, "empty term"),
        ("id:abc", 400, "not an image id"),
        ("id:99999999999", 404, "id:99999999999"),
        ("- people", 400, "only negative"),
    ]:
        answer = client.get("/api/search", params={"q": query})
        assert answer.status_code == status, (query, answer.text)
        assert words in answer.json()["error"]["message"], answer.text
    both = client.post("/api/search", json={"q": "red", "terms": [{"text": "blue"}]})
    assert both.status_code == 400 and "not both" in both.json()["error"]["message"]
    hybrid = client.get("/api/search", params={"q": "red + blue", "mode": "hybrid"})
    assert hybrid.status_code == 400 and "plain text" in hybrid.json()["error"]["message"]
    bad_term = client.post("/api/search", json={"terms": [{"text": "a", "image_id": 3}]})
    assert bad_term.status_code == 422


def test_an_upload_takes_query_terms_too(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    files = {"file": ("red.png", buffer.getvalue(), "image/png")}
    plain = _ok(client, "POST", "/api/search/image", files=files, data={"k": "5"})
    minus = _ok(client, "POST", "/api/search/image", files=files, data={"k": "5", "q": "- red"})
    assert len(plain["results"]) == len(minus["results"]) == 5
    assert [r["score"] for r in plain["results"]] != [r["score"] for r in minus["results"]]


def test_min_score_keeps_only_results_above_it(client: TestClient) -> None:
    everything = _ok(client, "GET", "/api/search", params={"q": "a photo", "k": 24})
    scores = sorted((r["clip_score"] for r in everything["results"]), reverse=True)
    threshold = scores[7]
    kept = _ok(client, "GET", "/api/search", params={"q": "a photo", "min_score": threshold})
    assert kept["total"] == 8 and kept["cutoff_score"] == pytest.approx(threshold)
    assert all(r["clip_score"] >= threshold and r["above_cutoff"] for r in kept["results"])


def test_several_uploaded_files_are_summed(client: TestClient) -> None:
    def png(colour: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), colour).save(buffer, "PNG")
        return buffer.getvalue()

    red, blue = png("red"), png("blue")
    both = _ok(
        client,
        "POST",
        "/api/search/image",
        files=[("file", ("red.png", red, "image/png")), ("file", ("blue.png", blue, "image/png"))],
        data={"k": "5"},
    )
    engine = client.app.state.engine  # type: ignore[attr-defined]
    info = engine.catalog.list_collections()[0]
    encoder = engine._encoder(info, None)
    vectors = encoder.encode_images([Image.open(io.BytesIO(d)).convert("RGB") for d in (red, blue)])
    q = vectors[0] / np.linalg.norm(vectors[0]) + vectors[1] / np.linalg.norm(vectors[1])
    q /= np.linalg.norm(q)
    index = engine.index_for(info)
    for result in both["results"]:
        assert result["score"] == pytest.approx(
            float(index.reconstruct(result["id"]) @ q), abs=1e-3
        )
