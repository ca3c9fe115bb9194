"""Indexing runs as jobs: every run, from the CLI or the API, is recorded in the catalog with its
state, progress, rate and errors. A job killed with its process is marked failed by the next
writer of the collection (which resumes the work); a cancelled job stops at a batch boundary."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexer.pipeline import IndexReport, ProgressCallback, index_paths
from search.catalog import Catalog
from search.catalog.schema import JobState
from search.errors import PixseekError
from search.settings import Settings

__all__ = ["job_args", "run_index_job"]

PROGRESS_EVERY_S = 1.0


def job_args(paths: list[Path], collection: str, model_spec: str | None, from_list: Path | None) -> dict[str, Any]:
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
    started = time.monotonic()
    last = 0.0

    def on_progress(done: int, total: int, failed: int) -> None:
        nonlocal last
        if progress:
            progress(done, total, failed)
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_S or done == total:
            last = now
            catalog.update_job_progress(job_id, done=done, total=total, failed=failed,
                                        rate=done / max(now - started, 1e-9))

    try:
        report = index_paths(
            settings, catalog, paths, collection=collection, model_spec=model_spec, from_list=from_list,
            prune=prune, follow_symlinks=follow_symlinks, progress=on_progress, should_stop=should_stop,
            job_id=job_id,
        )
    except PixseekError as exc:
        catalog.finish_job(job_id, JobState.FAILED, error=str(exc))
        raise
    except BaseException as exc:  # KeyboardInterrupt, or a bug: the row must not stay "running"
        catalog.finish_job(job_id, JobState.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    processed = report.indexed + report.failed
    catalog.finish_job(
        job_id,
        JobState.CANCELLED if report.cancelled else JobState.DONE,
        errors=[{"path": path, "reason": reason} for path, reason in report.failures],
        counts={"done": processed, "total": max(processed, _total(catalog, job_id)), "failed": report.failed,
                "rate": report.rate},
    )
    return report


def _total(catalog: Catalog, job_id: int) -> int:
    return catalog.get_job(job_id).total
