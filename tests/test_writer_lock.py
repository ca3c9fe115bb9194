"""The writer lock of a collection: one writer at a time, held by the process that took it and
by no child it forks, gone the instant that process dies, and taken over (with a log line) from
a holder that died."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from search.errors import IndexLockedError
from search.storage.collection_store import WriterLock
from tests.crash_harness import ROOT

# A holder that takes the lock, then forks a child that inherits every descriptor (like a
# DataLoader worker) and outlives it.
_HOLDER_WITH_A_FORKED_CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from search.storage.collection_store import WriterLock
    lock = WriterLock(Path(sys.argv[1]), "photos").__enter__()
    child = os.fork()
    if child == 0:
        time.sleep(120)
        os._exit(0)
    print(child, flush=True)
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"


def test_a_forked_child_never_holds_the_lock_and_a_dead_holder_frees_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock_path = tmp_path / "collections" / "1" / "writer.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER_WITH_A_FORKED_CHILD, str(lock_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline())
    try:
        assert WriterLock(lock_path, "photos").holder() == holder.pid
        with pytest.raises(
            IndexLockedError, match=f"being indexed by another process \\(process {holder.pid}\\)"
        ):
            WriterLock(lock_path, "photos").__enter__()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert _alive(child), (
            "the test needs the forked child alive, as an orphaned worker would be"
        )
        with (
            caplog.at_level(logging.WARNING, logger="search.storage.collection_store"),
            WriterLock(lock_path, "photos") as lock,  # at once: no waiting for the orphan
        ):
            assert lock.holder() == os.getpid()
        assert f"left by process {holder.pid}, which is gone" in caplog.text
    finally:
        os.kill(child, signal.SIGKILL)
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()


def test_one_process_cannot_take_its_own_lock_twice(tmp_path: Path) -> None:
    lock_path = tmp_path / "writer.lock"
    with WriterLock(lock_path, "photos") as lock:
        assert lock_path.read_text() == str(os.getpid())
        with pytest.raises(IndexLockedError, match="this process"):
            WriterLock(lock_path, "photos").__enter__()
        assert lock.holder() == os.getpid(), "the refused attempt must not release the lock"
    released = WriterLock(lock_path, "photos")
    assert released.holder() is None and released.left_by() is None
    assert lock_path.read_text() == "", "a clean release names nobody"
    with WriterLock(lock_path, "photos"):
        pass


def test_a_lock_left_by_a_dead_process_is_reported_and_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock_path = tmp_path / "writer.lock"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path.write_text(str(dead.pid))
    lock = WriterLock(lock_path, "photos")
    assert lock.holder() is None and lock.left_by() == dead.pid
    with caplog.at_level(logging.WARNING, logger="search.storage.collection_store"), lock:
        pass
    assert (
        f"Taking over the writer lock of collection 'photos' ({lock_path}): "
        f"it was left by process {dead.pid}" in caplog.text
    )
