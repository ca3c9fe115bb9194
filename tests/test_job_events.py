"""Watching indexing jobs by Server-Sent Events: a job's stream sends JSON states whose `done`
only grows and ends with the final state; the all-jobs stream ends once nothing is at work;
neither needs the admin token; an unknown job is a 404 before any stream starts; and a client
that leaves does not hold up a server that stops."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import web.job_events
from search.catalog import open_catalog
from search.settings import Settings
from tests.conftest import Cli
from tests.live_server import serve_app
from tests.photos import PhotoSet
from web.app import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"done", "failed", "cancelled"}
CEILING_S = 600.0  # a loaded 2-core machine is slow, not wrong: wait for the event, not a clock


class _Lines(Protocol):
    def iter_lines(self) -> Iterator[str]: ...


def _events(response: _Lines) -> Iterator[Any]:
    """The JSON of each `data:` line of an event stream (every event here is one line)."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


def _watch(client: TestClient, url: str) -> list[dict[str, Any]]:
    """Every event of a job's stream until its final state, connecting again when a stream
    ends early (streams last at most `web.job_events.STREAM_SECONDS`)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + CEILING_S
    while time.monotonic() < deadline:
        with client.stream("GET", url) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            seen += list(_events(response))
        if seen and seen[-1]["state"] in FINAL:
            return seen
    raise AssertionError(f"{url} never reached a final state in {CEILING_S} s: {seen[-1:]}")


def _many_images(root: Path, count: int) -> Path:
    rng = random.Random(2)
    root.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (40, 40), tuple(rng.randrange(256) for _ in range(3))).save(
            root / f"{i:04d}.png"
        )
    return root


def test_a_job_stream_follows_the_job_to_done_without_the_token(
    settings: Settings, photo_set: PhotoSet
) -> None:
    settings = settings.model_copy(
        update={"admin_token": TOKEN, "allowed_roots": [photo_set.root], "batch_size": 2}
    )
    if not settings.resolved_database_url().startswith("sqlite"):
        Cli(settings)("db", "upgrade")
    with TestClient(create_app(settings)) as client:
        body = {"path": str(photo_set.root), "collection": "watched"}
        job = client.post("/api/jobs", json=body, headers=AUTH).json()
        events = _watch(client, f"/api/jobs/{job['id']}/events")

        assert {event["id"] for event in events} == {job["id"]}
        done = [event["done"] for event in events]
        assert done == sorted(done) and done[-1] > done[0], f"done went {done}"
        assert all(event["state"] in {"queued", "running"} for event in events[:-1]), events
        last = events[-1]
        total = len(photo_set.good) + 2
        assert (last["state"], last["done"], last["total"], last["failed"]) == (
            "done",
            total,
            total,
            2,
        )
        assert last["eta_seconds"] is None and last["rate"] > 0
        assert last["collection_failures_by_reason"] == {
            "not an image": 1,
            "truncated or corrupt image data": 1,
        }

        # the job is over: its stream sends the final state once and ends
        assert _watch(client, f"/api/jobs/{job['id']}/events") == [last]
        # all recent jobs: one event with every job, none at work, and the stream ends
        with client.stream("GET", "/api/jobs/events") as response:
            (update,) = list(_events(response))
        assert update == {"jobs": [last], "active": 0}
        assert client.get(f"/api/jobs/{job['id']}").json() == last


def test_an_unknown_job_is_a_404_before_any_stream(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", model="tiny-test", warm_on_start=False)
    with TestClient(create_app(settings)) as client:
        missing = client.get("/api/jobs/9999/events")
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"].startswith("application/json")
        assert missing.json()["error"]["code"] == "not_found"
        assert "9999" in missing.json()["error"]["message"]
        with client.stream("GET", "/api/jobs/events") as response:
            assert list(_events(response)) == [{"jobs": [], "active": 0}]


def test_the_event_routes_are_documented_as_event_streams(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", model="tiny-test", warm_on_start=False)
    spec = create_app(settings).openapi()
    for path, item in (("/api/jobs/{job_id}/events", "JobResponse"), ("/api/jobs/events", None)):
        operation = spec["paths"][path]["get"]
        assert operation["summary"] and "text/event-stream" in operation["description"]
        content = operation["responses"]["200"]["content"]
        assert list(content) == ["text/event-stream"], content
        data = content["text/event-stream"]["itemSchema"]["properties"]["data"]
        assert data["contentSchema"]["$ref"].endswith(item or "JobsUpdate")


def test_a_watcher_that_leaves_does_not_hold_up_a_stopping_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With streams allowed to last an hour, a client reads one event of a running job's
    stream and leaves; the server still stops within `serve_app`'s 10 s, and the job was at
    work then (the shutdown interrupted it)."""
    monkeypatch.setattr(web.job_events, "STREAM_SECONDS", 3600.0)
    corpus = _many_images(tmp_path / "many", 300)
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        batch_size=1,
        allowed_roots=[corpus],
        warm_on_start=False,
    )
    with serve_app(settings) as base_url:
        started = httpx.post(f"{base_url}/api/jobs", json={"path": str(corpus)}, timeout=CEILING_S)
        job = started.json()
        url = f"{base_url}/api/jobs/{job['id']}/events"
        with httpx.stream("GET", url, timeout=CEILING_S) as response:
            first = next(_events(response))
        assert first["state"] in {"queued", "running"}, first
    catalog = open_catalog(settings.resolved_database_url())
    try:
        stopped = catalog.get_job(job["id"])
    finally:
        catalog.close()
    assert stopped.state == "cancelled" and (stopped.error or "").startswith("interrupted"), stopped
