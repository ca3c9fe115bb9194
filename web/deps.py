"""Dependencies the JSON routes and the HTML pages share: the app's engine and job runner,
catalog ids in paths, and reading an upload within its size limit. Both front ends import them
from here, so a page never imports an API module (or the other way round)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, UploadFile

from indexer.job_runner import JobRunner
from search.errors import TooLargeError
from search.query.engine import SearchEngine
from web.guards import MULTIPART_MARGIN

__all__ = [
    "CATALOG_ID_MAX",
    "Engine",
    "ImageId",
    "JobId",
    "Runner",
    "get_engine",
    "get_runner",
    "read_upload",
]

CATALOG_ID_MAX = 2**63 - 1
"""Catalog ids are 64-bit integers on SQLite and PostgreSQL; a larger number in a URL is not an
id (422), rather than a database overflow (which was a 500)."""

ImageId = Annotated[
    int, Path(ge=0, le=CATALOG_ID_MAX, description="The image's catalog id (see search results).")
]
JobId = Annotated[int, Path(ge=0, le=CATALOG_ID_MAX, description="The job's id.")]


def get_engine(request: Request) -> SearchEngine:
    """The app's one `SearchEngine` (built when the app starts)."""
    return request.app.state.engine  # type: ignore[no-any-return]


def get_runner(request: Request) -> JobRunner:
    """The app's one `JobRunner` (built when the app starts)."""
    return request.app.state.jobs  # type: ignore[no-any-return]


Engine = Annotated[SearchEngine, Depends(get_engine)]
Runner = Annotated[JobRunner, Depends(get_runner)]


async def read_upload(request: Request, file: UploadFile, engine: SearchEngine) -> bytes:
    """The uploaded bytes, refusing anything over the size limit without reading it all."""
    limit = engine.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_MARGIN:
        raise TooLargeError(
            f"Upload is {declared} bytes; the limit is {limit} (PIXSEEK_MAX_UPLOAD_BYTES)."
        )
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(
            f"Upload {file.filename!r} is over the limit of {limit} bytes "
            "(PIXSEEK_MAX_UPLOAD_BYTES)."
        )
    return data
