"""Jobs API: start (admin), watch, cancel (admin) and resume (admin) indexing jobs. It lives in
`web` because it drives the indexer, which `search` must not import. Starting a job is limited
to the folders of PIXSEEK_ALLOWED_ROOTS (`indexer.job_runner.check_allowed_root`).

Watching is read-only, so like `GET /api/jobs` it needs no admin token: a browser's
`EventSource` cannot send an Authorization header. The event streams are in `web.job_events`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.sse import EventSourceResponse

from search.job_reader import JobReader
from search.job_schemas import JobRequest, JobResponse, JobsUpdate
from web.auth import require_admin
from web.deps import JobId, Runner
from web.job_events import STREAM_SECONDS, job_events, jobs_events

__all__ = ["router"]

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

RecentLimit = Annotated[int, Query(ge=1, le=500, description="How many of the newest jobs.")]

_STREAM_NOTE = (
    f" A stream also ends after {STREAM_SECONDS:.0f} s (so a stopping server is not held up): "
    "connect again to go on watching; every connection starts with the current state. A "
    "comment line (`: ping`) keeps an idle connection open. Read-only: no admin token "
    "(a browser's EventSource cannot send one), only the read token when the server sets it."
)


@router.post(
    "",
    response_model=JobResponse,
    status_code=202,
    dependencies=[Depends(require_admin)],
    summary="Start indexing a folder (admin)",
    description="Indexes a folder or image file on the server into a collection. The path "
    "must be absolute and inside one of the folders of PIXSEEK_ALLOWED_ROOTS (resolved: a "
    "symlink out of them is refused with 403); with that setting unset, the API indexes "
    "nothing and `pixseek index` on the server is the way.",
)
def start_job(runner: Runner, body: JobRequest) -> JobResponse:
    return JobReader(runner.catalog).responses([runner.submit(body)])[0]


@router.get("", response_model=list[JobResponse], summary="Recent jobs, newest first")
def list_jobs(runner: Runner, limit: RecentLimit = 50) -> list[JobResponse]:
    return JobReader(runner.catalog).recent(limit)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    summary="Watch the recent jobs (Server-Sent Events)",
    response_description="`text/event-stream` of `JobsUpdate` events.",
    description="A `text/event-stream`: the first event lists the newest `limit` jobs, each "
    "later one the jobs that changed (progress, state), as JSON `data:` (`JobsUpdate`). The "
    "stream ends after an event whose `active` (jobs queued or running) is 0." + _STREAM_NOTE,
)
async def watch_jobs(runner: Runner, limit: RecentLimit = 50) -> AsyncIterator[JobsUpdate]:
    async for update in jobs_events(runner.catalog, limit):
        yield update


@router.get("/{job_id}", response_model=JobResponse, summary="One job's state and progress")
def get_job(runner: Runner, job_id: JobId) -> JobResponse:
    return JobReader(runner.catalog).job(job_id)


def _existing_job(runner: Runner, job_id: JobId) -> int:
    """The id of a job that exists: an unknown one is a 404 before the stream starts."""
    return runner.catalog.get_job(job_id).id


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Watch one job (Server-Sent Events)",
    response_description="`text/event-stream` of `JobResponse` events.",
    description="A `text/event-stream` of the job as JSON `data:` events (`JobResponse`): "
    "its state now, then each change of progress or state (the catalog is polled twice a "
    "second), ending with a final state (done, failed or cancelled)." + _STREAM_NOTE,
)
async def watch_job(
    runner: Runner, job_id: Annotated[int, Depends(_existing_job)]
) -> AsyncIterator[JobResponse]:
    async for job in job_events(runner.catalog, job_id):
        yield job


@router.post(
    "/{job_id}/cancel",
    response_model=JobResponse,
    dependencies=[Depends(require_admin)],
    summary="Cancel a job (admin); it stops at a batch boundary and can be resumed",
)
def cancel_job(runner: Runner, job_id: JobId) -> JobResponse:
    return JobReader(runner.catalog).responses([runner.cancel(job_id)])[0]


@router.post(
    "/{job_id}/resume",
    response_model=JobResponse,
    status_code=202,
    dependencies=[Depends(require_admin)],
    summary="Resume a cancelled or failed job (admin), as a new job",
    description="Queues a new job with the stopped job's folder, collection and model; its "
    "`resumed_from` names the old job, whose row keeps what that run did. Indexing is "
    "incremental, so the new job embeds only what is left. 409 when the job is queued, "
    "running or done, or a job resuming it is queued or running; the folder must still be "
    "inside PIXSEEK_ALLOWED_ROOTS.",
)
def resume_job(runner: Runner, job_id: JobId) -> JobResponse:
    return JobReader(runner.catalog).responses([runner.resume(job_id)])[0]
