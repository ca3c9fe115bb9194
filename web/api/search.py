"""Search routes: by text (or by image id), by JSON (query arithmetic as terms), by an uploaded
example image, and the facet counts of a filter set. Each takes the shared search options (as
query parameters, form fields or a JSON body) and calls the one `SearchEngine` method."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from search import schemas
from search.query.terms import QueryImage
from search.schemas import FacetsResponse, SearchOptions, SearchRequest
from web.deps import Engine, read_upload
from web.metrics import observe_search
from web.responses import SearchResponse, linked_response

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["search"])


def _require_query(params: SearchOptions) -> None:
    """`GET /api/search` needs `q` (or `image_id`): a missing one is a malformed request
    (422), unlike a blank one, which the engine explains (400)."""
    if params.query is None and params.image_id is None:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("query", "q"), "msg": "Field required", "input": None}]
        )


def _answer(request: Request, response: schemas.SearchResponse) -> SearchResponse:
    """The response with its URLs, its stage timings counted in /metrics."""
    observe_search(request, response.timings)
    return linked_response(response)


@router.get("/search", response_model=SearchResponse, summary="Search images by text")
def search_text(
    request: Request, engine: Engine, params: Annotated[SearchOptions, Query()]
) -> SearchResponse:
    _require_query(params)
    return _answer(request, engine.search(SearchRequest.from_options(params)))


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search with a JSON body (query arithmetic as terms)",
    description="Every option of `GET /api/search` as a JSON object, plus `terms`: the query "
    'as a weighted sum of texts and catalog images, e.g. `{"terms": [{"text": "beach"}, '
    '{"image_id": 42, "weight": -1}], "k": 10}`. Give one of `terms`, `q` or `image_id`.',
)
def search_json(request: Request, engine: Engine, body: SearchRequest) -> SearchResponse:
    return _answer(request, engine.search(body))


@router.get(
    "/facets",
    response_model=FacetsResponse,
    summary="Counts per collection, year, camera, tag and file type of a filter set",
)
def facets(engine: Engine, params: Annotated[SearchOptions, Query()]) -> FacetsResponse:
    return engine.facets(params)


_IMAGE_SEARCH_DESCRIPTION = """Upload an example image (multipart form field `file`) and get
the catalog images most like it. Several `file` parts are several images: their normalised
vectors are summed (query arithmetic), and a `q` adds its terms (`q=- snow` takes snow away).

The search options (`k`, `collection`, filters, `min_score`, `cutoff`, `sort`, `limit`,
`cursor`, ...) may be given either as query parameters (`POST /api/search/image?k=5`) or as
form fields beside the file; both are read. An option given both ways must have the same value
in both, or the request is refused (422). `mode` and `rerank` (plain text searches only) are
refused here (400). The next page: post the same files and options with `cursor`."""


def _merge_options(in_query: SearchOptions, in_form: SearchOptions) -> SearchRequest:
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
    file: Annotated[list[UploadFile], File(description="The example image (repeatable).")],
    form_params: Annotated[SearchOptions, Form()],
    query_params: Annotated[SearchOptions, Query()],
) -> SearchResponse:
    params = _merge_options(query_params, form_params)
    images = [
        QueryImage(await read_upload(request, part, engine), f"upload {part.filename!r}")
        for part in file
    ]
    response = await run_in_threadpool(engine.search, params, images=images)
    return _answer(request, response)
