"""The JSON shape of an indexing job, shared by the jobs API, the jobs page and `pixseek jobs`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from search.catalog import JobInfo
from search.timestamps import UtcDateTime

__all__ = ["JobRequest", "JobResponse"]

JobStateName = Literal["queued", "running", "done", "failed", "cancelled"]


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
    error: str | None = None
    errors: list[dict[str, Any]] = Field(
        default_factory=list, description="First failures: path and reason."
    )
    args: dict[str, Any] = Field(default_factory=dict)
    created_at: UtcDateTime = Field(description="When the job was created (UTC).")
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None

    @classmethod
    def from_info(cls, info: JobInfo) -> JobResponse:
        """The response for a catalog job row (same field names)."""
        return cls(**{name: getattr(info, name) for name in cls.model_fields})
