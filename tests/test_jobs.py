"""Indexing as jobs: the API starts (admin token), watches and cancels them; a cancelled job
resumes; CLI runs are jobs too."""

from __future__ import annotations

import random
import time
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from search.settings import Settings
from tests.conftest import Cli
from tests.job_holds import HOLD_CEILING_S, job_held_until_cancel
from tests.photos import PhotoSet
from web.app import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _wait(client: TestClient, job_id: int, states: set[str], timeout: float = 600) -> dict:
    """Wait for the job's state (a generous ceiling: a loaded 2-core machine is slow, not wrong)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def _many_images(root: Path, count: int) -> Path:
    rng = random.Random(1)
    root.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (40, 40), tuple(rng.randrange(256) for _ in range(3))).save(
            root / f"{i:04d}.png"
        )
    return root


def _local_client(settings: Settings) -> TestClient:
    """A client that reaches the app as a browser or script on the server's own machine does
    (127.0.0.1 to 127.0.0.1): with no admin token, only such requests may use admin routes."""
    return TestClient(
        create_app(settings), base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000)
    )


def test_jobs_api_needs_the_token_runs_and_reports(settings: Settings, photo_set: PhotoSet) -> None:
    settings = settings.model_copy(
        update={"admin_token": TOKEN, "allowed_roots": [photo_set.root.parent]}
    )
    if not settings.resolved_database_url().startswith("sqlite"):
        Cli(settings)("db", "upgrade")
    with TestClient(create_app(settings)) as client:
        body = {"path": str(photo_set.root), "collection": "photos"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            refused = client.post("/api/jobs", json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "unauthorized"
        started = client.post("/api/jobs", json=body, headers=AUTH)
        assert started.status_code == 202
        job = started.json()
        assert {"id", "state"} <= set(job) and job["state"] in ("queued", "running")
        done = _wait(client, job["id"], {"done", "failed"})
        assert done["state"] == "done", done
        assert {"id", "state", "done", "total", "failed", "rate"} <= set(done)
        assert (done["done"], done["total"], done["failed"]) == (len(photo_set.good) + 2,) * 2 + (
            2,
        )
        assert {e["reason"].split(":")[0] for e in done["errors"]} == {
            "truncated or corrupt image data",
            "not an image",
        }
        assert client.get("/api/stats").json()["embedded"] == len(photo_set.good)
        assert (
            client.get("/api/search", params={"q": "red", "collection": "photos"}).status_code
            == 200
        )

        missing = str(photo_set.root.parent / "no-such-folder")
        bad = client.post("/api/jobs", json={"path": missing}, headers=AUTH)
        assert bad.status_code == 400 and "does not exist" in bad.json()["error"]["message"]
        assert client.post("/api/jobs/9999/cancel", headers=AUTH).status_code == 404
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 401
    listed = Cli(settings).json("jobs")["jobs"]
    assert listed[0]["id"] == job["id"] and listed[0]["state"] == "done"


def test_cancelled_job_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    corpus = _many_images(tmp_path / "many", 400)
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        batch_size=2,
        allowed_roots=[corpus],
    )
    with _local_client(settings) as client, job_held_until_cancel() as held:
        job = client.post("/api/jobs", json={"path": str(corpus)}).json()
        assert held.wait(HOLD_CEILING_S), "the job never reported its first images"
        assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "running"
        cancelled = client.post(f"/api/jobs/{job['id']}/cancel").json()
        assert cancelled["state"] == "cancelled", cancelled
        assert 0 < cancelled["done"] < 400
        stats = client.get("/api/stats").json()
        assert stats["embedded"] == stats["index_vectors"] == cancelled["done"]

        resumed = client.post("/api/jobs", json={"path": str(corpus)}).json()
        finished = _wait(client, resumed["id"], {"done", "failed", "cancelled"})
        assert finished["state"] == "done"
        assert finished["total"] == 400 - cancelled["done"], (
            "the resumed job only embeds what was left"
        )
        stats = client.get("/api/stats").json()
        assert stats["embedded"] == stats["index_vectors"] == 400


def test_cli_runs_are_recorded_as_jobs(cli: Cli, photo_set: PhotoSet) -> None:
    cli.json("index", str(photo_set.root))
    (job,) = cli.json("jobs")["jobs"]
    assert job["state"] == "done" and job["kind"] == "index" and job["collection"] == "default"
    assert job["args"]["paths"] == [str(photo_set.root)]


def test_server_jobs_decode_in_spawned_worker_processes(
    tmp_path: Path, photo_set: PhotoSet
) -> None:
    """A job runs in a server thread, so its decode workers start with `spawn` (fork from a
    thread can inherit a held lock): the model's pixel transform goes to fresh processes and
    JPEG bytes come back from them for decoding on the model's device."""
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny-test",
        workers=2,
        device="cpu",
        batch_size=4,
        jpeg_decode="device",
        allowed_roots=[photo_set.root],
    )
    with _local_client(settings) as client:
        job = client.post("/api/jobs", json={"path": str(photo_set.root)}).json()
        done = _wait(client, job["id"], {"done", "failed"})
        assert done["state"] == "done", done
        assert (done["done"], done["failed"]) == (len(photo_set.good) + 2, 2)
        query = photo_set.good[3]
        with query.open("rb") as image:
            hits = client.post(
                "/api/search/image",
                files={"file": (query.name, image, "image/jpeg")},
                data={"k": "3"},
            ).json()["results"]
        assert hits[0]["path"] == str(query) and hits[0]["score"] > 0.995, hits


def test_resume_queues_the_rest_of_a_cancelled_job_as_a_new_job(tmp_path: Path) -> None:
    corpus = _many_images(tmp_path / "many", 120)
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        batch_size=2,
        allowed_roots=[corpus],
        warm_on_start=False,
    )
    with _local_client(settings) as client, job_held_until_cancel() as held:
        job = client.post("/api/jobs", json={"path": str(corpus), "collection": "c"}).json()
        refused = client.post(f"/api/jobs/{job['id']}/resume")
        assert refused.status_code == 409, refused.text  # queued or running: nothing to resume
        assert refused.json()["error"]["code"] == "job_conflict"
        assert held.wait(HOLD_CEILING_S), "the job never reported its first images"
        client.post(f"/api/jobs/{job['id']}/cancel")
        cancelled = _wait(client, job["id"], {"cancelled", "done", "failed"})
        assert cancelled["state"] == "cancelled", cancelled
        assert 0 < cancelled["done"] < 120

        resumed = client.post(f"/api/jobs/{job['id']}/resume")
        assert resumed.status_code == 202, resumed.text
        new = resumed.json()
        assert new["id"] != job["id"] and new["resumed_from"] == job["id"]
        assert (new["collection"], new["args"]["paths"]) == ("c", [str(corpus)])
        again = client.post(f"/api/jobs/{job['id']}/resume")
        assert again.status_code == 409 and str(new["id"]) in again.json()["error"]["message"]

        finished = _wait(client, new["id"], {"done", "failed", "cancelled"})
        assert finished["state"] == "done", finished
        assert finished["total"] == 120 - cancelled["done"], "the resumed job embeds what was left"
        assert client.get("/api/stats").json()["embedded"] == 120
        old = client.get(f"/api/jobs/{job['id']}").json()
        assert (old["state"], old["done"]) == ("cancelled", cancelled["done"]), old
        done = client.post(f"/api/jobs/{new['id']}/resume")
        assert done.status_code == 409 and "done" in done.json()["error"]["message"]


def test_resume_needs_the_admin_token_and_a_known_job(tmp_path: Path) -> None:
    corpus = _many_images(tmp_path / "many", 60)
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        batch_size=2,
        allowed_roots=[corpus],
        admin_token=TOKEN,
        warm_on_start=False,
    )
    with _local_client(settings) as client, job_held_until_cancel():
        job = client.post("/api/jobs", json={"path": str(corpus)}, headers=AUTH).json()
        client.post(f"/api/jobs/{job['id']}/cancel", headers=AUTH)  # queued or held: stops
        stopped = _wait(client, job["id"], {"cancelled", "done", "failed"})
        assert stopped["state"] == "cancelled", stopped
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = client.post(f"/api/jobs/{job['id']}/resume", headers=headers)
            assert refused.status_code == 401, refused.text  # even from the server's machine
        assert client.get("/api/jobs").json()[0]["id"] == job["id"], "a refused resume queued"
        assert client.post("/api/jobs/9999/resume", headers=AUTH).status_code == 404
        resumed = client.post(f"/api/jobs/{job['id']}/resume", headers=AUTH)
        assert resumed.status_code == 202, resumed.text
        finished = _wait(client, resumed.json()["id"], {"done", "failed", "cancelled"})
        assert finished["state"] == "done" and finished["resumed_from"] == job["id"], finished
