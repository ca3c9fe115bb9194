"""Search routes: by text (or by image id) and by an uploaded example image. Both take one
`SearchRequest`, as query parameters or form fields, and call `SearchEngine.search` with it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from search.schemas import SearchRequest
from web.deps import Engine, read_upload
from web.responses import SearchResponse, linked_response

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["search"])


def _require_query(params: SearchRequest) -> None:
    """`GET /api/search` needs `q` (or `image_id`): a missing one is a malformed request
    (422), unlike a blank one, which the engine explains (400)."""
    if params.query is None and params.image_id is None:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("query", "q"), "msg": "Field required", "input": None}]
        )


@router.get("/search", response_model=SearchResponse, summary="Search images by text")
def search_text(engine: Engine, params: Annotated[SearchRequest, Query()]) -> SearchResponse:
    _require_query(params)
    return linked_response(engine.search(params))


@router.post(
    "/search/image", response_model=SearchResponse, summary="Search images by an example image"
)
async def search_image(
    request: Request,
    engine: Engine,
    file: Annotated[UploadFile, File(description="The example image.")],
    params: Annotated[SearchRequest, Form()],
) -> SearchResponse:
    data = await read_upload(request, file, engine)
    response = await run_in_threadpool(
        engine.search, params, data, source=f"upload {file.filename!r}"
    )
    return linked_response(response)
