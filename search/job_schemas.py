"""The JSON shape of an indexing job, shared by the jobs API, its event streams, the jobs page
and `pixseek jobs`. Figures derived from the row (the ETA, the job a resumed one continues) are
computed here, so every front end shows the same numbers without a schema change."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from search.catalog import JobInfo
from search.timestamps import UtcDateTime

__all__ = ["ACTIVE_JOB_STATES", "JobRequest", "JobResponse", "JobsUpdate", "eta_seconds"]

JobStateName = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE_JOB_STATES = frozenset({"queued", "running"})
"""States a job leaves by itself; every other state is final (until someone resumes it)."""


class JobRequest(BaseModel):
    """What a new indexing job indexes: a path on the server, into which collection."""

    path: str = Field(
        description="Folder or image file to index (on the server's file system).",
        min_length=1,
        max_length=4096,
    )
    collection: str = Field(default="default", min_length=1, max_length=200)
    model: str | None = Field(default=None, description="Encoder SPEC for a new collection.")


class JobResponse(BaseModel):
    """A job's state and progress, as the API, the jobs page and `pixseek jobs` show it."""

    id: int
    kind: str
    state: JobStateName
    collection: str | None
    done: int = Field(description="Images processed (embedded or failed) by this run.")
    total: int = Field(description="Images this run has to process (new or changed files).")
    failed: int
    rate: float | None = Field(description="Images per second.")
    eta_seconds: float | None = Field(
        default=None,
        description="Seconds left at the current rate, while the job runs and knows its total.",
    )
    collection_failures_by_reason: dict[str, int] = Field(
        default_factory=dict,
        description="Failed images of the job's collection by kind of reason (the text before "
        "the reason's first colon): this run's and earlier runs' (a failed file stays failed "
        "until it changes). `pixseek failures` names the files.",
    )
    resumed_from: int | None = Field(
        default=None, description="The stopped job whose work this one resumed, if any."
    )
    error: str | None = None
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="First failures: path and reason."
    )
    args: dict[str, Any] = Field(default_factory=dict)
    created_at: UtcDateTime = Field(description="When the job was created (UTC).")
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None

    @classmethod
    def from_info(
        cls, info: JobInfo, failures_by_reason: dict[str, int] | None = None
    ) -> JobResponse:
        """The response for a catalog job row (same field names), with the derived figures;
        `failures_by_reason` is the collection's count when the caller has it."""
        derived = {"eta_seconds", "collection_failures_by_reason", "resumed_from"}
        fields = {name: getattr(info, name) for name in cls.model_fields if name not in derived}
        resumed_from = info.args.get("resumed_from")
        return cls(
            **fields,
            eta_seconds=eta_seconds(info),
            collection_failures_by_reason=failures_by_reason or {},
            resumed_from=resumed_from if isinstance(resumed_from, int) else None,
        )


class JobsUpdate(BaseModel):
    """One event of the stream of all recent jobs: the jobs that changed, and how many are
    still at work (the stream ends after an event with none)."""

    jobs: list[JobResponse] = Field(
        description="Jobs new or changed since the previous event, newest first (every recent "
        "job in the first event)."
    )
    active: int = Field(description="Recent jobs queued or running.")


def eta_seconds(info: JobInfo) -> float | None:
    """Seconds a running job still needs at its current rate; None when it is not running or
    has not yet measured a rate or counted its images."""
    if info.state != "running" or not info.rate or info.rate <= 0 or info.total <= 0:
        return None
    return round(max(info.total - info.done, 0) / info.rate, 1)
