"""The server warms its models at start: /readyz answers 503 while warming and 200 after, the
first query then costs what the tenth does, and repeated text queries skip the encoder."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app


def _wait_ready(client: TestClient, ceiling: float = 300.0) -> dict[str, object]:
    started = time.monotonic()
    while True:
        answer = client.get("/readyz")
        body = answer.json()
        if (
            answer.status_code == 200
            or body["status"] == "failed"
            or time.monotonic() - started > ceiling
        ):
            return body
        assert answer.status_code == 503 and body["status"] == "warming", body
        time.sleep(0.05)


def test_readyz_turns_ready_once_every_collection_is_warm(
    cli: Cli, settings: Settings, photo_set: PhotoSet
) -> None:
    cli.json("index", str(photo_set.root))
    with TestClient(create_app(settings)) as client:
        body = _wait_ready(client)
        assert body["status"] == "ready" and body["collections"] == ["default"], body
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert engine._encoders, "the collection's encoder was loaded before any query"
        client.get("/api/search", params={"q": "a red circle"})
        client.get("/api/search", params={"q": "a red circle", "k": 3})
        assert (engine.query_vectors.misses, engine.query_vectors.hits) == (1, 1)


def test_warming_that_fails_says_why_and_the_server_keeps_answering(
    settings: Settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from search.catalog import open_catalog

    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    catalog.create_collection(
        "broken", model_spec="ViT-B-32/no-such-tag", model_id="open_clip:x", dim=4
    )
    catalog.close()
    with TestClient(create_app(settings)) as client:
        body = _wait_ready(client)
        assert body["status"] == "failed" and "no-such-tag" in str(body["reason"]), body
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").json() == {"status": "ok"}


def test_warming_can_be_turned_off(settings: Settings) -> None:
    from search.catalog import open_catalog

    open_catalog(settings.resolved_database_url(), upgrade=True).close()
    with TestClient(create_app(settings.model_copy(update={"warm_on_start": False}))) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 200 and answer.json()["status"] == "ready"
        assert not client.app.state.engine._encoders  # type: ignore[attr-defined]
