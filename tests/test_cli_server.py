"""`pixseek search` through a running `pixseek serve`: with --server URL, or found by itself
through the record `pixseek serve` keeps in the data directory, it prints what a local search
prints (table and JSON), forwards exactly the request it built, shows the server's errors as
the one-line message a local search shows, and ignores (and removes) a stale record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from search.query.engine import SearchEngine
from search.schemas import SearchOptions, SearchRequest, SearchResponse
from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web import server_info
from web.app import create_app
from web.cli import app
from web.cli import search as search_command
from web.cli.server_client import _headers, query_params

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180  # the server imports torch first; a busy CI machine takes a while


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, model="tiny-test", workers=0, device="cpu")


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIXSEEK_")}
    return {
        **env,
        "PIXSEEK_DATA_DIR": str(data_dir),
        "PIXSEEK_CACHE_DIR": str(data_dir.parent / "cache"),
        "PIXSEEK_MODEL": "tiny-test",
        "PIXSEEK_DEVICE": "cpu",
        "PIXSEEK_WORKERS": "0",
        "PIXSEEK_WARM_ON_START": "false",
        "HF_HUB_OFFLINE": "1",
    }


class ServeProcess:
    """`pixseek serve --port 0` in a child process, and the record it writes once it listens."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", "--port", "0"],
            cwd=REPO,
            env=_server_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.record = self._wait_for_record()

    def _wait_for_record(self) -> server_info.ServerRecord:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            record = server_info.read_server_record(self.data_dir)
            if record is not None:
                return record
            if self.process.poll() is not None:
                output = self.process.stdout.read() if self.process.stdout else ""
                raise AssertionError(f"pixseek serve exited {self.process.returncode}: {output}")
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"pixseek serve wrote no record in {START_TIMEOUT_S} s")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        """Stop it with `sig`; its output."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        output, _ = self.process.communicate(timeout=60)
        return output or ""


def _invoke(data_dir: Path, *args: str, expect: int = 0) -> Any:
    env = {"PIXSEEK_DATA_DIR": str(data_dir), "PIXSEEK_MODEL": "tiny-test", "COLUMNS": "200"}
    env |= {"PIXSEEK_DEVICE": "cpu", "PIXSEEK_WORKERS": "0"}
    result = CliRunner().invoke(app, ["search", *args], env=env)
    assert result.exit_code == expect, (
        f"pixseek search {' '.join(args)} exited {result.exit_code} (expected {expect}):\n"
        f"{result.output}"
    )
    return result


def _answer(data_dir: Path, *args: str) -> dict[str, Any]:
    """The --json answer without its timings (milliseconds differ from run to run)."""
    answer = json.loads(_invoke(data_dir, *args, "--json").stdout)
    answer.pop("timings")
    assert isinstance(answer, dict)
    return answer


def _refuse_local_search(*_args: Any) -> Any:
    raise AssertionError("searched locally, not on the running server")


@pytest.fixture
def no_local_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any search that would run in this process fails: the answer must come from a server."""
    monkeypatch.setattr(search_command, "_search_locally", _refuse_local_search)


@pytest.fixture
def local_searches(monkeypatch: pytest.MonkeyPatch) -> list[SearchRequest]:
    """Records the searches run in this process (each answers no results)."""
    seen: list[SearchRequest] = []

    def record(_settings: Settings, request: SearchRequest, *_args: Any) -> SearchResponse:
        seen.append(request)
        return SearchResponse(query=request.query, k=request.k or 10, results=[])

    monkeypatch.setattr(search_command, "_search_locally", record)
    return seen


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet) -> Path:
    """A data directory with the photo set indexed (tiny-test model) as two collections."""
    data_dir = tmp_path_factory.mktemp("served") / "data"
    cli = Cli(_settings(data_dir))
    cli("index", str(photo_set.root))
    cli("index", str(photo_set.root / "holiday"), "--collection", "holiday")
    return data_dir


@pytest.fixture(scope="module")
def served(indexed: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(indexed)
    yield server
    server.stop()


CASES = [
    ["a red circle on a blue background"],
    ["a red circle", "--k", "3"],
    ["a blue square", "--collection", "holiday", "--k", "4"],
]


@pytest.mark.slow
@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_a_server_answers_as_a_local_search(
    served: ServeProcess, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, url = served.data_dir, served.record.url
    local = _answer(data_dir, *args, "--local")
    assert local["results"], local
    assert _answer(data_dir, *args, "--server", url) == local
    table = _invoke(data_dir, *args, "--local").stdout
    assert _invoke(data_dir, *args, "--server", url).stdout == table
    monkeypatch.setattr(search_command, "_search_locally", _refuse_local_search)
    assert _answer(data_dir, *args) == local  # found by itself: the record in the data dir


@pytest.mark.slow
def test_an_image_search_goes_to_the_server(
    served: ServeProcess, photo_set: PhotoSet, no_local_search: None
) -> None:
    picture = str(photo_set.good[3])
    remote = _answer(served.data_dir, "--image", picture, "--k", "3")
    assert remote["results"][0]["path"] == picture
    assert remote["results"][0]["score"] == pytest.approx(1.0, abs=2e-3)


@pytest.mark.slow
def test_server_errors_read_like_local_ones(served: ServeProcess) -> None:
    args = ["red", "--collection", "nowhere"]
    local = _invoke(served.data_dir, *args, "--local", expect=1).output
    remote = _invoke(served.data_dir, *args, "--server", served.record.url, expect=1).output
    assert remote == local
    assert local.startswith("Error: ") and "nowhere" in local and local.count("\n") == 1, local


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_refusing_port()}"
    output = _invoke(tmp_path / "data", "red", "--server", url, expect=1).output
    assert f"No answer from the pixseek server at {url}" in " ".join(output.split())


@pytest.mark.slow
def test_serve_records_itself_while_it_listens(tmp_path: Path, no_local_search: None) -> None:
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir)
    try:
        record = server.record
        assert (record.pid, Path(record.data_dir)) == (server.process.pid, data_dir.resolve())
        assert record.url == f"http://127.0.0.1:{record.port}" and record.port != 0
        with socket.create_connection(("127.0.0.1", record.port), timeout=5):
            pass
        # found by itself; the answer is the server's error for an empty catalog
        output = _invoke(data_dir, "a red car", expect=1).output
        assert output.startswith("Error: Nothing is indexed yet."), output
    finally:
        output = server.stop(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal (the conventional exit status)
    assert server.process.returncode in (0, -signal.SIGTERM), output
    assert not server_info.record_path(data_dir).exists(), "a clean exit removes the record"


def _refusing_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_stale_record_is_ignored_and_removed(
    tmp_path: Path, local_searches: list[SearchRequest]
) -> None:
    data_dir = tmp_path / "data"
    settings = _settings(data_dir)
    path = server_info.record_path(data_dir)
    live = server_info.write_server_record(settings, "127.0.0.1", _refusing_port())
    for stale in (live, replace(live, pid=_dead_pid())):  # port refused; process gone
        path.write_text(json.dumps(stale.__dict__))
        _invoke(data_dir, "red")
        assert path.exists() is False, f"the stale record {stale} was left"
    assert len(local_searches) == 2, "each search ran locally instead"


def test_a_record_of_another_catalog_is_left_alone(
    tmp_path: Path, local_searches: list[SearchRequest]
) -> None:
    data_dir = tmp_path / "data"
    record = server_info.write_server_record(_settings(data_dir), "127.0.0.1", _refusing_port())
    moved = replace(record, data_dir=str(tmp_path / "elsewhere"))
    server_info.record_path(data_dir).write_text(json.dumps(moved.__dict__))
    _invoke(data_dir, "red")
    assert server_info.read_server_record(data_dir) == moved
    assert len(local_searches) == 1


def test_local_and_a_broken_record_search_here(
    tmp_path: Path, local_searches: list[SearchRequest]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server_info.record_path(data_dir).write_text("{not json")
    _invoke(data_dir, "red")
    _invoke(data_dir, "red", "--local")
    assert len(local_searches) == 2


# -- the request a server receives -------------------------------------------------------------


class ThreadServer:
    """The pixseek app under uvicorn in a thread of this process, on a free loopback port, so
    a test can watch the engine calls both a local search and the server make."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[SearchRequest, Any]]:
    """`SearchEngine.search`, in this process and in the thread server, records its request
    and example image and answers no results."""
    calls: list[tuple[SearchRequest, Any]] = []

    def record(
        _engine: SearchEngine, request: SearchRequest, image: bytes | None = None, **_kw: Any
    ) -> SearchResponse:
        calls.append((request, image or [(i.data, i.weight) for i in _kw.get("images", ())]))
        return SearchResponse(query=request.query, k=request.k or 10, results=[])

    monkeypatch.setattr(SearchEngine, "search", record)
    return calls


EVERY_OPTION = [
    *("--folder", "/photos/2024", "--date-from", "2024-01-01", "--date-to", "2024-12-31"),
    *("--camera", "canon", "--tag", "sea", "--tag", "sky", "--any-tag", "dog", "--any-tag", "cat"),
    *("--min-width", "100", "--max-width", "5000", "--min-height", "50", "--max-height", "4000"),
    *("--min-megapixels", "0.5", "--max-megapixels", "50", "--orientation", "portrait"),
    *("--file-type", "jpeg", "--file-type", "png", "--no-caption", "--min-score", "0.2"),
    *("--cutoff", "auto", "--sort", "date_asc", "--limit", "5", "--cursor", "abc"),
    *("--collection", "trips", "--k", "50", "--model", "tiny-test", "--dedupe"),
]


def test_the_server_receives_exactly_the_request(
    tmp_path: Path, engine_calls: list[tuple[SearchRequest, Any]]
) -> None:
    data_dir = tmp_path / "data"
    server = ThreadServer(_settings(data_dir).model_copy(update={"warm_on_start": False}))
    try:
        text = ["beach + 2:sunset - people", *EVERY_OPTION, "--rerank", "--rerank-k", "8"]
        _invoke(data_dir, *text, "--local")
        _invoke(data_dir, *text, "--server", server.url)
        picture = tmp_path / "example.png"
        picture.write_bytes(b"not really a png")
        image = ["--image", str(picture), *EVERY_OPTION]
        _invoke(data_dir, *image, "--local")
        _invoke(data_dir, *image, "--server", server.url)
    finally:
        server.stop()
    (local_text, remote_text, local_image, remote_image) = engine_calls
    assert remote_text == local_text
    assert remote_image == local_image
    assert local_image[1] == [(b"not really a png", 1.0)]


def test_query_params_name_every_set_field_as_the_api_does(tmp_path: Path) -> None:
    request = SearchRequest(q="red", tag=["a", "b"], has_caption=False, date_from="2024-01-02")
    assert sorted(query_params(request)) == [
        ("date_from", "2024-01-02"),
        ("has_caption", "false"),
        ("q", "red"),
        ("tag", "a"),
        ("tag", "b"),
    ]
    spec = create_app(_settings(tmp_path / "data")).openapi()
    api_names = {p["name"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    for name, field in SearchOptions.model_fields.items():
        key = field.validation_alias if isinstance(field.validation_alias, str) else name
        assert key in api_names, f"{name} is sent as {key!r}, which GET /api/search does not read"


def test_a_token_in_the_environment_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _headers() == {}
    monkeypatch.setenv("PIXSEEK_ADMIN_TOKEN", "admin-secret")
    assert _headers() == {"Authorization": "Bearer admin-secret"}
    monkeypatch.setenv("PIXSEEK_READ_TOKEN", "read-secret")
    assert _headers() == {"Authorization": "Bearer read-secret"}


def test_a_relative_data_dir_names_the_same_catalog_as_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pixseek demo` serves DIR/data by its absolute path; `pixseek --data-dir data/demo/data
    search` from the repository names it relatively: the same SQLite catalog, the same server."""
    from web.server_info import catalog_fingerprint

    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = Settings(data_dir=Path("data")).resolved_database_url()
    absolute = Settings(data_dir=tmp_path / "data").resolved_database_url()
    assert relative != absolute
    assert catalog_fingerprint(relative) == catalog_fingerprint(absolute)
    other = Settings(data_dir=tmp_path / "other").resolved_database_url()
    assert catalog_fingerprint(other) != catalog_fingerprint(absolute)
    postgres = "postgresql+psycopg://u:secret@db:5432/pixseek"
    assert "secret" not in catalog_fingerprint(postgres)
