"""Running indexing jobs inside the server: one at a time, in a background thread, so requests
(and searches) are never blocked. Cancelling sets a flag the indexer checks between batches."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from indexer.jobs import job_args, run_index_job
from search.catalog import Catalog, JobInfo
from search.catalog.schema import JobState
from search.errors import InputError, PixseekError
from search.job_schemas import JobRequest
from search.settings import Settings

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)


class JobRunner:
    """Queue of indexing jobs for one app."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixseek-job")
        self._stop_flags: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def submit(self, request: JobRequest) -> JobInfo:
        path = Path(request.path).expanduser()
        if not path.is_absolute():
            raise InputError(
                f"path {request.path!r} must be absolute (it is a path on the server)."
            )
        if not path.exists():
            raise InputError(f"path {request.path!r} does not exist on the server.")
        job_id = self.catalog.create_job(
            "index", job_args([path], request.collection, request.model, None)
        )
        flag = threading.Event()
        with self._lock:
            self._stop_flags[job_id] = flag
        self._executor.submit(self._run, job_id, path, request, flag)
        return self.catalog.get_job(job_id)

    def _run(self, job_id: int, path: Path, request: JobRequest, flag: threading.Event) -> None:
        try:
            if flag.is_set() or not self.catalog.start_job(job_id):
                return
            run_index_job(
                self.settings,
                self.catalog,
                job_id,
                paths=[path],
                collection=request.collection,
                model_spec=request.model,
                should_stop=flag.is_set,
            )
        except PixseekError as exc:
            log.info("job %s failed: %s", job_id, exc)
        except Exception:  # recorded on the job row by run_index_job; keep the worker alive
            log.exception("job %s crashed", job_id)
        finally:
            with self._lock:
                self._stop_flags.pop(job_id, None)

    def cancel(self, job_id: int, wait_seconds: float = 10.0) -> JobInfo:
        """Cancel a queued job at once, or ask a running one to stop at its next batch."""
        job = self.catalog.get_job(job_id)
        if job.state == JobState.QUEUED:
            with self._lock:
                flag = self._stop_flags.get(job_id)
            if flag:
                flag.set()
            self.catalog.cancel_queued_job(job_id)
        elif job.state == JobState.RUNNING:
            with self._lock:
                flag = self._stop_flags.get(job_id)
            if flag is None:
                raise InputError(
                    f"Job {job_id} is run by another process (the CLI); stop it there."
                )
            flag.set()
            deadline = time.monotonic() + wait_seconds
            while (
                time.monotonic() < deadline
                and self.catalog.get_job(job_id).state == JobState.RUNNING
            ):
                time.sleep(0.1)
        return self.catalog.get_job(job_id)

    def shutdown(self) -> None:
        with self._lock:
            for flag in self._stop_flags.values():
                flag.set()
        self._executor.shutdown(wait=True, cancel_futures=False)
