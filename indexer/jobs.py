"""Indexing runs as jobs: every run, from the CLI or the API, is recorded in the catalog with its
state, progress, rate and errors. A job killed with its process is marked failed by the next
writer of the collection (which resumes the work); a cancelled job stops at a batch boundary."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexer.options import IndexOptions, ProgressCallback
from indexer.pipeline import index_paths
from indexer.report import IndexReport
from search.catalog import Catalog
from search.catalog.schema import JobState
from search.errors import PixseekError
from search.settings import Settings

__all__ = ["job_args", "run_index_job"]

PROGRESS_EVERY_S = 1.0


def job_args(
    paths: list[Path], collection: str, model_spec: str | None, from_list: Path | None
) -> dict[str, Any]:
    """The `args` a job row records for an indexing run (shown by `pixseek jobs`)."""
    return {
        "paths": [str(p) for p in paths],
        "collection": collection,
        "model": model_spec,
        "from_list": str(from_list) if from_list else None,
    }


def run_index_job(
    settings: Settings,
    catalog: Catalog,
    job_id: int,
    *,
    paths: list[Path],
    collection: str = "default",
    model_spec: str | None = None,
    from_list: Path | None = None,
    prune: bool = True,
    follow_symlinks: bool = False,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> IndexReport:
    """Run `index_paths` as job `job_id` (already created), keeping its row up to date."""
    options = IndexOptions(
        collection=collection,
        model_spec=model_spec,
        from_list=from_list,
        prune=prune,
        follow_symlinks=follow_symlinks,
        progress=_JobProgress(catalog, job_id, progress),
        should_stop=should_stop,
        job_id=job_id,
    )
    try:
        report = index_paths(settings, catalog, paths, options)
    except PixseekError as exc:
        catalog.finish_job(job_id, JobState.FAILED, error=str(exc))
        raise
    except BaseException as exc:  # KeyboardInterrupt, or a bug: the row must not stay "running"
        catalog.finish_job(job_id, JobState.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    _finish(catalog, job_id, report)
    return report


class _JobProgress:
    """Progress of a job: passed on to the caller's callback, written to the job row at most
    every PROGRESS_EVERY_S seconds (and at the end)."""

    def __init__(self, catalog: Catalog, job_id: int, progress: ProgressCallback | None) -> None:
        self.catalog = catalog
        self.job_id = job_id
        self.progress = progress
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int, failed: int) -> None:
        if self.progress:
            self.progress(done, total, failed)
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S or done == total:
            self.last = now
            self.catalog.update_job_progress(
                self.job_id,
                done=done,
                total=total,
                failed=failed,
                rate=done / max(now - self.started, 1e-9),
            )


def _finish(catalog: Catalog, job_id: int, report: IndexReport) -> None:
    """Record a run that ended (done, or cancelled) with its counts and failures."""
    processed = report.indexed + report.failed
    catalog.finish_job(
        job_id,
        JobState.CANCELLED if report.cancelled else JobState.DONE,
        errors=[{"path": path, "reason": reason} for path, reason in report.failures],
        counts={
            "done": processed,
            "total": max(processed, _total(catalog, job_id)),
            "failed": report.failed,
            "rate": report.rate,
        },
    )


def _total(catalog: Catalog, job_id: int) -> int:
    return catalog.get_job(job_id).total
