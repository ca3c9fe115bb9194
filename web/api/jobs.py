"""Jobs API: start (admin), watch and cancel (admin) indexing jobs. It lives in `web` because it
drives the indexer, which `search` must not import. Starting a job is limited to the folders
of PIXSEEK_ALLOWED_ROOTS (`indexer.job_runner.check_allowed_root`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from search.job_schemas import JobRequest, JobResponse
from web.auth import require_admin
from web.deps import JobId, Runner

__all__ = ["router"]

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


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
    return JobResponse.from_info(runner.submit(body))


@router.get("", response_model=list[JobResponse], summary="Recent jobs, newest first")
def list_jobs(runner: Runner, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[JobResponse]:
    return [JobResponse.from_info(job) for job in runner.catalog.list_jobs(limit)]


@router.get("/{job_id}", response_model=JobResponse, summary="One job's state and progress")
def get_job(runner: Runner, job_id: JobId) -> JobResponse:
    return JobResponse.from_info(runner.catalog.get_job(job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobResponse,
    dependencies=[Depends(require_admin)],
    summary="Cancel a job (admin); it stops at a batch boundary and can be resumed",
)
def cancel_job(runner: Runner, job_id: JobId) -> JobResponse:
    return JobResponse.from_info(runner.cancel(job_id))
