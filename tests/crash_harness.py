"""Tools of the crash tests: a seeded corpus, the environment of a killed run, finding every
process a run left behind, waiting on events (never on fixed sleeps) and the invariant a data
directory must satisfy after any sequence of kills.

A run is started in a session of its own (`setsid`), so "every process of the run" is every
process of that session: decode workers, forked or spawned, stay in it even after the run dies
and they are re-parented. Zombies (dead, not yet reaped) do not count as alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from search.catalog import open_catalog
from search.query.engine import SearchEngine
from search.settings import Settings
from search.storage.faiss_index import VectorIndex
from search.storage.integrity import check_data_dir
from search.storage.vector_store import VectorStore

__all__ = [
    "EVENT_CEILING_S",
    "ROOT",
    "Corpus",
    "Launcher",
    "assert_invariant",
    "crash_env",
    "draw_corpus",
    "draw_image",
    "live_session_members",
    "wait_for",
    "wait_session_gone",
]

# How long to wait for something that must happen (a run to reach a stage, a process to exit)
# before calling it a failure. Generous on purpose: a loaded 2-core machine is slow, not wrong.
EVENT_CEILING_S = 600.0
ROOT = Path(__file__).resolve().parent.parent


class Launcher:
    """Client of `tests.run_launcher`: runs `pixseek` commands as forked processes of a
    pre-imported pixseek (see that module for why and what stays real)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.run_launcher"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer()  # {"ready": pid}: imports done

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the run launcher died (exit {self.process.poll()})"
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def start(self, args: list[str], env: dict[str, str], log: Path) -> int:
        """Start `pixseek ARGS` in a new process and session; returns its PID (= session id)."""
        return int(self._ask({"op": "run", "args": args, "env": env, "log": str(log)})["pid"])

    def wait(self, pid: int) -> int:
        """Reap run `pid`; its exit status (negative: the signal that killed it)."""
        return int(self._ask({"op": "wait", "pid": pid})["returncode"])

    @staticmethod
    def has_exited(pid: int) -> bool:
        fields = _stat_fields(str(pid))
        return fields is None or fields[0] in ("Z", "X")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=EVENT_CEILING_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Corpus:
    root: Path
    good: list[Path]
    bad: list[Path]


def draw_image(path: Path, rng: random.Random, size: tuple[int, int] = (48, 40)) -> None:
    """A small PNG of random coloured rectangles: distinct enough that each finds itself."""
    width, height = size
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(5):
        xs, ys = sorted(rng.sample(range(width), 2)), sorted(rng.sample(range(height), 2))
        draw.rectangle(
            (xs[0], ys[0], xs[1], ys[1]), fill=tuple(rng.randrange(256) for _ in range(3))
        )
    image.save(path)


def draw_corpus(root: Path, count: int, *, seed: int = 3) -> Corpus:
    """`count` good images plus two files that must end up `failed`."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    good = []
    for i in range(count):
        path = root / f"{i:04d}.png"
        draw_image(path, rng)
        good.append(path)
    bad = [root / "bad.jpg", root / "not-an-image.png"]
    bad[0].write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    bad[1].write_text("this is not a picture")
    return Corpus(root, good, bad)


def crash_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment of a `pixseek` run under test: small batches, one decode worker, frequent
    FAISS saves (so kills land in every stage many times)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PIXSEEK_") or k.startswith("PIXSEEK_TEST_")
    }
    env.update(
        {
            "PIXSEEK_DATA_DIR": str(settings.data_dir),
            "PIXSEEK_DATABASE_URL": settings.resolved_database_url(),
            "PIXSEEK_MODEL": "tiny-test",
            "PIXSEEK_DEVICE": "cpu",
            "PIXSEEK_BATCH_SIZE": "8",
            "PIXSEEK_WORKERS": "1",
            "PIXSEEK_INDEX_SAVE_SECONDS": "0.3",
            "HF_HUB_OFFLINE": "1",
        }
    )
    env.update(extra)
    return env


def wait_for(
    condition: Callable[[], object], what: str, ceiling: float = EVENT_CEILING_S, poll: float = 0.02
) -> tuple[object, float]:
    """Wait until `condition()` is truthy; returns (its value, seconds waited). Fails after
    `ceiling` seconds, saying what it waited for."""
    started = time.monotonic()
    while True:
        value = condition()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() - started > ceiling:
            pytest.fail(f"waited {ceiling:.0f} s for {what}")
        time.sleep(poll)


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return raw.rsplit(b")", 1)[1].decode().split()  # fields after the command name


def live_session_members(session: int) -> list[int]:
    """PIDs of living (not zombie) processes in session `session`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        # fields[0] = state, [1] = ppid, [2] = pgrp, [3] = session
        if fields is not None and int(fields[3]) == session and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def wait_session_gone(session: int, within: float = 5.0) -> float:
    """Seconds until no process of `session` is alive; fails (naming them) after `within` s."""
    started = time.monotonic()
    while True:
        alive = live_session_members(session)
        if not alive:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            described = []
            for pid in alive:
                fields = _stat_fields(str(pid)) or ["?", "?"]
                try:
                    command = (
                        Path(f"/proc/{pid}/cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode()[:120]
                    )
                except OSError:
                    command = "?"
                described.append(f"pid {pid} (parent {fields[1]}, state {fields[0]}): {command}")
            for pid in alive:  # do not leave them behind for the next test
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            pytest.fail(
                f"{len(alive)} process(es) of the killed run survived {within:.0f} s: {described}"
            )
        time.sleep(0.02)


def assert_invariant(
    settings: Settings, good: list[Path], bad: list[Path], *, search_every_file: bool = True
) -> None:
    """Every file `embedded` (good) or `failed` (bad), once; catalog rows = durable vectors =
    FAISS ids; the FAISS file is the generation the catalog records; no temp files;
    `pixseek check` finds nothing wrong; searching by each image finds that image first."""
    catalog = open_catalog(settings.resolved_database_url())
    try:
        (collection,) = catalog.list_collections()
        counts = catalog.count_by_status(collection.id)
        assert counts == {"embedded": len(good), "failed": len(bad)}, counts
        embedded = np.sort(np.asarray(catalog.embedded_ids(collection.id), dtype=np.int64))
        rows = catalog.get_images(embedded.tolist())
        assert sorted(r.path for r in rows.values()) == sorted(str(p) for p in good), (
            "catalog paths differ"
        )
        all_ids = {row.id for row in catalog.image_states(collection.id).values()}
        failed_paths = sorted(path for path, _ in catalog.failures(collection.id))
        assert failed_paths == sorted(str(p) for p in bad), failed_paths
        build = catalog.index_build(collection.id)
        report = check_data_dir(settings, catalog)
    finally:
        catalog.close()
    problems = [f for f in report.all_findings() if f.problem]
    assert report.ok and not problems, f"pixseek check found: {problems}"

    folder = settings.collection_dir(collection.id)
    index = VectorIndex.load(folder / "index.faiss")
    faiss_ids = np.sort(index.ids())
    assert len(np.unique(faiss_ids)) == len(faiss_ids), "duplicate ids in FAISS"
    assert np.array_equal(faiss_ids, embedded), "FAISS ids differ from the catalog's embedded ids"
    assert build is not None and build.generation == index.generation and build.count == len(good)
    vector_ids, _ = VectorStore(folder / "vectors", collection.dim).latest()
    # Vectors of pruned images may wait for a compaction; none may belong to a row not embedded.
    assert np.array_equal(
        np.intersect1d(vector_ids, np.asarray(sorted(all_ids), dtype=np.int64)), embedded
    )
    assert not list((folder / "vectors").glob(".*.tmp")) and not list(folder.glob(".*.tmp"))

    if search_every_file:
        _assert_each_image_finds_itself(settings, good)


def _assert_each_image_finds_itself(settings: Settings, good: list[Path]) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small image at a time: more threads only contend on 2 busy cores
    catalog = open_catalog(settings.resolved_database_url())
    try:
        engine = SearchEngine(
            settings.model_copy(update={"model": "tiny-test", "device": "cpu"}), catalog
        )
        misses = []
        for path in good:
            hits = engine.search_image_bytes(path.read_bytes(), k=3).results
            if not hits or hits[0].path != str(path) or hits[0].score < 0.998:
                misses.append((path.name, [(h.path, round(h.score, 4)) for h in hits]))
        assert not misses, (
            f"{len(misses)} of {len(good)} images do not find themselves first: {misses[:5]}"
        )
    finally:
        catalog.close()
        torch.set_num_threads(threads)
