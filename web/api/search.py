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


_IMAGE_SEARCH_DESCRIPTION = """Upload an example image (multipart form field `file`) and get
the catalog images most like it.

The search options (`k`, `collection`, `model`, `dedupe`, `tag`) may be given either as query
parameters (`POST /api/search/image?k=5`) or as form fields beside the file; both are read. An
option given both ways must have the same value in both, or the request is refused (422).
A `q` or an `image_id` (other searches) and a `mode` or `rerank` (text searches only) are
refused here (400)."""


def _merge_options(in_query: SearchRequest, in_form: SearchRequest) -> SearchRequest:
    """One `SearchRequest` from the options given as query parameters and as form fields.

    Clients put options where their HTTP library makes it easy (`?k=5` on the URL, or `k` in
    the form beside the file); reading only one place would silently ignore the other and
    answer with defaults. An option given in both places with two values is ambiguous: a 422
    naming it, rather than a guess."""
    both = in_query.model_fields_set & in_form.model_fields_set
    clashes = [name for name in sorted(both) if getattr(in_query, name) != getattr(in_form, name)]
    if clashes:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", name),
                    "msg": f"given as a query parameter ({getattr(in_query, name)!r}) and as a "
                    f"form field ({getattr(in_form, name)!r}); give it once",
                    "input": getattr(in_form, name),
                }
                for name in clashes
            ]
        )
    values = {name: getattr(in_query, name) for name in in_query.model_fields_set}
    values |= {name: getattr(in_form, name) for name in in_form.model_fields_set}
    return SearchRequest.model_validate(values)


@router.post(
    "/search/image",
    response_model=SearchResponse,
    summary="Search images by an example image",
    description=_IMAGE_SEARCH_DESCRIPTION,
)
async def search_image(
    request: Request,
    engine: Engine,
    file: Annotated[UploadFile, File(description="The example image.")],
    form_params: Annotated[SearchRequest, Form()],
    query_params: Annotated[SearchRequest, Query()],
) -> SearchResponse:
    params = _merge_options(query_params, form_params)
    data = await read_upload(request, file, engine)
    response = await run_in_threadpool(
        engine.search, params, data, source=f"upload {file.filename!r}"
    )
    return linked_response(response)
