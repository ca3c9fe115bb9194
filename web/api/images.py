"""Image routes: one image's catalog entry, its neighbours, its file and thumbnail (by catalog
id only, never by a path from the request, and only while the file still resolves inside the
folder it was indexed from: `web.served_files`), and questions about it. File and thumbnail
carry a strong ETag and answer a matching `If-None-Match` with 304 (`web.http_cache`)."""

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
from web.http_cache import (
    REVALIDATE_AFTER_S,
    VERSIONED_MAX_AGE_S,
    cache_control,
    etag_of,
    if_none_match,
    not_modified,
)
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


_NOT_MODIFIED = {
    "description": "Not Modified: the `If-None-Match` header named the current ETag; no body. "
    "The ETag and Cache-Control headers are repeated."
}
_CACHE_HEADERS = {
    "ETag": {
        "description": "Strong ETag of the content (from the catalog's content hash); changes "
        "when the file changes and is re-indexed.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": f"`max-age={REVALIDATE_AFTER_S}, must-revalidate`; with `v` equal to the "
        f"current ETag value, `max-age={VERSIONED_MAX_AGE_S}, immutable`. `private` when a read "
        "token is set, else `public`.",
        "schema": {"type": "string"},
    },
}
Version = Annotated[
    str | None,
    Query(
        description="The ETag's value (without quotes) this URL was made for: the response may "
        "then be cached as immutable. Any other value is served the current content."
    ),
]


def _cache_headers(engine: SearchEngine, tag: str, version: str | None) -> dict[str, str]:
    private = engine.settings.read_token is not None
    return {
        "ETag": etag_of(tag),
        "Cache-Control": cache_control(tag, version, private=private),
        "X-Content-Type-Options": "nosniff",
    }


@router.get(
    "/{image_id}/file",
    response_class=FileResponse,
    responses={
        200: {**_IMAGE_BYTES, "headers": _CACHE_HEADERS},
        304: {**_NOT_MODIFIED, "headers": _CACHE_HEADERS},
    },
    summary="The image file itself",
)
def image_file(request: Request, engine: Engine, image_id: ImageId, v: Version = None) -> Response:
    """Streamed from disk (a tar member is sent from memory); 304 when the browser's copy is
    current, decided by one `stat`, without reading the file."""
    _check_inside_root(request, engine, image_id)
    original = engine.image_file(image_id)
    headers = _cache_headers(engine, original.tag(), v)
    if if_none_match(request, headers["ETag"]):
        return not_modified(headers)
    content = original.content()
    media_type = mimetypes.guess_type(original.name)[0] or "application/octet-stream"
    if isinstance(content, bytes):  # a member of a WebDataset tar shard
        return Response(content, media_type=media_type, headers=headers)
    return FileResponse(content, media_type=media_type, headers=headers)


@router.get(
    "/{image_id}/thumbnail",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            "headers": _CACHE_HEADERS,
        },
        304: {**_NOT_MODIFIED, "headers": _CACHE_HEADERS},
    },
    summary="A JPEG thumbnail",
)
def thumbnail(request: Request, engine: Engine, image_id: ImageId, v: Version = None) -> Response:
    """At most 256 px, made from the file on first request and cached on disk; 304 when the
    browser's copy is current, decided from the catalog row alone (nothing is made or read)."""
    _check_inside_root(request, engine, image_id)
    cached = engine.thumbnail(image_id)
    headers = _cache_headers(engine, cached.tag, v)
    if if_none_match(request, headers["ETag"]):
        return not_modified(headers)
    return FileResponse(cached.path(), media_type="image/jpeg", headers=headers)


@router.post(
    "/{image_id}/ask", response_model=AnswerResponse, summary="Ask a question about an image"
)
def ask(engine: Engine, image_id: ImageId, body: AskRequest) -> AnswerResponse:
    return engine.ask(image_id, body.question)
