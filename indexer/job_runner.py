"""Running indexing jobs inside the server: one at a time, in a background thread, so requests
(and searches) are never blocked. Cancelling sets a flag the indexer checks between batches.

Only folders inside `PIXSEEK_ALLOWED_ROOTS` may be indexed this way (resolved, so a symlink
cannot lead out); none when it is unset. The CLI does not come through here and is not limited.

Stopping the server stops a running job at its next batch (everything embedded so far is
durable) and notes it on the job row; the next server start submits the same work again as a
new job, which embeds only what was left, so an upgrade or restart does not lose a long run.

`resume` does the same on request for a cancelled or failed job: a *new* job with the old one's
paths, collection and model, its `args["resumed_from"]` naming the old one. The old row keeps
its counts and errors (what that run did), and indexing is incremental, so the new job embeds
only what is left. A job that is queued or running, or that a queued or running job already
resumes, is refused with `JobConflictError` (409)."""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from indexer.jobs import job_args, run_index_job
from search.catalog import Catalog, JobInfo
from search.catalog.schema import JobState
from search.errors import ForbiddenError, InputError, PixseekError
from search.job_schemas import ACTIVE_JOB_STATES, JobRequest
from search.settings import Settings

__all__ = ["SHUTDOWN_NOTE", "JobConflictError", "JobRunner", "check_allowed_root"]

log = logging.getLogger(__name__)

SHUTDOWN_NOTE = "interrupted: the server stopped; it resumes when the server starts again"
_RESUMED_NOTE = "interrupted: the server stopped; job {job_id} resumed the work"


class JobConflictError(PixseekError):
    """A job cannot be resumed now: it (or the job resuming it) is queued or running, or it is
    done. Answered with 409, like the other conflicts with the index's state."""

    http_status = 409
    code = "job_conflict"


@dataclass(frozen=True)
class _Work:
    """What one job indexes: the paths, the collection and the encoder of a new collection."""

    paths: list[Path]
    collection: str
    model: str | None


def check_allowed_root(path: Path, allowed_roots: list[Path]) -> None:
    """Raise `ForbiddenError` unless `path` resolves (symlinks followed) inside one of
    `allowed_roots` (resolved too). Checked before the path's existence, so the API cannot be
    used to probe which paths exist outside the roots."""
    if not allowed_roots:
        raise ForbiddenError(
            "Indexing through the API is off: PIXSEEK_ALLOWED_ROOTS is not set. Set it to the "
            "folders the API may index (e.g. PIXSEEK_ALLOWED_ROOTS=/photos), or run "
            "`pixseek index PATH` on the server."
        )
    real = os.path.realpath(path)
    for root in allowed_roots:
        real_root = os.path.realpath(root.expanduser())
        if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
            return
    listed = os.pathsep.join(str(root) for root in allowed_roots)
    raise ForbiddenError(
        f"{str(path)!r} is outside the folders the API may index (PIXSEEK_ALLOWED_ROOTS="
        f"{listed}), or a symlink leads out of them. Index a folder inside them, or add this "
        "one to PIXSEEK_ALLOWED_ROOTS."
    )


class JobRunner:
    """Queue of indexing jobs for one app."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixseek-job")
        self._stop_flags: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._resume_lock = threading.Lock()  # two clicks on Resume queue one job, not two
        self._stopping = False

    def submit(self, request: JobRequest) -> JobInfo:
        """Queue an indexing job for `request.path` (absolute, inside the allowed roots)."""
        work = _Work([Path(request.path).expanduser()], request.collection, request.model)
        return self._queue(work)

    def resume(self, job_id: int) -> JobInfo:
        """Queue the work of stopped job `job_id` again as a new job (see the module)."""
        with self._resume_lock:
            job = self.catalog.get_job(job_id)
            _check_resumable(job, self.catalog.list_jobs(500))
            return self._queue(_work_of(job), resumed_from=job_id)

    def _queue(self, work: _Work, resumed_from: int | None = None) -> JobInfo:
        """Check `work`'s paths (absolute, allowed, existing) and queue it as a new job."""
        for path in work.paths:
            if not path.is_absolute():
                raise InputError(
                    f"path {str(path)!r} must be absolute (it is a path on the server)."
                )
            check_allowed_root(path, self.settings.allowed_roots)
            if not path.exists():
                raise InputError(f"path {str(path)!r} does not exist on the server.")
        args = job_args(work.paths, work.collection, work.model, None)
        if resumed_from is not None:
            args["resumed_from"] = resumed_from
        job_id = self.catalog.create_job("index", args)
        flag = threading.Event()
        with self._lock:
            self._stop_flags[job_id] = flag
        self._executor.submit(self._run, job_id, work, flag)
        return self.catalog.get_job(job_id)

    def _run(self, job_id: int, work: _Work, flag: threading.Event) -> None:
        try:
            if flag.is_set():
                if self._stopping and self.catalog.cancel_queued_job(job_id):
                    self.catalog.finish_job(job_id, JobState.CANCELLED, error=SHUTDOWN_NOTE)
                return
            if not self.catalog.start_job(job_id):
                return
            report = run_index_job(
                self.settings,
                self.catalog,
                job_id,
                paths=work.paths,
                collection=work.collection,
                model_spec=work.model,
                should_stop=flag.is_set,
            )
            if report.cancelled and self._stopping:
                self._note_interrupted(job_id)
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

    def _note_interrupted(self, job_id: int) -> None:
        """Keep the job's counts and state (cancelled), and say that a restart resumes it."""
        job = self.catalog.get_job(job_id)
        counts = {"done": job.done, "total": job.total, "failed": job.failed, "rate": job.rate}
        self.catalog.finish_job(
            job_id, JobState.CANCELLED, error=SHUTDOWN_NOTE, errors=job.errors, counts=counts
        )
        log.info(
            "job %s stopped with the server at %d/%d; it resumes at the next start",
            job_id,
            job.done,
            job.total,
        )

    def resume_interrupted(self) -> list[int]:
        """Submit again the jobs a previous server stopped (`SHUTDOWN_NOTE`); returns the new
        job ids. Each old row then names the job that took its work over."""
        resumed = []
        for job in reversed(self.catalog.list_jobs(500)):
            if job.state != JobState.CANCELLED or job.error != SHUTDOWN_NOTE:
                continue
            if job.kind != "index" or len(job.args.get("paths") or []) != 1:
                continue
            try:
                new = self._queue(_work_of(job), resumed_from=job.id)
            except PixseekError as exc:  # the folder is gone, or no longer allowed
                log.warning("job %s cannot resume: %s", job.id, exc)
                self.catalog.finish_job(job.id, JobState.CANCELLED, error=f"not resumed: {exc}")
                continue
            self.catalog.finish_job(
                job.id, JobState.CANCELLED, error=_RESUMED_NOTE.format(job_id=new.id)
            )
            resumed.append(new.id)
        if resumed:
            log.info("resumed %d interrupted job(s): %s", len(resumed), resumed)
        return resumed

    def shutdown(self) -> None:
        """Stop running and queued jobs at their next batch and wait for them; both are noted
        as interrupted and `resume_interrupted` takes them up at the next start."""
        with self._lock:
            self._stopping = True
            for flag in self._stop_flags.values():
                flag.set()
        self._executor.shutdown(wait=True, cancel_futures=False)


def _work_of(job: JobInfo) -> _Work:
    """The work job `job` was asked to do, from its recorded `args`; `InputError` for a run
    this runner cannot repeat (a file list given to the CLI)."""
    paths = job.args.get("paths") or []
    if job.kind != "index" or not paths or job.args.get("from_list"):
        raise InputError(
            f"Job {job.id} cannot be resumed from here: it indexed "
            f"{'a file list (--from-list)' if job.args.get('from_list') else 'no folder'}. "
            "Run `pixseek index` on the server again."
        )
    return _Work(
        [Path(path) for path in paths],
        str(job.args.get("collection") or "default"),
        job.args.get("model"),
    )


def _check_resumable(job: JobInfo, recent: list[JobInfo]) -> None:
    """Raise `JobConflictError` unless `job` is stopped (cancelled or failed) and no job of
    `recent` is already resuming it."""
    if job.state in ACTIVE_JOB_STATES:
        raise JobConflictError(
            f"Job {job.id} is {job.state}; only a cancelled or failed job can be resumed."
        )
    if job.state == JobState.DONE:
        where = ", ".join(job.args.get("paths") or []) or "the folder"
        raise JobConflictError(
            f"Job {job.id} is done; to index files added since, start a new job on {where}."
        )
    for other in recent:
        if other.args.get("resumed_from") == job.id and other.state in ACTIVE_JOB_STATES:
            raise JobConflictError(
                f"Job {other.id} already resumes job {job.id} and is {other.state}; watch or "
                "cancel it instead."
            )
