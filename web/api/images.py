"""Image routes: one image's catalog entry, its neighbours, its file and thumbnail (by catalog
id only, never by a path from the request), and questions about it."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from search.schemas import AnswerResponse, AskRequest, ResultCount, SearchRequest
from web.deps import Engine
from web.responses import ImageDetail, SearchResponse, linked_detail, linked_response

__all__ = ["router"]

router = APIRouter(prefix="/api/images", tags=["search"])

K = Annotated[ResultCount | None, Query(description=SearchRequest.model_fields["k"].description)]


@router.get("/{image_id}", response_model=ImageDetail, summary="One image's catalog entry")
def image_detail(engine: Engine, image_id: int) -> ImageDetail:
    return linked_detail(engine.image_detail(image_id))


@router.get("/{image_id}/similar", response_model=SearchResponse, summary="Images like this one")
def similar(engine: Engine, image_id: int, k: K = None) -> SearchResponse:
    return linked_response(engine.search(SearchRequest(image_id=image_id, k=k)))


@router.get("/{image_id}/file", response_class=FileResponse, summary="The image file itself")
def image_file(engine: Engine, image_id: int) -> Response:
    content, name = engine.image_file(image_id)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"X-Content-Type-Options": "nosniff"}
    if isinstance(content, bytes):  # a member of a WebDataset tar shard
        return Response(content, media_type=media_type, headers=headers)
    return FileResponse(content, media_type=media_type, headers=headers)


@router.get("/{image_id}/thumbnail", response_class=FileResponse, summary="A JPEG thumbnail")
def thumbnail(engine: Engine, image_id: int) -> FileResponse:
    return FileResponse(
        engine.thumbnail(image_id),
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.post(
    "/{image_id}/ask", response_model=AnswerResponse, summary="Ask a question about an image"
)
def ask(engine: Engine, image_id: int, body: AskRequest) -> AnswerResponse:
    return engine.ask(image_id, body.question)
