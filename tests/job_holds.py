"""Holding an in-process indexing job part-way until a test cancels it.

A test that cancels a running job must not race the job: on an idle machine the tiny model
indexes a few hundred small images before a cancel request (or a click) arrives, and the job
ends `done` instead of `cancelled`. `job_held_until_cancel` makes the job's first progress
report of at least `done` images wait until `JobRunner.cancel` (or `JobRunner.shutdown`, when
the server stops) has set the job's stop flag, so the job stops at its next batch boundary with
part of its work done, every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from indexer.job_runner import JobRunner
from indexer.jobs import _JobProgress

__all__ = ["HOLD_CEILING_S", "job_held_until_cancel"]

HOLD_CEILING_S = 600.0  # a loaded 2-core machine is slow, not wrong


@contextmanager
def job_held_until_cancel(done: int = 1) -> Iterator[threading.Event]:
    """While inside, the first job of this process to report `done` or more images (and not
    all of them) writes that progress to its row and waits there until a cancel or a shutdown
    arrives. Yields the event set when it waits."""
    held = threading.Event()
    cancel_asked = threading.Event()
    report = _JobProgress.__call__
    cancel = JobRunner.cancel
    shutdown = JobRunner.shutdown

    def holding_report(self: _JobProgress, done_now: int, total: int, failed: int) -> None:
        report(self, done_now, total, failed)
        if held.is_set() or not done <= done_now < total:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.catalog.update_job_progress(  # what a watcher sees while the job waits
            self.job_id, done=done_now, total=total, failed=failed, rate=done_now / elapsed
        )
        held.set()
        if not cancel_asked.wait(HOLD_CEILING_S):
            raise AssertionError(f"job {self.job_id} was held for a stop that never came")

    def flag_then_cancel(self: JobRunner, job_id: int, wait_seconds: float = 10.0) -> Any:
        with self._lock:
            flag = self._stop_flags.get(job_id)
        if flag is not None:
            flag.set()  # before the held job goes on, so its next batch boundary stops it
        cancel_asked.set()
        return cancel(self, job_id, wait_seconds)

    def flag_then_shut_down(self: JobRunner) -> None:
        with self._lock:
            self._stopping = True
            for flag in self._stop_flags.values():
                flag.set()
        cancel_asked.set()
        shutdown(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_JobProgress, "__call__", holding_report)
        patch.setattr(JobRunner, "cancel", flag_then_cancel)
        patch.setattr(JobRunner, "shutdown", flag_then_shut_down)
        yield held
