"""The indexing jobs as Server-Sent Events: what `GET /api/jobs/events` and
`GET /api/jobs/{id}/events` stream (FastAPI's `EventSourceResponse` frames each item as a JSON
`data:` event and adds a keep-alive comment after 15 s of silence).

Each stream polls the catalog every `POLL_SECONDS` in a worker thread (a catalog call blocks;
no database session is held between polls) and sends only what changed. A stream ends by
itself: the job stream when the job reaches a final state, the all-jobs stream when no job is
queued or running, and either after `STREAM_SECONDS`, because uvicorn lets open responses
finish before it stops; a client still watching connects again and gets the current state
first. A client that disconnects cancels the stream (Starlette listens for the disconnect)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from starlette.concurrency import run_in_threadpool

from search.catalog import Catalog
from search.job_reader import JobReader
from search.job_schemas import ACTIVE_JOB_STATES, JobResponse, JobsUpdate

__all__ = ["POLL_SECONDS", "STREAM_SECONDS", "job_events", "jobs_events"]

POLL_SECONDS = 0.5  # job rows change at most once a second (indexer.jobs.PROGRESS_EVERY_S)
STREAM_SECONDS = 10.0  # how long one response may hold a server that wants to stop


async def job_events(catalog: Catalog, job_id: int) -> AsyncIterator[JobResponse]:
    """Job `job_id` now, then each time it changes, ending with its final state."""
    reader = JobReader(catalog)
    deadline = time.monotonic() + STREAM_SECONDS
    last: JobResponse | None = None
    while True:
        job = await run_in_threadpool(reader.job, job_id)
        if job != last:
            yield job
            last = job
        if job.state not in ACTIVE_JOB_STATES or time.monotonic() > deadline:
            return
        await anyio.sleep(POLL_SECONDS)


async def jobs_events(catalog: Catalog, limit: int) -> AsyncIterator[JobsUpdate]:
    """The newest `limit` jobs now, then the ones that change, until none is at work."""
    reader = JobReader(catalog)
    deadline = time.monotonic() + STREAM_SECONDS
    sent: dict[int, JobResponse] = {}
    first = True
    while True:
        jobs = await run_in_threadpool(reader.recent, limit)
        changed = [job for job in jobs if sent.get(job.id) != job]
        active = sum(job.state in ACTIVE_JOB_STATES for job in jobs)
        if changed or first:
            yield JobsUpdate(jobs=changed, active=active)
            sent.update((job.id, job) for job in changed)
            first = False
        if active == 0 or time.monotonic() > deadline:
            return
        await anyio.sleep(POLL_SECONDS)
