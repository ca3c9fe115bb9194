"""HTML pages. Each page builds the same `SearchRequest` and calls the same `SearchEngine`
method as its JSON twin, puts the result in one context dict and renders a template; pages run
no queries of their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from search.errors import ModelError, PixseekError
from search.job_reader import JobReader
from search.models.specs import parse_generative_spec
from search.query.engine import SearchEngine
from search.query.terms import QueryImage
from search.schemas import (
    MAX_QUESTION_CHARS,
    SEARCH_MODES,
    ResultCount,
    SearchOptions,
    SearchRequest,
)
from search.settings import Settings
from web.deps import Engine, ImageId, read_upload
from web.errors import validation_message
from web.responses import SearchResponse, linked_detail, linked_response
from web.search_page_state import PageState, read_options

__all__ = ["captioner_configured", "router"]

router = APIRouter(include_in_schema=False)

SIMILAR_ON_DETAIL_PAGE = 12  # neighbours shown under an image when the URL gives no k
SORT_LABELS = {"relevance": "best match", "date_desc": "newest first", "date_asc": "oldest first"}


def _render(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, context, status_code=status
    )


def _page_context(
    engine: SearchEngine, params: SearchOptions | None = None, **values: Any
) -> dict[str, Any]:
    """What every page template gets: the search form's values (from `params`, else
    empty) plus `values`."""
    params = params or SearchOptions()
    context: dict[str, Any] = {
        "query": params.query or "",
        "k": params.k or "",
        "collection": params.collection or "",
        "collections": [c.name for c in engine.catalog.list_collections()],
        "response": None,
        "error": None,
        "query_image": None,
        "mode": params.mode,
        "modes": SEARCH_MODES,
        "rerank": params.rerank,
        "options": params,
        "state": PageState(params, False, engine.settings.default_k),
        "sorts": SORT_LABELS,
        "facets": None,
        "image_search": False,
    }
    context.update(values)
    return context


def _search_context(
    engine: SearchEngine, state: PageState, response: SearchResponse | None
) -> dict[str, Any]:
    """The search page's data: the form, the chips and facets of the filter set, the results
    and the links to their next page."""
    context = _page_context(engine, state.options, state=state, response=response)
    if state.options.cursor is None:  # a later page (infinite scroll) needs no facets
        try:
            context["facets"] = state.facet_links(engine.facets(state.options))
        except PixseekError:
            context["facets"] = None  # an unknown collection: the search says so
    if response is not None and response.next_cursor:
        context["next_page"] = state.next_page_url(response.next_cursor)
        context["next_api"] = state.api_url(response.next_cursor)
        context["next_cursor"] = response.next_cursor
    return context


def _read_state(engine: SearchEngine, pairs: Any) -> tuple[PageState | None, str | None]:
    """The page state of a query string or form, or the message naming the bad option."""
    values, scores = read_options(pairs)
    try:
        options = SearchOptions.model_validate(values)
    except ValidationError as exc:
        return None, validation_message(exc)
    return PageState(options, scores, engine.settings.default_k), None


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, engine: Engine) -> Response:
    """Search by text (with query arithmetic) or by image id, with filters as chips, the
    page's default cutoff, and the next page as a plain link (`search.js` scrolls it in)."""
    state, problem = _read_state(engine, request.query_params.multi_items())
    if state is None:
        return _render(request, "index.html", _page_context(engine, error=problem), 422)
    status, response, error = 200, None, None
    options = state.options
    if options.query is not None or options.image_id is not None:
        try:
            effective = SearchRequest.from_options(state.effective(options.cursor))
            response = linked_response(engine.search(effective))
        except PixseekError as exc:
            error, status = str(exc), exc.http_status
    context = _search_context(engine, state, response)
    context["error"] = error
    return _render(request, "index.html", context, status)


@router.post("/search/image", response_class=HTMLResponse)
async def search_image_page(
    request: Request, engine: Engine, file: Annotated[list[UploadFile], File()]
) -> Response:
    """Search by example images (repeated `file` parts) plus an optional `q`, with the same
    options as the search page; `search.js` posts here on a drop, a paste or a file pick and
    posts again with `cursor` for the next page."""
    form = await request.form()  # parsed once: FastAPI read it for `file` and closes it
    state, problem = _read_state(engine, form.multi_items())
    if state is None:
        return _render(request, "index.html", _page_context(engine, error=problem), 422)
    status, response, error = 200, None, None
    try:
        images = [
            QueryImage(await read_upload(request, f, engine), f"upload {f.filename!r}")
            for f in file
        ]
        wanted = SearchRequest.from_options(state.effective(state.options.cursor))
        found = await run_in_threadpool(engine.search, wanted, images=images)
        response = linked_response(found)
    except PixseekError as exc:
        error, status = str(exc), exc.http_status
    context = _search_context(engine, state, response)
    names = ", ".join(f.filename or "uploaded image" for f in file)
    context.update(error=error, query_image=names, image_search=True)
    return _render(request, "index.html", context, status)


def captioner_configured(settings: Settings) -> bool:
    """Whether `settings.captioner` names a captioner at all (a preset without one, such as
    `multilingual`, does not). Parsing reads no weights: a named model whose weights are
    missing still counts, so the box is shown and its answer says what to download."""
    try:
        parse_generative_spec(settings.captioner, "captioner")
    except ModelError:
        return False
    return True


def _image_context(engine: SearchEngine, image_id: int, k: int | None) -> dict[str, Any]:
    """The detail page's data: the image, its neighbours, and an empty question box when a
    captioner is configured (not for a file that failed to decode: no model can read it)."""
    detail = engine.image_detail(image_id)
    similar = None
    if detail.status == "embedded":
        wanted = SearchRequest(image_id=image_id, k=k or SIMILAR_ON_DETAIL_PAGE)
        similar = linked_response(engine.search(wanted))
    state = PageState(
        SearchOptions.model_validate({"q": f"id:{image_id}"}), False, engine.settings.default_k
    )
    context = _page_context(engine, image=linked_detail(detail), response=similar, state=state)
    context.update(
        query="",
        can_ask=detail.status != "failed" and captioner_configured(engine.settings),
        max_question=MAX_QUESTION_CHARS,
        question="",
        answer=None,
        ask_error=None,
    )
    return context


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(
    request: Request,
    engine: Engine,
    image_id: ImageId,
    k: Annotated[ResultCount | None, Query()] = None,
) -> Response:
    """One image: its file, catalog entry, similar images and (with a captioner) a question
    box that `ask.js` answers in place."""
    return _render(request, "image.html", _image_context(engine, image_id, k))


@router.post("/images/{image_id}/ask", response_class=HTMLResponse)
def ask_page(
    request: Request,
    engine: Engine,
    image_id: ImageId,
    question: Annotated[str, Form()] = "",
) -> Response:
    """The question box without JavaScript: the detail page again, with the answer or the
    message saying why there is none (a missing model names what to download), at the status
    `POST /api/images/{id}/ask` would answer."""
    context = _image_context(engine, image_id, None)
    context["question"], status = question, 200
    try:
        context["answer"] = engine.ask(image_id, question)
    except PixseekError as exc:
        context["ask_error"], status = str(exc), exc.http_status
    return _render(request, "image.html", context, status)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, engine: Engine) -> Response:
    """The jobs table as `GET /api/jobs` gives it, and the form to start one; jobs.js keeps
    the table live from `GET /api/jobs/events` (same `jobs_limit`). The collection field
    suggests the existing `collections`; the token field shows only when the server has an
    admin token."""
    jobs_limit = 50
    context = _page_context(
        engine,
        jobs=JobReader(engine.catalog).recent(jobs_limit),
        jobs_limit=jobs_limit,
        token_required=bool(engine.settings.admin_token),
    )
    return _render(request, "jobs.html", context)
