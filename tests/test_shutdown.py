"""Stopping the server does not lose a long indexing run: the running job stops at a batch
boundary with everything so far durable, its row says it was interrupted, and the next server
start submits the rest of the work as a new job."""

from __future__ import annotations

import random
import time
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from search.settings import Settings
from tests.job_holds import HOLD_CEILING_S, job_held_until_cancel
from web.app import create_app

LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}


def _corpus(root: Path, count: int) -> Path:
    rng = random.Random(3)
    root.mkdir(parents=True)
    for i in range(count):
        colour = tuple(rng.randrange(256) for _ in range(3))
        Image.new("RGB", (40, 40), colour).save(root / f"{i:04d}.png")
    return root


def _wait_for(client: TestClient, job_id: int, states: set[str], timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def test_a_job_running_at_shutdown_is_checkpointed_and_resumed_at_start(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "many", 300)
    settings = Settings(
        data_dir=tmp_path / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
        batch_size=2,
        tags=False,
        allowed_roots=[corpus],
        warm_on_start=False,
    )
    with (
        job_held_until_cancel() as held,  # else an idle machine may finish all 300 first
        TestClient(create_app(settings), **LOCAL) as client,  # type: ignore[arg-type]
    ):
        job = client.post("/api/jobs", json={"path": str(corpus)}).json()
        assert held.wait(HOLD_CEILING_S), "the job never reported its first images"
    # The app has shut down (lifespan exit): the job stopped at a batch boundary.
    with TestClient(create_app(settings), **LOCAL) as client:  # type: ignore[arg-type]
        jobs = client.get("/api/jobs").json()
        new, old = jobs[0], jobs[1]
        assert old["id"] == job["id"] and old["state"] == "cancelled", old
        assert 0 < old["done"] < 300, old
        assert old["error"] == f"interrupted: the server stopped; job {new['id']} resumed the work"
        finished = _wait_for(client, new["id"], {"done", "failed", "cancelled"})
        assert finished["state"] == "done", finished
        stats = client.get("/api/stats").json()
        assert stats["embedded"] == stats["index_vectors"] == 300
        assert finished["done"] <= 300 - old["done"] + 2, (old, finished)  # only what was left
