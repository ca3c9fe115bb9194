"""HTML pages. Each page builds the same `SearchRequest` and calls the same `SearchEngine`
method as its JSON twin, puts the result in one context dict and renders a template; pages run
no queries of their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from search.errors import PixseekError
from search.job_schemas import JobResponse
from search.query.engine import SearchEngine
from search.schemas import SEARCH_MODES, ResultCount, SearchRequest
from web.deps import Engine, read_upload
from web.responses import linked_detail, linked_response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SIMILAR_ON_DETAIL_PAGE = 12  # neighbours shown under an image when the URL gives no k


def _render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, context, status_code=status
    )


def _page_context(
    engine: SearchEngine, params: SearchRequest | None = None, **values: Any
) -> dict[str, Any]:
    """What every page template gets: the search form's values (from `params`, else
    empty) plus `values`."""
    params = params or SearchRequest()
    context: dict[str, Any] = {
        "query": params.query or "",
        "k": params.k or engine.settings.default_k,
        "collection": params.collection or "",
        "collections": [c.name for c in engine.catalog.list_collections()],
        "response": None,
        "error": None,
        "query_image": None,
        "mode": params.mode,
        "modes": SEARCH_MODES,
        "rerank": params.rerank,
        "tag": params.tag or "",
    }
    context.update(values)
    return context


@router.get("/", response_class=HTMLResponse)
def search_page(
    request: Request, engine: Engine, params: Annotated[SearchRequest, Query()]
) -> Response:
    context = _page_context(engine, params)
    status = 200
    if params.query is not None or params.image_id is not None:
        try:  # a submitted blank query gets the engine's message, on the search page
            context["response"] = linked_response(engine.search(params))
        except PixseekError as exc:
            context["error"], status = str(exc), exc.http_status
    return _render(request, "index.html", context, status)


@router.post("/search/image", response_class=HTMLResponse)
async def search_image_page(
    request: Request,
    engine: Engine,
    file: Annotated[UploadFile, File()],
    params: Annotated[SearchRequest, Form()],
) -> Response:
    context = _page_context(engine, params, query_image=file.filename or "uploaded image")
    status = 200
    try:
        data = await read_upload(request, file, engine)
        response = await run_in_threadpool(
            engine.search, params, data, source=f"upload {file.filename!r}"
        )
        context["response"] = linked_response(response)
    except PixseekError as exc:
        context["error"], status = str(exc), exc.http_status
    return _render(request, "index.html", context, status)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(
    request: Request,
    engine: Engine,
    image_id: int,
    k: Annotated[ResultCount | None, Query()] = None,
) -> Response:
    detail = engine.image_detail(image_id)
    similar = None
    if detail.status == "embedded":
        wanted = SearchRequest(image_id=image_id, k=k or SIMILAR_ON_DETAIL_PAGE)
        similar = linked_response(engine.search(wanted))
    context = _page_context(engine, image=linked_detail(detail), response=similar)
    return _render(request, "image.html", context)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, engine: Engine) -> Response:
    jobs = [JobResponse.from_info(job) for job in engine.catalog.list_jobs(50)]
    token_required = bool(engine.settings.admin_token)
    return _render(
        request, "jobs.html", _page_context(engine, jobs=jobs, token_required=token_required)
    )
