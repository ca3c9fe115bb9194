"""Crash safety, tested by killing: `pixseek index` runs in a subprocess and is SIGKILLed at
seeded random moments (decode, vector write, catalog commit, FAISS save all happen many times
a second), then resumed. Afterwards catalog rows, durable vectors and FAISS ids must agree
exactly, every file must be `embedded` or `failed`, and every vector must belong to its image."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from search.catalog import open_catalog
from search.engine import SearchEngine
from search.faiss_index import VectorIndex
from search.settings import Settings
from search.vector_store import VectorStore

pytestmark = pytest.mark.slow


def _draw_corpus(root: Path, count: int) -> None:
    rng = random.Random(3)
    root.mkdir(parents=True)
    for i in range(count):
        image = Image.new("RGB", (72, 64), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            box = sorted(rng.sample(range(72), 2)) + sorted(rng.sample(range(64), 2))
            draw.rectangle((box[0], box[2], box[1], box[3]), fill=tuple(rng.randrange(256) for _ in range(3)))
        image.save(root / f"{i:04d}.png")
    (root / "bad.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PIXSEEK_DATA_DIR": str(settings.data_dir),
        "PIXSEEK_DATABASE_URL": settings.resolved_database_url(),
        "PIXSEEK_MODEL": "tiny-test",
        "PIXSEEK_DEVICE": "cpu",
        "PIXSEEK_BATCH_SIZE": "8",
        "PIXSEEK_WORKERS": "1",
        "PIXSEEK_INDEX_SAVE_SECONDS": "0.3",
    })
    return env


def _wait_for_job(settings: Settings, number: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            catalog = open_catalog(settings.resolved_database_url())
            try:
                if len(catalog.list_jobs(100)) >= number:
                    return
            finally:
                catalog.close()
        except Exception:  # noqa: BLE001 - the catalog may not exist yet
            pass
        time.sleep(0.05)


def _pixseek(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.cli", *args]


def test_sigkill_at_random_moments_then_resume(settings: Settings, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    count = 240
    _draw_corpus(corpus, count)
    env = _env(settings)
    subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
    rng = random.Random(20261123)
    kills = 0
    for attempt in range(5):
        process = subprocess.Popen(_pixseek("index", str(corpus), "--json"), env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Kill during the work, not during Python's start-up (slow on a loaded machine): wait
        # for this run's job row, then a random moment.
        _wait_for_job(settings, attempt + 1, process)
        time.sleep(rng.uniform(0.0, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=60)
    assert kills >= 3, "the runs finished before they could be killed: make the corpus bigger"

    final = subprocess.run(_pixseek("index", str(corpus), "--json"), env=env, capture_output=True,
                           text=True, timeout=300)
    assert final.returncode == 0, final.stderr

    catalog = open_catalog(settings.resolved_database_url())
    (collection,) = catalog.list_collections()
    counts = catalog.count_by_status(collection.id)
    assert counts == {"embedded": count, "failed": 1}, counts
    embedded = np.sort(np.asarray(catalog.embedded_ids(collection.id)))
    build = catalog.index_build(collection.id)
    jobs = catalog.list_jobs(100)
    catalog.close()
    assert not [job for job in jobs if job.state == "running"], "a killed run's job must not stay running"
    interrupted = [job for job in jobs if job.state == "failed" and "interrupted" in (job.error or "")]
    assert len(interrupted) == kills, [(job.id, job.state, job.error) for job in jobs]

    folder = settings.collection_dir(collection.id)
    index = VectorIndex.load(folder / "index.faiss")
    faiss_ids = np.sort(index.ids())
    assert len(np.unique(faiss_ids)) == len(faiss_ids), "duplicate ids in FAISS"
    assert np.array_equal(faiss_ids, embedded)
    assert build is not None and build.generation == index.generation and build.count == count
    vector_ids, vectors = VectorStore(folder / "vectors", collection.dim).latest()
    assert np.array_equal(np.sort(vector_ids), embedded)
    assert not list((folder / "vectors").glob(".*.tmp")) and not list(folder.glob(".*.tmp"))

    # Each vector belongs to its image: querying with the file finds that very file.
    catalog = open_catalog(settings.resolved_database_url())
    engine = SearchEngine(settings, catalog)
    for name in ("0000.png", "0123.png", f"{count - 1:04d}.png"):
        top = engine.search_image_bytes((corpus / name).read_bytes(), k=1).results[0]
        assert top.path == str(corpus / name) and top.score == pytest.approx(1, abs=2e-3)
    catalog.close()
