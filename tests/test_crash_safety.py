"""Crash safety, tested by killing: `pixseek index` (and `caption`, and a job started through the
API) is SIGKILLed at seeded random moments, including the first milliseconds of a decode
worker's life, then resumed. After every kill no process of the killed run may survive 5 s
and the next run must get the collection at once; after the resume, catalog rows, durable
vectors and FAISS ids agree exactly, every file is `embedded` or `failed`, `pixseek check`
finds nothing wrong, and every image finds itself first.

Nothing waits on a fixed deadline for work that may legitimately take longer on a loaded
machine: each wait is for an event (a job row, a worker start, a process exit) with a generous
ceiling, and the tests print how long things took (`pytest -s` shows it).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from search.catalog import Catalog, open_catalog
from search.settings import Settings
from search.storage.faiss_index import VectorIndex
from search.storage.integrity import check_data_dir
from tests.crash_harness import (
    EVENT_CEILING_S,
    ROOT,
    Launcher,
    assert_invariant,
    crash_env,
    draw_corpus,
    draw_image,
    wait_for,
    wait_session_gone,
)

pytestmark = pytest.mark.slow

WORKER_WINDOW_S = 0.05  # kills aimed at a worker's start land this soon after it


def _pixseek(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.cli", *args]


def _newest_job_id(catalog: Catalog) -> int:
    jobs = catalog.list_jobs(1)
    return jobs[0].id if jobs else 0


def _job_done(catalog: Catalog, job_before: int) -> bool:
    """Whether the run started after job `job_before` got as far as marking its job done."""
    jobs = catalog.list_jobs(1)
    return bool(jobs) and jobs[0].id > job_before and jobs[0].state == "done"


def _has_exited(process: subprocess.Popen) -> bool:
    return process.poll() is not None


def _exited_or_captioned(
    process: subprocess.Popen, catalog: Catalog, collection_id: int, before: int
) -> bool:
    """The captioning run exited, or wrote a caption (fewer images are left than `before`)."""
    return process.poll() is not None or catalog.count_uncaptioned(collection_id) < before


def _markers(folder: Path) -> set[str]:
    return set(os.listdir(folder))


def _kill_moment(
    rng: random.Random,
    aim: str,
    exited: Callable[[], bool],
    catalog: Catalog,
    job_before: int,
    markers: Path,
    markers_before: set[str],
    random_span: float,
) -> float:
    """Wait for the stage a kill is aimed at, then a seeded random delay; returns the delay.
    `worker`: 0-50 ms after a decode worker of this run started (before torch's watchdog runs);
    `work`: 0-`random_span` s after it (decoding, vector writes, catalog commits, FAISS saves);
    `random`: 0-`random_span` s after this run's job row appeared (start-up, FAISS catch-up,
    scan, prune, and work when it gets that far)."""
    if aim in ("worker", "work"):
        wait_for(
            lambda: exited() or _markers(markers) - markers_before,
            "a decode worker to start",
            poll=0.002,
        )
        delay = rng.uniform(0.0, WORKER_WINDOW_S if aim == "worker" else random_span)
    else:
        wait_for(
            lambda: exited() or _newest_job_id(catalog) > job_before, "the run's job row", poll=0.01
        )
        delay = rng.uniform(0.0, random_span)
    time.sleep(delay)
    return delay


def test_sigkill_at_random_moments_then_resume(settings: Settings, tmp_path: Path) -> None:
    """Fresh `python -m web.cli` processes, as a user runs them; kills alternate between random
    moments and the first 50 ms after the decode worker starts."""
    corpus = draw_corpus(tmp_path / "corpus", 240)
    markers = tmp_path / "worker-starts"
    markers.mkdir()
    # Batches of 2: the work takes seconds even on a fast, idle machine, so kills land in it.
    env = crash_env(settings, PIXSEEK_BATCH_SIZE="2", PIXSEEK_TEST_WORKER_STARTED_DIR=str(markers))
    subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
    catalog = open_catalog(settings.resolved_database_url())
    rng = random.Random(20261123)
    kills, gone_after = 0, []
    try:
        for attempt in range(6):
            aim = "worker" if attempt % 2 else "random"
            job_before, markers_before = _newest_job_id(catalog), _markers(markers)
            log = tmp_path / f"run-{attempt}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    _pixseek("index", str(corpus.root), "--json"),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _kill_moment(
                rng,
                aim,
                partial(_has_exited, process),
                catalog,
                job_before,
                markers,
                markers_before,
                random_span=2.5,
            )
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            code = process.wait(timeout=EVENT_CEILING_S)
            assert code in (0, -signal.SIGKILL), f"run {attempt} exited {code}:\n{log.read_text()}"
            if code == -signal.SIGKILL and not _job_done(catalog, job_before):
                kills += 1  # a kill after the run marked its job done interrupted nothing
            if code == 0 or _job_done(catalog, job_before):  # it finished first: new work
                for path in rng.sample(corpus.good, 16):
                    draw_image(path, rng)
                    os.utime(path, (time.time() + 5, time.time() + 5))
            gone_after.append(wait_session_gone(process.pid, within=5.0))
    finally:
        catalog.close()
    assert kills >= 4, "the runs finished before they could be killed: make the corpus bigger"

    started = time.monotonic()
    final = subprocess.run(
        _pixseek("index", str(corpus.root), "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=EVENT_CEILING_S,
        check=False,
    )
    assert final.returncode == 0, final.stderr
    resumed_in = time.monotonic() - started
    catalog = open_catalog(settings.resolved_database_url())
    jobs = catalog.list_jobs(100)
    catalog.close()
    assert not [job for job in jobs if job.state == "running"], (
        "a killed run's job must not stay running"
    )
    interrupted = [
        job for job in jobs if job.state == "failed" and "interrupted" in (job.error or "")
    ]
    assert len(interrupted) == kills, [(job.id, job.state, job.error) for job in jobs]
    assert_invariant(settings, corpus.good, corpus.bad)
    print(
        f"\n{kills} kills; killed runs' processes gone after at most {max(gone_after):.3f} s; "
        f"resume took {resumed_in:.1f} s"
    )


def _mutate(
    corpus_root: Path, good: list[Path], kills: int, rng: random.Random, done: set[str]
) -> None:
    """Change the corpus during the storm so that kills also land in pruning, re-embedding of
    modified files and content reuse of renamed files; the corpus ends with as many files as
    it started with."""
    if kills >= 10 and "delete" not in done:
        for path in good[:20]:
            path.unlink()
        del good[:20]
        done.add("delete")
    if kills >= 20 and "modify" not in done:
        for path in good[100:120]:
            draw_image(path, rng)
            os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime even on a coarse clock
        done.add("modify")
    if kills >= 30 and "add" not in done:
        for i in range(20):
            path = corpus_root / f"new-{i:02d}.png"
            draw_image(path, rng)
            good.append(path)
        done.add("add")
    if kills >= 40 and "rename" not in done:
        for i in range(200, 210):
            renamed = good[i].with_name(f"renamed-{good[i].name}")
            good[i].rename(renamed)
            good[i] = renamed
        done.add("rename")


def _assert_nothing_durable_lost(settings: Settings, catalog: Catalog) -> None:
    """Right after a kill: every `embedded` row has its vector, and a FAISS file the catalog
    calls current holds exactly the embedded ids (a stale one is allowed: it is rebuilt)."""
    report = check_data_dir(settings, catalog)
    broken = [
        f
        for f in report.all_findings()
        if f.kind in ("missing_vectors", "damaged_vectors", "locked")
    ]
    assert not broken, broken
    collections = catalog.list_collections()
    if not collections:  # killed before it created the collection
        return
    (collection,) = collections
    build = catalog.index_build(collection.id)
    path = settings.collection_dir(collection.id) / "index.faiss"
    if build is not None and build.generation and path.exists():
        index = VectorIndex.load(path)
        if index.generation == build.generation:
            embedded = np.sort(np.asarray(catalog.embedded_ids(collection.id), dtype=np.int64))
            assert np.array_equal(np.sort(index.ids()), embedded), (
                "a FAISS file marked current disagrees"
            )


def _final_run_and_check(
    launcher: Launcher, corpus_root: Path, env: dict[str, str], tmp_path: Path
) -> dict:
    """After the storm: one run that must finish, then `pixseek check` must find nothing wrong;
    returns the final run's JSON summary."""
    pid = launcher.start(["index", str(corpus_root), "--json"], env, tmp_path / "final.log")
    assert launcher.wait(pid) == 0, (tmp_path / "final.log").read_text()
    summary = json.loads((tmp_path / "final.log").read_text().strip().splitlines()[-1])
    check_log = tmp_path / "check.log"
    pid = launcher.start(["check", "--json"], env, check_log)
    assert launcher.wait(pid) == 0, check_log.read_text()
    assert json.loads(check_log.read_text().strip().splitlines()[-1])["ok"] is True
    return summary


def test_kill_storm_keeps_the_invariant(settings: Settings, tmp_path: Path) -> None:
    """50 SIGKILLs of one 400-image indexing job while it decodes, writes vectors, commits
    catalog rows, saves FAISS, prunes deleted files and re-embeds modified ones: a third of
    them 0-50 ms after the decode worker starts, half later in the work, the rest anywhere.
    Runs are forked from a pre-imported pixseek (`tests.run_launcher`) so the kills land in
    pixseek's work, not in interpreter start-up. A run that finishes before its kill gets new
    work (modified files) for the next one."""
    started = time.monotonic()
    corpus = draw_corpus(tmp_path / "corpus", 400)
    good = list(corpus.good)
    markers = tmp_path / "worker-starts"
    markers.mkdir()
    env = crash_env(
        settings,
        PIXSEEK_BATCH_SIZE="2",
        PIXSEEK_INDEX_SAVE_SECONDS="0.2",
        PIXSEEK_TAGS="false",
        PIXSEEK_TEST_WORKER_STARTED_DIR=str(markers),
    )
    subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
    launcher = Launcher()
    catalog = open_catalog(settings.resolved_database_url())
    rng = random.Random(5050)
    kills, runs, finished, aims, gone_after, done, check_s = 0, 0, 0, Counter(), [], set(), 0.0
    try:
        while kills < 50:
            _mutate(corpus.root, good, kills, rng, done)
            aim = rng.choices(["worker", "work", "random"], weights=[2, 3, 1])[0]
            job_before, markers_before = _newest_job_id(catalog), _markers(markers)
            log = tmp_path / f"run-{runs}.log"
            pid = launcher.start(["index", str(corpus.root), "--json"], env, log)
            runs += 1
            _kill_moment(
                rng,
                aim,
                partial(launcher.has_exited, pid),
                catalog,
                job_before,
                markers,
                markers_before,
                random_span=1.2,
            )
            if not launcher.has_exited(pid):
                os.kill(pid, signal.SIGKILL)
                kills += 1
                aims[aim] += 1
            code = launcher.wait(pid)
            assert code in (0, -signal.SIGKILL), f"run {runs} exited {code}:\n{log.read_text()}"
            if code == 0:  # it finished the work before its kill: give the next run some
                for path in rng.sample(good, 16):
                    draw_image(path, rng)
                    os.utime(path, (time.time() + 5, time.time() + 5))
                finished += 1
            gone_after.append(wait_session_gone(pid, within=5.0))
            checked = time.monotonic()
            _assert_nothing_durable_lost(settings, catalog)
            check_s += time.monotonic() - checked
        storm_s = time.monotonic() - started
        summary = _final_run_and_check(launcher, corpus.root, env, tmp_path)
        jobs = catalog.list_jobs(500)
    finally:
        catalog.close()
        launcher.close()
    assert done == {"delete", "modify", "add", "rename"}
    assert not [job for job in jobs if job.state == "running"], (
        "a killed run's job must not stay running"
    )
    interrupted = sum(
        1 for job in jobs if job.state == "failed" and "interrupted" in (job.error or "")
    )
    assert 0 < interrupted <= kills, interrupted
    assert_invariant(settings, good, corpus.bad)
    print(
        f"\nstorm: {kills} kills ({dict(aims)}) in {runs} runs ({finished} finished first), "
        f"{storm_s:.1f} s ({check_s:.1f} s checking after kills); processes gone after at most "
        f"{max(gone_after):.3f} s; final run {summary}; total {time.monotonic() - started:.1f} s"
    )


def test_sigkill_during_captioning_then_resume(settings: Settings, tmp_path: Path) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 120)
    env = crash_env(
        settings, PIXSEEK_TAGS="false", PIXSEEK_CAPTIONER="tiny-test", PIXSEEK_WORKERS="0"
    )
    subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
    subprocess.run(
        _pixseek("index", str(corpus.root)),
        env=env,
        check=True,
        capture_output=True,
        timeout=EVENT_CEILING_S,
    )
    catalog = open_catalog(settings.resolved_database_url())
    (collection,) = catalog.list_collections()
    rng = random.Random(77)
    kills = 0
    try:
        for attempt in range(4):
            before = catalog.count_uncaptioned(collection.id)
            log = tmp_path / f"caption-{attempt}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    _pixseek("caption", "--batch-size", "2"),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            # aim at the middle of the work: once this run has written its first caption
            wait_for(
                partial(_exited_or_captioned, process, catalog, collection.id, before),
                "the first caption of this run",
                poll=0.05,
            )
            time.sleep(rng.uniform(0.0, 0.3))  # a tiny captioner writes many captions a second
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            code = process.wait(timeout=EVENT_CEILING_S)
            assert code in (0, -signal.SIGKILL), log.read_text()
            wait_session_gone(process.pid, within=5.0)
        assert kills >= 2, "captioning finished before it could be killed"
        final = subprocess.run(
            _pixseek("caption", "--json"),
            env=env,
            capture_output=True,
            text=True,
            timeout=EVENT_CEILING_S,
            check=False,
        )
        assert final.returncode == 0, final.stderr
        model_id = json.loads(final.stdout)["model_id"]
        records = catalog.get_images(catalog.embedded_ids(collection.id))
    finally:
        catalog.close()
    uncaptioned = [
        (r.path, r.caption, r.caption_model)
        for r in records.values()
        if not r.caption or r.caption_model != model_id
    ]
    assert len(records) == len(corpus.good) and not uncaptioned, uncaptioned[:5]
    assert_invariant(settings, corpus.good, corpus.bad, search_every_file=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _api(port: int, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            _pixseek("serve", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )

    def healthy() -> bool:
        assert server.poll() is None, log.read_text()
        try:
            return _api(port, "/healthz")["status"] == "ok"
        except OSError:
            return False

    wait_for(healthy, "the server to answer /healthz", poll=0.2)
    return server, port


def test_sigkill_of_the_server_during_an_api_job_then_resume(
    settings: Settings, tmp_path: Path
) -> None:
    """An API job decodes in *spawned* workers (it runs in a server thread); killing the server
    must take them along too, and a new server's job resumes the work."""
    corpus = draw_corpus(tmp_path / "corpus", 400)
    env = crash_env(
        settings,
        PIXSEEK_TAGS="false",
        PIXSEEK_BATCH_SIZE="2",
        PIXSEEK_ALLOWED_ROOTS=str(corpus.root),  # the API indexes nothing outside these
    )
    subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
    server, port = _serve(env, tmp_path / "server-1.log")
    vectors = settings.data_dir / "collections" / "1" / "vectors"
    try:
        job = _api(port, "/api/jobs", {"path": str(corpus.root)})
        # The job row's progress is written once a second; the vector files show the work at once.
        wait_for(
            lambda: vectors.is_dir() and len(list(vectors.glob("seg-*.pxvs"))) >= 2,
            "the API job to store its first batches",
            poll=0.01,
        )
        server.send_signal(signal.SIGKILL)
        assert server.wait(timeout=EVENT_CEILING_S) == -signal.SIGKILL
        gone = wait_session_gone(server.pid, within=5.0)
    finally:
        if server.poll() is None:
            server.kill()
    server, port = _serve(env, tmp_path / "server-2.log")
    try:
        resumed = _api(port, "/api/jobs", {"path": str(corpus.root)})
        finished, took = wait_for(
            lambda: (lambda j: j if j["state"] in ("done", "failed") else None)(
                _api(port, f"/api/jobs/{resumed['id']}")
            ),
            "the resumed API job to finish",
            poll=0.2,
        )
        assert finished["state"] == "done", finished
        first = _api(port, f"/api/jobs/{job['id']}")
        assert first["state"] != "done", (
            "the job finished before it could be killed: make the corpus bigger"
        )
        assert first["state"] == "failed" and "interrupted" in first["error"], first
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=EVENT_CEILING_S)
    assert_invariant(settings, corpus.good, corpus.bad)
    print(
        f"\nserver killed mid-job: its processes gone after {gone:.3f} s;"
        f" resumed job took {took:.1f} s"
    )
