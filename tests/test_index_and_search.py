"""End to end through the CLI and the API, on SQLite and PostgreSQL: index a folder with a
corrupt file and a non-image, search by image and text, re-index, serve files by id."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app


def test_index_search_reindex_round_trip(cli: Cli, settings: Settings, photo_set: PhotoSet) -> None:
    summary = cli.json("index", str(photo_set.root))
    n_good = len(photo_set.good)
    assert summary["collection"] == "default"
    assert summary["seen"] == n_good + 2, summary
    assert (summary["indexed"], summary["failed"], summary["unchanged"], summary["removed"]) == (
        n_good,
        2,
        0,
        0,
    )

    # An image query returns the same image first, with cosine similarity ~1.
    for query_path in photo_set.good[:5]:
        hits = cli.json("search", "--image", str(query_path), "--k", "3")["results"]
        assert hits[0]["path"] == str(query_path), hits
        assert hits[0]["score"] == pytest.approx(1.0, abs=2e-3)

    # A text query returns k results in descending score order.
    text = cli.json("search", "a red circle on a blue background", "--k", "7")
    scores = [r["score"] for r in text["results"]]
    assert len(scores) == 7
    assert scores == sorted(scores, reverse=True)
    assert {"id", "path", "score"} <= set(text["results"][0])

    # Re-indexing embeds nothing.
    again = cli.json("index", str(photo_set.root))
    assert (again["indexed"], again["failed"], again["removed"]) == (0, 0, 0), again
    assert again["unchanged"] == again["seen"] == n_good + 2

    stats = cli.json("stats")
    assert stats["images"] == n_good + 2
    assert stats["embedded"] == stats["index_vectors"] == n_good
    assert stats["failed"] == 2
    assert stats["model_id"] == "open_clip:pixseek-tiny-test/random-seed0"

    # The API gives the same answers as the CLI, and serves files by catalog id only.
    with TestClient(create_app(settings)) as client:
        api = client.get(
            "/api/search", params={"q": "a red circle on a blue background", "k": 7}
        ).json()
        assert [(r["id"], r["path"]) for r in api["results"]] == [
            (r["id"], r["path"]) for r in text["results"]
        ]
        assert np.allclose([r["score"] for r in api["results"]], scores, atol=1e-5)

        with photo_set.good[3].open("rb") as handle:
            by_image = client.post(
                "/api/search/image",
                files={"file": ("q.jpg", handle, "image/jpeg")},
                data={"k": "2"},
            ).json()
        assert by_image["results"][0]["path"] == str(photo_set.good[3])

        first = api["results"][0]
        served = client.get(first["file_url"])
        assert served.status_code == 200
        assert served.content == Path(first["path"]).read_bytes()
        thumb = client.get(first["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content[:2] == b"\xff\xd8"

        detail = client.get(f"/api/images/{first['id']}").json()
        assert detail["status"] == "embedded" and detail["path"] == first["path"]
        similar = client.get(f"/api/images/{first['id']}/similar", params={"k": 4}).json()[
            "results"
        ]
        assert len(similar) == 4 and first["id"] not in [r["id"] for r in similar]

        # The corrupt file is recorded as failed, with its reason.
        failed = [
            c
            for c in (client.get(f"/api/images/{i}").json() for i in range(1, n_good + 3))
            if c.get("status") == "failed"
        ]
        reasons = {os.path.basename(c["path"]): c["error"] for c in failed}
        assert set(reasons) == {photo_set.corrupt.name, photo_set.not_an_image.name}, reasons
        assert "truncated" in reasons[photo_set.corrupt.name]
        assert "not an image" in reasons[photo_set.not_an_image.name]

        missing = client.get("/api/images/999999/file")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert client.get("/api/images/999999").status_code == 404


def test_reindex_prunes_deleted_and_reembeds_modified(cli: Cli, photos: PhotoSet) -> None:
    cli.json("index", str(photos.root))
    deleted, modified = photos.good[0], photos.good[1]
    deleted.unlink()
    shutil.copyfile(photos.good[2], modified)  # same name, new content
    os.utime(modified, (1_000_000_000, 1_000_000_000))
    summary = cli.json("index", str(photos.root))
    assert summary["removed"] == 1 and summary["indexed"] == 1, summary
    hits = cli.json("search", "--image", str(photos.good[2]), "--k", "2")["results"]
    assert {h["path"] for h in hits} == {str(photos.good[2]), str(modified)}
    assert all(h["score"] == pytest.approx(1.0, abs=2e-3) for h in hits)
    assert str(deleted) not in {
        h["path"] for h in cli.json("search", "anything", "--k", "100")["results"]
    }
    stats = cli.json("stats")
    assert stats["embedded"] == stats["index_vectors"] == len(photos.good) - 1


def test_search_with_another_encoder_is_refused(cli: Cli, photo_set: PhotoSet) -> None:
    cli.json("index", str(photo_set.root))
    result = cli("search", "red", "--model", "pixseek-tiny-world/random", expect=1)
    assert "was indexed with open_clip:pixseek-tiny-test/random-seed0" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    result = cli("index", str(photo_set.root), "--model", "pixseek-tiny-world/random", expect=1)
    assert "--collection NEW_NAME" in result.stderr


def test_search_before_indexing_says_what_to_do(cli: Cli) -> None:
    result = cli("search", "a cat", expect=1)
    assert "pixseek index PATH" in result.stderr


def test_decoding_in_worker_processes_gives_the_same_vectors(tmp_path, photo_set: PhotoSet) -> None:  # type: ignore[no-untyped-def]
    in_process = Settings(
        data_dir=tmp_path / "a", model="tiny-test", workers=0, device="cpu", batch_size=5
    )
    in_workers = Settings(
        data_dir=tmp_path / "b", model="tiny-test", workers=2, device="cpu", batch_size=5
    )
    a = Cli(in_process).json("index", str(photo_set.root))
    b = Cli(in_workers).json("index", str(photo_set.root))
    assert (a["indexed"], a["failed"]) == (b["indexed"], b["failed"]) == (len(photo_set.good), 2)
    query = str(photo_set.good[5])
    hits_a = Cli(in_process).json("search", "--image", query, "--k", "5")["results"]
    hits_b = Cli(in_workers).json("search", "--image", query, "--k", "5")["results"]
    assert [h["path"] for h in hits_a] == [h["path"] for h in hits_b]
    assert np.allclose([h["score"] for h in hits_a], [h["score"] for h in hits_b], atol=1e-3)
