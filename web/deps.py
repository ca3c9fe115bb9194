"""Dependencies the JSON routes and the HTML pages share: the app's engine and job runner, and
reading an upload within its size limit. Both front ends import them from here, so a page
never imports an API module (or the other way round)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, UploadFile

from indexer.job_runner import JobRunner
from search.errors import InputError
from search.query.engine import SearchEngine

__all__ = ["Engine", "Runner", "get_engine", "get_runner", "read_upload"]

# The multipart envelope around a file (boundaries, part headers) is small; a body larger than
# the file limit plus this margin is refused from its Content-Length alone, before reading.
_MULTIPART_MARGIN = 64 * 1024


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
    if declared and declared.isdigit() and int(declared) > limit + _MULTIPART_MARGIN:
        raise InputError(
            f"Upload is {declared} bytes; the limit is {limit} (PIXSEEK_MAX_UPLOAD_BYTES)."
        )
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"Upload {file.filename!r} is over the limit of {limit} bytes "
            "(PIXSEEK_MAX_UPLOAD_BYTES)."
        )
    return data
