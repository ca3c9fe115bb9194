"""Decode worker processes die with the indexer that started them, at every instant.

torch's DataLoader workers watch their parent with `ManagerWatchdog`, which remembers
`os.getppid()` when the worker loop starts and exits once it changes. A worker whose parent is
killed *before* that moment (the first milliseconds after the fork, longer on a loaded
machine) remembers the adopting process (PID 1 or a subreaper) as its parent and waits for work
forever, holding pipes, memory and a database connection. `die_with_parent`, called first thing
in the worker initialiser, closes that window from both sides:

1. `prctl(PR_SET_PDEATHSIG, SIGKILL)` (Linux): from this call on, the kernel kills the worker
   the moment its parent dies. The "parent" is the thread that forked it, so the indexer must
   start its DataLoader from a thread that lives as long as the loader (the CLI's main thread,
   or the API's job thread, which iterates the loader it created).
2. Then `os.getppid()` is compared with the PID the parent passed in: if they differ, the parent
   died before step 1 took effect (no signal will ever come), and the worker exits at once.

Together they leave no instant at which the parent can die unnoticed. Elsewhere than Linux only
the second check runs, and torch's watchdog covers the time after it.

Test hook, honest and inert unless asked: with `PIXSEEK_TEST_WORKER_STARTED_DIR` set, each
worker creates an empty file named by its PID in that folder, at fork time (an
`os.register_at_fork` hook, so before torch's own worker start-up) and again in the
initialiser (for spawned workers, which run no fork hooks). Crash tests watch that folder to
aim SIGKILLs at the first milliseconds of a worker's life, the window described above.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
from pathlib import Path

__all__ = [
    "EXIT_ORPHANED",
    "announce_worker_start",
    "die_with_parent",
    "report_worker_starts_if_asked",
]

EXIT_ORPHANED = 75  # the status a worker exits with when it finds its parent already gone
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WORKER_STARTED_DIR_ENV = "PIXSEEK_TEST_WORKER_STARTED_DIR"


def die_with_parent(parent_pid: int) -> None:
    """Make this process die when `parent_pid` does; exit now if it already has."""
    announce_worker_start()
    _kill_me_when_parent_dies()
    if os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)  # no cleanup: nothing here belongs to anyone alive


def _kill_me_when_parent_dies() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")


def announce_worker_start() -> None:
    """Test hook: mark this worker's start in `PIXSEEK_TEST_WORKER_STARTED_DIR` (when set)."""
    folder = os.environ.get(WORKER_STARTED_DIR_ENV)
    if not folder:
        return
    with contextlib.suppress(OSError):  # a test aid must never break a worker
        os.close(os.open(Path(folder) / str(os.getpid()), os.O_WRONLY | os.O_CREAT, 0o644))


def report_worker_starts_if_asked() -> None:
    """Install the fork-time marker of the test hook once per process (only when asked)."""
    if os.environ.get(WORKER_STARTED_DIR_ENV):
        _install_fork_hook()


@functools.cache
def _install_fork_hook() -> None:
    """Runs once per process (the cache remembers it), so the hook is never installed twice."""
    os.register_at_fork(after_in_child=announce_worker_start)
