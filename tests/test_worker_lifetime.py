"""Decode workers die with their parent at every instant: when the parent dies after the worker
set itself up (the kernel's parent-death signal), and when it died before (the `getppid`
check against the PID the parent passed in), which is the window torch's own watchdog misses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.crash_harness import ROOT, wait_for, wait_session_gone

# The parent forks a child and then waits to be killed. The child, like a DataLoader worker,
# calls `die_with_parent` with the parent's PID: at once (`early`), or only after the parent
# has died (`late`, the window before torch's watchdog starts). If the call returns, the child
# reports it and lives on, as an orphaned worker did.
_PARENT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from indexer.decode.worker_lifetime import die_with_parent
    when, folder = sys.argv[1], Path(sys.argv[2])
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        if when == "late":
            (folder / "waiting").write_text(str(os.getpid()))
            while os.getppid() == parent:
                time.sleep(0.001)
        die_with_parent(parent)
        (folder / ("survived" if when == "late" else "armed")).write_text(str(os.getpid()))
        time.sleep(120)
        os._exit(0)
    time.sleep(120)
""")


def _start_parent(when: str, folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _PARENT, when, str(folder)], cwd=ROOT, start_new_session=True
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = _start_parent("early", tmp_path)
    try:
        wait_for((tmp_path / "armed").exists, "the child to arm its parent-death signal")
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_session_gone(parent.pid, within=5.0)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_worker_whose_parent_died_before_it_was_set_up_exits_at_once(tmp_path: Path) -> None:
    parent = _start_parent("late", tmp_path)
    try:
        wait_for((tmp_path / "waiting").exists, "the child to start")
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_session_gone(parent.pid, within=5.0)
        assert not (tmp_path / "survived").exists(), "die_with_parent returned in an orphan"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_worker_with_a_living_parent_runs_on() -> None:
    script = (
        "import os, sys\nfrom indexer.decode.worker_lifetime import die_with_parent\n"
        "die_with_parent(os.getppid())\nprint('running', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "running\n", done.stderr


def test_the_worker_start_marker_is_written_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.decode.worker_lifetime import WORKER_STARTED_DIR_ENV, announce_worker_start

    announce_worker_start()
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv(WORKER_STARTED_DIR_ENV, str(tmp_path))
    announce_worker_start()
    assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())]
