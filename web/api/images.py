"""Image routes: one image's catalog entry, its neighbours, its file and thumbnail (by catalog
id only, never by a path from the request, and only while the file still resolves inside the
folder it was indexed from: `web.served_files`), and questions about it."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from search.images.paths import decode_path
from search.images.source import is_archive_member
from search.query.engine import SearchEngine
from search.schemas import AnswerResponse, AskRequest, ResultCount, SearchRequest
from web.deps import Engine, ImageId
from web.metrics import observe_search
from web.responses import ImageDetail, SearchResponse, linked_detail, linked_response
from web.served_files import CollectionRoots

__all__ = ["router"]

router = APIRouter(prefix="/api/images", tags=["search"])

K = Annotated[ResultCount | None, Query(description=SearchRequest.model_fields["k"].description)]


_IMAGE_BYTES = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}


def _check_inside_root(request: Request, engine: SearchEngine, image_id: int) -> None:
    """Refuse (403) an image whose file now resolves outside its collection's indexed folder."""
    record = engine.catalog.get_image(image_id)
    if is_archive_member(record.path):
        return  # read from inside its tar shard, not through the file system's links
    roots: CollectionRoots = request.app.state.collection_roots
    collection = engine.catalog.collection_by_id(record.collection_id).name
    roots.check(decode_path(record.path), collection, image_id)


@router.get("/{image_id}", response_model=ImageDetail, summary="One image's catalog entry")
def image_detail(engine: Engine, image_id: ImageId) -> ImageDetail:
    return linked_detail(engine.image_detail(image_id))


@router.get("/{image_id}/similar", response_model=SearchResponse, summary="Images like this one")
def similar(request: Request, engine: Engine, image_id: ImageId, k: K = None) -> SearchResponse:
    response = engine.search(SearchRequest(image_id=image_id, k=k))
    observe_search(request, response.timings)
    return linked_response(response)


@router.get(
    "/{image_id}/file",
    response_class=FileResponse,
    responses={200: _IMAGE_BYTES},
    summary="The image file itself",
)
def image_file(request: Request, engine: Engine, image_id: ImageId) -> Response:
    _check_inside_root(request, engine, image_id)
    content, name = engine.image_file(image_id)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"X-Content-Type-Options": "nosniff"}
    if isinstance(content, bytes):  # a member of a WebDataset tar shard
        return Response(content, media_type=media_type, headers=headers)
    return FileResponse(content, media_type=media_type, headers=headers)


@router.get(
    "/{image_id}/thumbnail",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    },
    summary="A JPEG thumbnail",
)
def thumbnail(request: Request, engine: Engine, image_id: ImageId) -> FileResponse:
    _check_inside_root(request, engine, image_id)  # a missing thumbnail is made from the file
    return FileResponse(
        engine.thumbnail(image_id),
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.post(
    "/{image_id}/ask", response_model=AnswerResponse, summary="Ask a question about an image"
)
def ask(engine: Engine, image_id: ImageId, body: AskRequest) -> AnswerResponse:
    return engine.ask(image_id, body.question)
