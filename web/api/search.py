"""The JSON API: read routes over the engine. Every route calls one `SearchEngine` method that
the matching HTML page calls too, and errors leave through the app's single error handler."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from search.query.duplicates import DEFAULT_DUPLICATE_THRESHOLD
from search.query.engine import MAX_K, MAX_RERANK_K, SearchEngine
from search.errors import InputError
from search.schemas import (
    AnswerResponse,
    AskRequest,
    DuplicatesResponse,
    ImageDetail,
    SearchResponse,
    StatsResponse,
)

__all__ = ["get_engine", "read_upload", "router"]

router = APIRouter(prefix="/api", tags=["search"])


def get_engine(request: Request) -> SearchEngine:
    return request.app.state.engine  # type: ignore[no-any-return]


Engine = Annotated[SearchEngine, Depends(get_engine)]
K = Annotated[int | None, Query(ge=1, le=MAX_K, description="Number of results.")]
Dedupe = Annotated[bool, Query(description="Collapse near-duplicate images into their best hit.")]


async def read_upload(request: Request, file: UploadFile, engine: SearchEngine) -> bytes:
    """The uploaded bytes, refusing anything over the size limit without reading it all."""
    limit = engine.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise InputError(f"Upload is {declared} bytes; the limit is {limit} (PIXSEEK_MAX_UPLOAD_BYTES).")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"Upload {file.filename!r} is over the limit of {limit} bytes (PIXSEEK_MAX_UPLOAD_BYTES).")
    return data


@router.get("/search", response_model=SearchResponse, summary="Search images by text")
def search_text(
    engine: Engine,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="Text query.")],
    k: K = None,
    collection: Annotated[str | None, Query(description="Only this collection.")] = None,
    dedupe: Dedupe = False,
    mode: Annotated[Literal["vector", "text", "hybrid"], Query(
        description="vector: CLIP similarity; text: full text over captions, tags and file names; hybrid: "
        "reciprocal-rank fusion (k=60) of both.")] = "vector",
    rerank: Annotated[bool, Query(description="Reorder the top rerank_k candidates by ITM match probability.")] = False,
    rerank_k: Annotated[int | None, Query(ge=1, le=MAX_RERANK_K, description="Candidates to rerank.")] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Only images with this tag.")] = None,
) -> SearchResponse:
    return engine.search_text(q, k=k, collection=collection, dedupe=dedupe, mode=mode, rerank=rerank,
                              rerank_k=rerank_k, tag=tag)


@router.post("/search/image", response_model=SearchResponse, summary="Search images by an example image")
async def search_image(
    request: Request,
    engine: Engine,
    file: Annotated[UploadFile, File(description="The example image.")],
    k: Annotated[int | None, Form(ge=1, le=MAX_K)] = None,
    collection: Annotated[str | None, Form()] = None,
    dedupe: Annotated[bool, Form()] = False,
) -> SearchResponse:
    data = await read_upload(request, file, engine)
    return await run_in_threadpool(
        engine.search_image_bytes, data, k=k, collection=collection, source=f"upload {file.filename!r}",
        dedupe=dedupe,
    )


@router.get("/images/{image_id}", response_model=ImageDetail, summary="One image's catalog entry")
def image_detail(engine: Engine, image_id: int) -> ImageDetail:
    return engine.image_detail(image_id)


@router.get("/images/{image_id}/similar", response_model=SearchResponse, summary="Images like this one")
def similar(engine: Engine, image_id: int, k: K = None) -> SearchResponse:
    return engine.similar(image_id, k=k)


@router.get("/images/{image_id}/file", response_class=FileResponse, summary="The image file itself")
def image_file(engine: Engine, image_id: int) -> Response:
    content, name = engine.image_file(image_id)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"X-Content-Type-Options": "nosniff"}
    if isinstance(content, bytes):  # a member of a WebDataset tar shard
        return Response(content, media_type=media_type, headers=headers)
    return FileResponse(content, media_type=media_type, headers=headers)


@router.get("/images/{image_id}/thumbnail", response_class=FileResponse, summary="A JPEG thumbnail")
def thumbnail(engine: Engine, image_id: int) -> FileResponse:
    return FileResponse(engine.thumbnail(image_id), media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/stats", response_model=StatsResponse, summary="Counts for the data directory")
def stats(engine: Engine) -> StatsResponse:
    return engine.stats()


@router.get("/duplicates", response_model=DuplicatesResponse, summary="Groups of near-identical images")
def duplicates(
    engine: Engine,
    threshold: Annotated[float, Query(gt=0, le=1, description="Cosine similarity threshold.")] =
    DEFAULT_DUPLICATE_THRESHOLD,
    collection: Annotated[str | None, Query(description="Only this collection.")] = None,
) -> DuplicatesResponse:
    return engine.duplicates(threshold=threshold, collection=collection)


@router.post("/images/{image_id}/ask", response_model=AnswerResponse, summary="Ask a question about an image")
def ask(engine: Engine, image_id: int, body: AskRequest) -> AnswerResponse:
    return engine.ask(image_id, body.question)
