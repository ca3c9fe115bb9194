"""Catalog queries about jobs: every indexing run, from the CLI or the API, is one row with
its state, counts, rate and errors, so runs can be listed, watched, cancelled and resumed."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from search.catalog.schema import Collection, Job, JobState
from search.errors import NotFoundError

__all__ = ["JobInfo", "JobQueries"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobInfo:
    """One job row as the API and the CLI show it (`collection` by name)."""

    id: int
    kind: str
    state: str
    collection: str | None
    args: dict[str, Any]
    total: int
    done: int
    failed: int
    rate: float | None
    error: str | None
    errors: list[Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobQueries:
    """Jobs: every indexing run, from the CLI or the API, is one row."""

    def session(self) -> AbstractContextManager[Session]:  # provided by Catalog
        raise NotImplementedError

    def create_job(self, kind: str, args: dict[str, Any], *, state: str = JobState.QUEUED) -> int:
        with self.session() as s:
            job = Job(
                kind=kind,
                state=state,
                args=args,
                total=0,
                done=0,
                failed=0,
                created_at=utcnow(),
                started_at=utcnow() if state == JobState.RUNNING else None,
            )
            s.add(job)
            s.flush()
            return job.id

    def start_job(self, job_id: int) -> bool:
        """queued -> running; False if the job was cancelled meanwhile."""
        with self.session() as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.QUEUED)
                .values(state=JobState.RUNNING, started_at=utcnow())
            )
            return bool(cast("CursorResult[Any]", result).rowcount)

    def attach_job(self, job_id: int, collection_id: int) -> None:
        """Bind a job to its collection and fail jobs of that collection left `running` by a
        writer that died (the caller holds the collection's writer lock, so none is alive)."""
        interrupted = f"interrupted: the process died; job {job_id} resumed the work"
        with self.session() as s:
            name = s.get(Collection, collection_id).name  # type: ignore[union-attr]
            s.execute(update(Job).where(Job.id == job_id).values(collection_id=collection_id))
            stale = s.scalars(select(Job).where(Job.state == JobState.RUNNING, Job.id != job_id))
            for job in stale:
                # Jobs killed before they reached the lock have no collection yet: match by name.
                if job.collection_id == collection_id or (
                    job.collection_id is None and (job.args or {}).get("collection") == name
                ):
                    job.state, job.finished_at, job.error = JobState.FAILED, utcnow(), interrupted

    def update_job_progress(
        self, job_id: int, *, done: int, total: int, failed: int, rate: float | None
    ) -> None:
        with self.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(done=done, total=total, failed=failed, rate=rate)
            )

    def finish_job(
        self,
        job_id: int,
        state: str,
        *,
        error: str | None = None,
        errors: list[Any] | None = None,
        counts: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "finished_at": utcnow(), "error": error}
        if errors is not None:
            values["errors"] = errors
        if counts is not None:
            values.update(counts)
        with self.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    def cancel_queued_job(self, job_id: int) -> bool:
        with self.session() as s:
            result = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.QUEUED)
                .values(state=JobState.CANCELLED, finished_at=utcnow())
            )
            return bool(cast("CursorResult[Any]", result).rowcount)

    def get_job(self, job_id: int) -> JobInfo:
        with self.session() as s:
            row = s.get(Job, job_id)
            if row is None:
                raise NotFoundError(f"No job with id {job_id}.")
            return _job_info(s, row)

    def list_jobs(self, limit: int = 50) -> list[JobInfo]:
        with self.session() as s:
            rows = s.scalars(select(Job).order_by(Job.id.desc()).limit(limit))
            return [_job_info(s, row) for row in rows]


def _job_info(s: Session, row: Job) -> JobInfo:
    collection = s.get(Collection, row.collection_id) if row.collection_id else None
    name = collection.name if collection else (row.args or {}).get("collection")
    return JobInfo(
        id=row.id,
        kind=row.kind,
        state=row.state,
        collection=name,
        args=row.args or {},
        total=row.total,
        done=row.done,
        failed=row.failed,
        rate=row.rate,
        error=row.error,
        errors=row.errors or [],
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
