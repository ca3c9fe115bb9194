"""HTML pages. Each page calls the same `SearchEngine` method as its JSON twin, puts the
result in one context dict and renders a template; pages run no queries of their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from web.api.search import get_engine, read_upload
from search.query.engine import MAX_K, SEARCH_MODES, SearchEngine
from search.errors import PixseekError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Engine = Annotated[SearchEngine, Depends(get_engine)]


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def _page_context(engine: SearchEngine, **values: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "query": "",
        "k": engine.settings.default_k,
        "collection": "",
        "collections": [c.name for c in engine.catalog.list_collections()],
        "response": None,
        "error": None,
        "query_image": None,
        "mode": "vector",
        "modes": SEARCH_MODES,
        "rerank": False,
        "tag": "",
    }
    context.update(values)
    return context


@router.get("/", response_class=HTMLResponse)
def search_page(
    request: Request,
    engine: Engine,
    q: Annotated[str, Query(max_length=1000)] = "",
    k: Annotated[int | None, Query(ge=1, le=MAX_K)] = None,
    collection: str = "",
    mode: Annotated[str, Query(max_length=10)] = "vector",
    rerank: bool = False,
    tag: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    context = _page_context(engine, query=q, collection=collection, k=k or engine.settings.default_k,
                            mode=mode, rerank=rerank, tag=tag)
    status = 200
    if "q" in request.query_params:  # a submitted blank query gets the engine's message
        try:
            context["response"] = engine.search_text(q, k=k, collection=collection or None, mode=mode,
                                                     rerank=rerank, tag=tag or None)
        except PixseekError as exc:
            context["error"], status = str(exc), exc.http_status
    return _render(request, "index.html", context, status)


@router.post("/search/image", response_class=HTMLResponse)
async def search_image_page(
    request: Request,
    engine: Engine,
    file: Annotated[UploadFile, File()],
    k: Annotated[int | None, Form(ge=1, le=MAX_K)] = None,
    collection: Annotated[str, Form()] = "",
) -> Response:
    context = _page_context(engine, collection=collection, k=k or engine.settings.default_k,
                            query_image=file.filename or "uploaded image")
    status = 200
    try:
        data = await read_upload(request, file, engine)
        context["response"] = await run_in_threadpool(
            engine.search_image_bytes, data, k=k, collection=collection or None,
            source=f"upload {file.filename!r}",
        )
    except PixseekError as exc:
        context["error"], status = str(exc), exc.http_status
    return _render(request, "index.html", context, status)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, engine: Engine, image_id: int,
               k: Annotated[int | None, Query(ge=1, le=MAX_K)] = None) -> Response:
    detail = engine.image_detail(image_id)
    similar = engine.similar(image_id, k=k or 12) if detail.status == "embedded" else None
    return _render(request, "image.html", _page_context(engine, image=detail, response=similar))


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, engine: Engine) -> Response:
    from search.job_schemas import JobResponse

    jobs = [JobResponse.from_info(job) for job in engine.catalog.list_jobs(50)]
    return _render(request, "jobs.html", _page_context(engine, jobs=jobs,
                                                       token_required=bool(engine.settings.admin_token)))
