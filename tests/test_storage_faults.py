"""Faults beyond kills: a full disk (injected at the one write seam, and a real small tmpfs), a
read-only data directory, two writers on one collection, and a PostgreSQL server that drops
every connection mid-run. Each ends in one clear sentence or in a transparent recovery, never
in lost or duplicated work: the re-run completes with the crash-safety invariant.

The PostgreSQL "restart" is simulated from the client's side with `pg_terminate_backend` on
every connection to the test's own database: that is exactly what a client sees when the server
restarts (FATAL: terminating connection due to administrator command, then new connections
succeed). Restarting the shared server itself would break other tests and other people's work
on the same machine, and a private cluster needs initdb as a non-root user plus minutes of set-up
for nothing the client could tell apart.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from search.catalog import Catalog, open_catalog
from search.errors import CatalogError
from search.settings import Settings
from search.storage import atomic_files
from search.storage.integrity import check_data_dir
from search.storage.vector_store import VectorStore
from tests.conftest import Cli
from tests.crash_harness import (
    EVENT_CEILING_S,
    assert_invariant,
    crash_env,
    draw_corpus,
    draw_image,
    wait_for,
)


def _quiet_cli(cli: Cli) -> Cli:
    cli.env.update({"PIXSEEK_BATCH_SIZE": "4", "PIXSEEK_TAGS": "false"})
    return cli


def _one_sentence(stderr: str) -> str:
    """The error output is one line (progress bars drawn before it aside)."""
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("Embedding", "Captioning"))
    ]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def _durable_state(settings: Settings) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    catalog = open_catalog(settings.resolved_database_url())
    try:
        (collection,) = catalog.list_collections()
        counts = catalog.count_by_status(collection.id)
        embedded = np.sort(np.asarray(catalog.embedded_ids(collection.id), dtype=np.int64))
        report = check_data_dir(settings, catalog)
    finally:
        catalog.close()
    lost = [
        f
        for f in report.all_findings()
        if f.kind in ("missing_vectors", "damaged_vectors", "temp_files")
    ]
    assert not lost, lost
    store = VectorStore(settings.collection_dir(collection.id) / "vectors", collection.dim)
    vector_ids, vectors = store.latest(embedded)
    order = np.argsort(vector_ids)
    assert np.array_equal(vector_ids[order], embedded), "an embedded row has no durable vector"
    return counts, embedded, vectors[order]


def test_disk_full_during_a_vector_write_stops_with_the_path_and_resumes(
    cli: Cli, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 40)
    cli = _quiet_cli(cli)
    segments: list[Path] = []
    write = atomic_files._write_and_sync

    def no_space_after_three_segments(handle: BinaryIO, target: Path, chunks: list[bytes]) -> None:
        if target.name.startswith("seg-"):
            segments.append(target)
            if len(segments) > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        write(handle, target, chunks)

    monkeypatch.setattr(atomic_files, "_write_and_sync", no_space_after_three_segments)
    failed = cli("index", str(corpus.root), expect=1)
    sentence = _one_sentence(failed.stderr)
    assert (
        f"disk full at {segments[-1]}" in sentence and "run the same command again" in sentence
    ), sentence
    counts, embedded, _ = _durable_state(settings)
    assert 0 < counts.get("embedded", 0) < len(corpus.good), counts
    job = cli.json("jobs")["jobs"][0]
    assert job["state"] == "failed" and "disk full at" in job["error"], job

    monkeypatch.setattr(atomic_files, "_write_and_sync", write)  # space was freed
    resumed = cli.json("index", str(corpus.root))
    assert resumed["indexed"] == len(corpus.good) - len(embedded), (
        "the re-run embeds only what was left"
    )
    assert_invariant(settings, corpus.good, corpus.bad)


def test_disk_full_during_the_faiss_save_loses_nothing(
    cli: Cli, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 24)
    cli = _quiet_cli(cli)
    saves: list[Path] = []
    write = atomic_files._write_and_sync

    def no_space_for_a_filled_index(handle: BinaryIO, target: Path, chunks: list[bytes]) -> None:
        if target.name == "index.faiss":
            saves.append(target)
            if len(saves) > 1:  # the first save is the empty index of a new collection
                raise OSError(errno.ENOSPC, "No space left on device")
        write(handle, target, chunks)

    monkeypatch.setattr(atomic_files, "_write_and_sync", no_space_for_a_filled_index)
    failed = cli("index", str(corpus.root), expect=1)
    assert f"disk full at {saves[-1]}" in _one_sentence(failed.stderr)
    counts, _, _ = _durable_state(settings)
    assert counts == {"embedded": len(corpus.good), "failed": len(corpus.bad)}, (
        "every vector was already durable"
    )
    assert not list(saves[-1].parent.glob(".index.faiss.*.tmp")), (
        "the half-written index was removed"
    )

    monkeypatch.setattr(atomic_files, "_write_and_sync", write)
    assert cli.json("index", str(corpus.root))["indexed"] == 0, "nothing is embedded twice"
    assert_invariant(settings, corpus.good, corpus.bad)


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs at `path`; skips the test where mounting is not permitted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "mounting a size-limited tmpfs needs root (the injected-ENOSPC tests still run)"
        )
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.strip()});"
            " the injected-ENOSPC tests still run"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_really_full_disk_stops_the_run_and_the_rerun_completes(
    database_url: str, tmp_path: Path
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 120)
    # 2 MB: the resumed run's SQLite WAL (about four 4 KB pages per batch of 4, until the
    # checkpoint at the end) must fit once the filler is gone.
    with _tmpfs(tmp_path / "data", "2m") as data_dir:
        # The default layout: SQLite catalog, vectors and FAISS all on the small disk.
        settings = Settings(
            data_dir=data_dir,
            database_url=None if database_url.startswith("sqlite") else database_url,
            model="tiny-test",
            workers=0,
            device="cpu",
            batch_size=4,
            tags=False,
        )
        cli = _quiet_cli(Cli(settings))
        cli("db", "upgrade")
        filler = data_dir / "filler"
        filler.write_bytes(b"\0" * (shutil.disk_usage(data_dir).free - 96 * 1024))
        failed = cli("index", str(corpus.root), expect=1)
        sentence = _one_sentence(failed.stderr)
        assert f"disk full at {data_dir}/" in sentence, sentence
        counts, embedded, vectors = _durable_state(settings)
        assert counts.get("embedded", 0) < len(corpus.good), "the disk filled up before the end"

        filler.unlink()  # space freed
        resumed = cli.json("index", str(corpus.root))
        assert resumed["indexed"] == len(corpus.good) - len(embedded), (
            "nothing durable was embedded again"
        )
        _, after, after_vectors = _durable_state(settings)
        kept = np.isin(after, embedded)
        assert np.array_equal(after_vectors[kept], vectors), (
            "vectors made durable before the disk filled changed"
        )
        assert_invariant(settings, corpus.good, corpus.bad, search_every_file=False)


def test_a_read_only_data_directory_is_one_clear_sentence(
    database_url: str, tmp_path: Path
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 8)
    with _tmpfs(tmp_path / "data", "8m") as data_dir:
        settings = Settings(
            data_dir=data_dir,
            database_url=None if database_url.startswith("sqlite") else database_url,
            model="tiny-test",
            workers=0,
            device="cpu",
            tags=False,
        )
        cli = _quiet_cli(Cli(settings))
        if not database_url.startswith("sqlite"):
            cli("db", "upgrade")
        cli("index", str(corpus.root))
        subprocess.run(["mount", "-o", "remount,ro", str(data_dir)], check=True)
        draw_image(corpus.root / "late.png", random.Random(1))
        refused = cli("index", str(corpus.root), expect=1)
        sentence = _one_sentence(refused.stderr)
        assert f"Cannot write {data_dir}" in sentence and "read-only file system" in sentence, (
            sentence
        )
        assert "--data-dir" in sentence
        subprocess.run(["mount", "-o", "remount,rw", str(data_dir)], check=True)
        cli("index", str(corpus.root))
        assert_invariant(
            settings, [*corpus.good, corpus.root / "late.png"], corpus.bad, search_every_file=False
        )


def _pixseek(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.cli", *args]


def test_two_index_runs_on_one_collection_the_second_refuses_clearly(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 120)
    env = crash_env(settings, PIXSEEK_BATCH_SIZE="2", PIXSEEK_TAGS="false")
    subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
    first = subprocess.Popen(
        _pixseek("index", str(corpus.root), "--json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = settings.data_dir / "collections" / "1" / "writer.lock"
    wait_for(
        lambda: first.poll() is not None or (lock.exists() and lock.read_text() == str(first.pid)),
        "the first run to take the writer lock",
    )
    # Hold the first run where it is (lock taken, run not finished) instead of hoping the corpus
    # outlasts the second run's start: a stopped process keeps its record lock.
    _stop_outside_a_catalog_write(first, settings)
    try:
        assert first.poll() is None, "the first run ended before it could be held"
        second = subprocess.run(
            _pixseek("index", str(corpus.root)),
            env=env,
            capture_output=True,
            text=True,
            timeout=EVENT_CEILING_S,
            check=False,
        )
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1
    sentence = _one_sentence(second.stderr)
    assert f"being indexed by another process (process {first.pid})" in sentence, sentence
    out, err = first.communicate(timeout=EVENT_CEILING_S)
    assert first.returncode == 0, err
    assert json.loads(out)["indexed"] == len(corpus.good)
    assert_invariant(settings, corpus.good, corpus.bad, search_every_file=False)


def _stop_outside_a_catalog_write(process: subprocess.Popen[str], settings: Settings) -> None:
    """SIGSTOP ``process`` at an instant it holds no SQLite write transaction.

    A process stopped inside one would keep every other writer of the catalog waiting (the
    second run's job row among them), which no real run does for long. PostgreSQL has no such
    file-wide lock, so any instant will do there.
    """
    url = make_url(settings.resolved_database_url())
    while True:
        os.kill(process.pid, signal.SIGSTOP)
        if url.get_backend_name() != "sqlite" or _sqlite_writable(Path(url.database or "")):
            return
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.01)


def _sqlite_writable(path: Path) -> bool:
    import sqlite3

    connection = sqlite3.connect(path, timeout=0.0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def _terminate_connections(server_url: str, database: str) -> int:
    import psycopg

    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def _drop_connections_mid_transaction(catalog: Catalog, server_url: str, url: str) -> None:
    """One transaction whose connection is terminated between its two statements."""
    with catalog.session() as session:
        session.execute(text("SELECT 1"))
        _terminate_connections(server_url, make_url(url).database or "")
        session.execute(text("SELECT 1"))


def test_a_dropped_connection_mid_transaction_is_a_clear_error_and_the_next_reconnects(
    postgres_server: str,
) -> None:
    from tests.conftest import create_postgres_database, drop_postgres_database

    url = create_postgres_database(postgres_server)
    catalog = open_catalog(url, upgrade=True)
    try:
        with pytest.raises(
            CatalogError,
            match=r"Lost the connection to the catalog database .* run the same command again",
        ):
            _drop_connections_mid_transaction(catalog, postgres_server, url)
        assert catalog.list_collections() == [], "the next transaction reconnects by itself"
    finally:
        catalog.close()
        drop_postgres_database(postgres_server, url)


@pytest.mark.slow
def test_postgresql_dropping_every_connection_mid_run(postgres_server: str, tmp_path: Path) -> None:
    """The run either rides over the drop (the pool reconnects between transactions) or stops
    with the one-sentence "Lost the connection" error; either way the re-run completes."""
    from tests.conftest import create_postgres_database, drop_postgres_database

    url = create_postgres_database(postgres_server)
    try:
        settings = Settings(data_dir=tmp_path / "data", database_url=url)
        corpus = draw_corpus(tmp_path / "corpus", 300)
        env = crash_env(settings, PIXSEEK_BATCH_SIZE="2", PIXSEEK_TAGS="false")
        subprocess.run(_pixseek("db", "upgrade"), env=env, check=True, capture_output=True)
        run = subprocess.Popen(
            _pixseek("index", str(corpus.root), "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        vectors = settings.data_dir / "collections" / "1" / "vectors"
        wait_for(
            lambda: (
                run.poll() is not None
                or (vectors.is_dir() and len(list(vectors.glob("seg-*"))) >= 5)
            ),
            "the run to store a few batches",
        )
        dropped = 0
        for _ in range(5):
            dropped += _terminate_connections(postgres_server, make_url(url).database or "")
            time.sleep(0.3)
        out, err = run.communicate(timeout=EVENT_CEILING_S)
        assert dropped >= 1, "the run's connections were never dropped"
        if run.returncode:
            assert "Lost the connection to the catalog database" in _one_sentence(err), err
        else:
            assert json.loads(out)["indexed"] == len(corpus.good)
        outcome = "rode over it" if run.returncode == 0 else "stopped with the clear error"
        again = subprocess.run(
            _pixseek("index", str(corpus.root)),
            env=env,
            capture_output=True,
            text=True,
            timeout=EVENT_CEILING_S,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert_invariant(settings, corpus.good, corpus.bad, search_every_file=False)
        print(f"\nPostgreSQL dropped {dropped} connection(s) mid-run; the run {outcome}")
    finally:
        drop_postgres_database(postgres_server, url)
