"""The HTTP surface: one error shape, docs, health, upload limits, and files only by id."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from search.schemas import MAX_K, SEARCH_MODES
from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api") / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        max_upload_bytes=200_000,
        max_upload_pixels=1_000_000,
    )
    Cli(settings).json("index", str(photo_set.root))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_health_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert client.get(f"/docs-assets/{asset}").status_code == 200, asset
    # Swagger UI reads OpenAPI 3.1 (what FastAPI emits) from version 5 on; the browser test in
    # test_docs.py checks that it really renders.
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version and int(version.group(1)) >= 5, "the vendored Swagger UI is older than 5"
    paths = client.get("/openapi.json").json()["paths"]
    for route in (
        "/api/search",
        "/api/search/image",
        "/api/images/{image_id}",
        "/api/images/{image_id}/file",
        "/api/images/{image_id}/thumbnail",
        "/api/images/{image_id}/similar",
    ):
        assert route in paths


def test_search_parameters_are_documented_once(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert {"q", "k", "collection", "mode", "dedupe", "rerank", "rerank_k", "tag"} <= set(params)
    assert all(p.get("description") for p in params.values()), params
    assert params["k"]["schema"]["anyOf"][0]["maximum"] == MAX_K
    assert tuple(params["mode"]["schema"]["enum"]) == SEARCH_MODES


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("get", "/api/search", {}, 422, "invalid_request"),
        ("get", "/api/search?q=cat&k=0", {}, 422, "invalid_request"),
        ("get", "/api/search?q=cat&k=5000", {}, 422, "invalid_request"),
        ("get", "/api/search?q=cat&collection=nope", {}, 404, "not_found"),
        ("get", "/api/images/123456", {}, 404, "not_found"),
        ("get", "/api/images/abc", {}, 422, "invalid_request"),
        ("get", "/api/nothing-here", {}, 404, "not_found"),
        (
            "post",
            "/api/search/image",
            {"files": {"file": ("x.png", b"not an image", "image/png")}},
            400,
            "bad_input",
        ),
    ],
)
def test_errors_have_one_shape(
    client: TestClient, method: str, url: str, kwargs: dict, status: int, code: str
) -> None:
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "request_id"}
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    assert body["error"]["status"] == status and body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("query", "form", "expected_k"),
    [
        ("?k=2", {}, 2),
        ("", {"k": "3"}, 3),
        ("?k=4", {"k": "4"}, 4),
        ("?k=2", {"dedupe": "true"}, 2),
    ],
)
def test_image_search_reads_k_from_the_query_or_the_form(
    client: TestClient, photo_set: PhotoSet, query: str, form: dict[str, str], expected_k: int
) -> None:
    with photo_set.good[0].open("rb") as handle:
        response = client.post(
            f"/api/search/image{query}", files={"file": ("q.png", handle)}, data=form
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["k"] == expected_k and len(body["results"]) == expected_k, body


def test_image_search_refuses_two_different_ks_and_documents_both_places(
    client: TestClient,
) -> None:
    response = client.post(
        "/api/search/image?k=2",
        files={"file": ("q.png", _png((64, 64)), "image/png")},
        data={"k": "3"},
    )
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("k: given as a query parameter (2) and as a form field (3)"), message
    response = client.post(
        "/api/search/image?k=0", files={"file": ("q.png", _png((64, 64)), "image/png")}
    )
    assert response.status_code == 422 and "k:" in response.json()["error"]["message"]

    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/search/image"]["post"]
    assert "k" in {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    form_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = _schema(spec, form_ref)
    fields = set(form["properties"])
    for part in form.get("allOf", []):  # the SearchRequest fields, by reference
        fields |= set(_schema(spec, part["$ref"])["properties"])
    assert {"file", "k"} <= fields, form
    description = " ".join(operation["description"].split())
    assert "either as query parameters" in description and "or as form fields" in description


def _schema(spec: dict, ref: str) -> dict:
    """The component schema that `ref` ("#/components/schemas/Name") points to."""
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_upload_limits(client: TestClient) -> None:
    too_many_bytes = b"\x89PNG" + b"0" * 300_000
    response = client.post(
        "/api/search/image", files={"file": ("big.png", too_many_bytes, "image/png")}
    )
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]
    too_many_pixels = _png((1200, 1000))
    assert len(too_many_pixels) < 200_000
    response = client.post(
        "/api/search/image", files={"file": ("wide.png", too_many_pixels, "image/png")}
    )
    assert response.status_code == 400 and "too large" in response.json()["error"]["message"]
    ok = client.post("/api/search/image", files={"file": ("ok.png", _png((100, 80)), "image/png")})
    assert ok.status_code == 200 and ok.json()["results"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/..%2F..%2Fetc%2Fpasswd/file",
        "/api/images/%2Fetc%2Fpasswd/file",
        "/static/..%2F..%2Fsearch%2Fsettings.py",
        "/api/images/-1/file",
    ],
)
def test_no_path_from_the_request_is_ever_served(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code in (404, 422)
    assert b"root:" not in response.content and b"BaseSettings" not in response.content


def test_html_pages_render_and_show_errors(client: TestClient) -> None:
    page = client.get("/?q=red+circle&k=5", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.text.count('class="result"') == 5
    assert "http://" not in page.text.replace("http://testserver", "")  # no external resources
    missing = client.get("/images/99999", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "No image with id 99999" in missing.text


def test_unexpected_errors_are_500s_in_the_one_shape_with_a_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", device="cpu", warm_on_start=False))

    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/test-boom", boom)
    app.add_api_route("/test-boom", boom)
    with caplog.at_level(logging.ERROR, logger="web.errors"), TestClient(app) as client:
        response = client.get("/api/test-boom")
        given = client.get("/api/test-boom", headers={"X-Request-ID": "proxy-id.42"})
        forged = client.get("/api/test-boom", headers={"X-Request-ID": "x" * 500})
        page = client.get("/test-boom", headers={"accept": "text/html"})
        healthy = client.get("/healthz")

    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "request_id"}
    assert body["error"]["status"] == 500 and body["error"]["code"] == "internal_error"
    request_id = body["error"]["request_id"]
    assert response.headers["X-Request-ID"] == request_id
    assert request_id in body["error"]["message"]
    assert "secret internals" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None, caplog.text

    assert given.headers["X-Request-ID"] == given.json()["error"]["request_id"] == "proxy-id.42"
    assert forged.headers["X-Request-ID"] == forged.json()["error"]["request_id"] != "x" * 500
    assert page.status_code == 500 and page.headers["X-Request-ID"] in page.text
    assert "secret internals" not in page.text
    assert healthy.status_code == 200 and healthy.headers["X-Request-ID"]
