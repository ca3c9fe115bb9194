"""The server as an attacker meets it: no open admin door, no path out of the indexed folders,
no file outside its collection's root, ids that cannot overflow, bounded uploads, no
cross-site writes, CORS off unless configured, and a refusal to listen on the network without
an admin token."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from search.catalog import open_catalog
from search.errors import ConfigError
from search.images.paths import decode_path
from search.settings import Settings
from tests.conftest import Cli
from web.app import create_app
from web.exposure import check_bind

TOKEN = "admin-s3cret"
READ = "read-s3cret"
INT64_PAST = "5745718016818402604089344"
LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}


@dataclass
class Library:
    """An indexed folder, a folder outside it with a secret image, and the data directory."""

    settings: Settings
    root: Path
    outside: Path
    ids: dict[str, int]


def _save(path: Path, colour: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(path)
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    base = tmp_path_factory.mktemp("security")
    root, outside = base / "photos", base / "outside"
    for name, colour in [("a.png", "red"), ("b.png", "blue"), ("sub/c.png", "green")]:
        _save(root / name, colour)
    _save(root / "to-delete.png", "white")
    _save(outside / "secret.png", "black")
    _save(outside / "sub" / "c.png", "yellow")
    settings = Settings(
        data_dir=base / "data", model="tiny-test", workers=0, device="cpu", warm_on_start=False
    )
    Cli(settings).json("index", str(root))
    catalog = open_catalog(settings.resolved_database_url())
    try:
        info = catalog.require_collection("default")
        records = catalog.get_images(catalog.embedded_ids(info.id)).values()
        ids = {decode_path(r.path).relative_to(root).as_posix(): r.id for r in records}
        catalog.delete_images([ids["to-delete.png"]])
    finally:
        catalog.close()
    return Library(settings, root, outside, ids)


def _client(settings: Settings, *, local: bool = False) -> TestClient:
    return TestClient(create_app(settings), **(LOCAL if local else {}))  # type: ignore[arg-type]


def _error(response: object, status: int) -> dict:
    """The body of an error answer, after checking it is the one JSON shape."""
    assert response.status_code == status, (response.status_code, response.text)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    assert {"status", "code", "message", "request_id"} == set(body["error"]), body
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]  # type: ignore[attr-defined]
    return body["error"]  # type: ignore[no-any-return]


# -- the admin door -------------------------------------------------------------------------


def test_without_an_admin_token_admin_routes_answer_only_local_requests(
    library: Library,
) -> None:
    job = {"path": str(library.root)}
    with _client(library.settings) as remote:
        error = _error(remote.post("/api/jobs", json=job), 403)
        assert "PIXSEEK_ADMIN_TOKEN" in error["message"]
        _error(remote.post("/api/jobs/1/cancel"), 403)
    with _client(library.settings, local=True) as local:
        # Past the admin door, the API still indexes nothing: no allowed roots are set.
        error = _error(local.post("/api/jobs", json=job), 403)
        assert "PIXSEEK_ALLOWED_ROOTS" in error["message"]
        relayed = local.post("/api/jobs", json=job, headers={"X-Forwarded-For": "203.0.113.9"})
        assert "PIXSEEK_ADMIN_TOKEN" in _error(relayed, 403)["message"]
        forwarded = local.post("/api/jobs", json=job, headers={"Forwarded": "for=203.0.113.9"})
        assert "PIXSEEK_ADMIN_TOKEN" in _error(forwarded, 403)["message"]
    opened = library.settings.model_copy(update={"insecure_no_auth": True})
    with _client(opened) as remote:
        assert "PIXSEEK_ALLOWED_ROOTS" in _error(remote.post("/api/jobs", json=job), 403)["message"]


def test_with_an_admin_token_admin_routes_need_it_from_everywhere(library: Library) -> None:
    settings = library.settings.model_copy(update={"admin_token": TOKEN})
    job = {"path": str(library.root)}
    with _client(settings, local=True) as client:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": TOKEN},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            response = client.post("/api/jobs", json=job, headers=headers)
            assert _error(response, 401)["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
        admitted = client.post("/api/jobs", json=job, headers={"Authorization": f"Bearer {TOKEN}"})
        assert "PIXSEEK_ALLOWED_ROOTS" in _error(admitted, 403)["message"]


def test_a_read_token_protects_reads_but_not_the_probes(library: Library) -> None:
    settings = library.settings.model_copy(update={"read_token": READ, "admin_token": TOKEN})
    basic = base64.b64encode(f"anyone:{READ}".encode()).decode()
    with _client(settings, local=True) as client:
        for url in ("/api/stats", "/api/jobs", f"/api/images/{library.ids['a.png']}", "/metrics"):
            response = client.get(url)
            _error(response, 401)
            assert "Basic" in response.headers["WWW-Authenticate"]
        page = client.get("/", headers={"accept": "text/html"})
        assert page.status_code == 401 and "PIXSEEK_READ_TOKEN" in page.text
        for headers in (
            {"Authorization": f"Bearer {READ}"},
            {"Authorization": f"Basic {basic}"},
            {"Authorization": f"Bearer {TOKEN}"},
        ):
            assert client.get("/api/stats", headers=headers).status_code == 200, headers
            assert client.get("/metrics", headers=headers).status_code == 200, headers
        assert client.get("/api/stats", headers={"Authorization": "Basic !!"}).status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("host", "token", "insecure", "refused"),
    [
        ("127.0.0.1", None, False, False),
        ("::1", None, False, False),
        ("localhost", None, False, False),
        ("0.0.0.0", None, False, True),
        ("::", None, False, True),
        ("192.168.1.20", None, False, True),
        ("0.0.0.0", TOKEN, False, False),
        ("0.0.0.0", None, True, False),
    ],
)
def test_serving_on_the_network_needs_an_admin_token(
    tmp_path: Path, host: str, token: str | None, insecure: bool, refused: bool
) -> None:
    settings = Settings(data_dir=tmp_path, admin_token=token)
    if not refused:
        check_bind(host, settings, insecure_no_auth=insecure)
        return
    with pytest.raises(ConfigError) as raised:
        check_bind(host, settings, insecure_no_auth=insecure)
    message = str(raised.value)
    assert host in message and "PIXSEEK_ADMIN_TOKEN" in message
    assert "--insecure-no-auth" in message and message.count(". ") == 0, message


def test_pixseek_serve_refuses_a_network_address_before_it_listens(tmp_path: Path) -> None:
    """The CLI runs the check before any socket opens: the command exits 1 with the sentence,
    and nothing was recorded as a running server."""
    from typer.testing import CliRunner

    from web.cli import app

    env = {"PIXSEEK_DATA_DIR": str(tmp_path / "data"), "PIXSEEK_MODEL": "tiny-test"}
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0"], env=env)
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "Refusing to serve on 0.0.0.0" in output and "--insecure-no-auth" in output
    assert not (tmp_path / "data" / "server.json").exists()


# -- indexing only inside the allowed roots --------------------------------------------------


def test_the_api_indexes_only_inside_the_allowed_roots(library: Library, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    _save(allowed / "inside" / "x.png", "red")
    (allowed / "escape").symlink_to(library.outside, target_is_directory=True)
    settings = library.settings.model_copy(
        update={"allowed_roots": [allowed], "data_dir": tmp_path / "data"}
    )
    with _client(settings, local=True) as client:
        for path in (
            library.outside,
            allowed / "escape",
            allowed / "escape" / "secret.png",
            f"{allowed}/../outside",
            f"{allowed}/inside/../../{library.outside.name}",
            "/etc",
            "/",
            f"{allowed}-sibling",
        ):
            error = _error(client.post("/api/jobs", json={"path": str(path)}), 403)
            assert "PIXSEEK_ALLOWED_ROOTS" in error["message"], (path, error)
        relative = client.post("/api/jobs", json={"path": "inside"})
        assert "absolute" in _error(relative, 400)["message"]
        started = client.post("/api/jobs", json={"path": str(allowed / "inside")})
        assert started.status_code == 202, started.text


# -- files only by id, only from inside their root -------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/..%2F..%2Fetc%2Fpasswd/file",
        "/api/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
        "/api/images/%252e%252e%252fetc%252fpasswd/file",
        "/api/images/%2Fetc%2Fpasswd/file",
        "/api/images/%2Fetc%2Fpasswd/thumbnail",
        "/api/images/1%2F..%2F..%2Fetc%2Fpasswd/file",
        "/api/images/-1/file",
        f"/api/images/{INT64_PAST}",
        f"/api/images/{INT64_PAST}/similar",
        f"/api/images/{INT64_PAST}/file",
        f"/api/images/{INT64_PAST}/thumbnail",
        f"/api/images/-{INT64_PAST}/similar",
        "/api/images/9223372036854775808/similar",
        f"/api/jobs/{INT64_PAST}",
        "/api/images/1e3/file",
    ],
)
def test_no_path_or_overflowing_id_from_the_request_is_served(library: Library, url: str) -> None:
    with _client(library.settings) as client:
        response = client.get(url)
    assert response.status_code in (404, 422), (url, response.status_code, response.text)
    _error(response, response.status_code)
    assert b"root:" not in response.content


def test_the_largest_int64_id_is_a_plain_not_found(library: Library) -> None:
    with _client(library.settings) as client:
        for suffix in ("", "/similar", "/file", "/thumbnail"):
            _error(client.get(f"/api/images/{2**63 - 1}{suffix}"), 404)


def test_a_deleted_image_is_gone_everywhere(library: Library) -> None:
    deleted = library.ids["to-delete.png"]
    with _client(library.settings) as client:
        for suffix in ("", "/similar", "/file", "/thumbnail"):
            _error(client.get(f"/api/images/{deleted}{suffix}"), 404)


@pytest.fixture
def swapped(library: Library, tmp_path: Path) -> Iterator[Library]:
    """The library with a photo and a subfolder replaced by symlinks out of the root."""
    backup = tmp_path / "backup"
    shutil.copytree(library.root, backup, symlinks=True)
    (library.root / "a.png").unlink()
    (library.root / "a.png").symlink_to(library.outside / "secret.png")
    shutil.rmtree(library.root / "sub")
    (library.root / "sub").symlink_to(library.outside / "sub", target_is_directory=True)
    try:
        yield library
    finally:
        (library.root / "a.png").unlink()
        (library.root / "sub").unlink()
        shutil.copy2(backup / "a.png", library.root / "a.png")
        shutil.copytree(backup / "sub", library.root / "sub")


def test_a_file_that_now_resolves_outside_its_root_is_not_served(swapped: Library) -> None:
    with _client(swapped.settings) as client:
        for name in ("a.png", "sub/c.png"):
            for suffix in ("/file", "/thumbnail"):
                response = client.get(f"/api/images/{swapped.ids[name]}{suffix}")
                error = _error(response, 403)
                assert "outside the folder" in error["message"], error
        served = client.get(f"/api/images/{swapped.ids['b.png']}/file")
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(served.content)).getpixel((0, 0)) == (0, 0, 255)


# -- uploads -----------------------------------------------------------------------------------


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_an_upload_over_the_limit_is_413_before_it_is_read(library: Library) -> None:
    settings = library.settings.model_copy(update={"max_upload_bytes": 1_000_000})
    big = _png() + os.urandom(30 * 1024 * 1024)
    with _client(settings) as client:
        declared = client.post("/api/search/image", files={"file": ("big.png", big, "image/png")})
        error = _error(declared, 413)
        assert "PIXSEEK_MAX_UPLOAD_BYTES" in error["message"] and error["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            boundary = b"--xyz\r\n"
            yield boundary + b'Content-Disposition: form-data; name="file"; filename="b.png"\r\n'
            yield b"Content-Type: image/png\r\n\r\n"
            for _ in range(40):
                yield b"\0" * 1024 * 1024

        chunked = client.post(
            "/api/search/image",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        _error(chunked, 413)
        page = client.post(
            "/search/image",
            files={"file": ("big.png", big, "image/png")},
            headers={"accept": "text/html"},
        )
        assert page.status_code == 413 and "PIXSEEK_MAX_UPLOAD_BYTES" in page.text


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data\r\n\r\n"),
        ("multipart/form-data; boundary=xyz", b"not multipart at all"),
        ("multipart/form-data", b"--\r\n"),
    ],
)
def test_malformed_multipart_is_a_400_or_422(
    library: Library, content_type: str, body: bytes
) -> None:
    with _client(library.settings) as client:
        response = client.post(
            "/api/search/image", content=body, headers={"Content-Type": content_type}
        )
    assert response.status_code in (400, 422), response.text
    _error(response, response.status_code)


# -- cross-site requests and CORS --------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_site_writes_are_refused(library: Library, headers: dict[str, str]) -> None:
    with _client(library.settings, local=True) as client:
        for url in ("/api/jobs/1/cancel", "/search/image"):
            response = client.post(url, headers=headers)
            assert _error(response, 403)["code"] == "cross_site", url
        assert client.get("/api/stats", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://127.0.0.1:8000"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8000"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_same_site_and_non_browser_writes_pass_the_guard(
    library: Library, headers: dict[str, str]
) -> None:
    with _client(library.settings, local=True) as client:
        response = client.post("/api/jobs/999999/cancel", headers=headers)
    assert _error(response, 404)["code"] == "not_found"


def test_cors_is_off_unless_configured(library: Library) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    with _client(library.settings) as client:
        assert (
            "access-control-allow-origin"
            not in client.options("/api/search", headers=preflight).headers
        )
        plain = client.get("/api/stats", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in plain.headers
    settings = library.settings.model_copy(update={"cors_origins": ["https://app.example"]})
    with _client(settings, local=True) as client:
        allowed = client.options("/api/search", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/api/stats", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        # A configured origin may write too (with the token a real deployment needs).
        write = client.post("/api/jobs/999999/cancel", headers={"Origin": "https://app.example"})
        assert _error(write, 404)["code"] == "not_found"
