"""What the web layer sends: the engine's answers plus the URLs of each image.

The engine knows catalog ids, not routes; the URLs of the image routes (`web.api.images`) are
written here, once, and added to every search result and image detail the API, the pages and
the CLI's `--json` output show. The classes keep the engine's class names so the OpenAPI
schema names stay what API clients already use.
"""

from __future__ import annotations

from search import schemas

__all__ = [
    "ImageDetail",
    "SearchResponse",
    "SearchResult",
    "image_file_url",
    "linked_detail",
    "linked_response",
    "similar_url",
    "thumbnail_url",
]


def image_file_url(image_id: int) -> str:
    """The image file itself (`GET /api/images/{id}/file`)."""
    return f"/api/images/{image_id}/file"


def thumbnail_url(image_id: int) -> str:
    """A JPEG thumbnail (`GET /api/images/{id}/thumbnail`)."""
    return f"/api/images/{image_id}/thumbnail"


def similar_url(image_id: int) -> str:
    """Images like this one (`GET /api/images/{id}/similar`)."""
    return f"/api/images/{image_id}/similar"


class SearchResult(schemas.SearchResult):
    """A hit with the URLs of its file and thumbnail."""

    file_url: str
    thumbnail_url: str


class SearchResponse(schemas.SearchResponse):
    """A search answer whose results carry their URLs."""

    results: list[SearchResult]  # type: ignore[assignment]  # the linked result is a result


class ImageDetail(schemas.ImageDetail):
    """An image's catalog entry with the URLs of its file, thumbnail and neighbours."""

    file_url: str
    thumbnail_url: str
    similar_url: str


def _linked_result(result: schemas.SearchResult) -> SearchResult:
    return SearchResult(
        **dict(result), file_url=image_file_url(result.id), thumbnail_url=thumbnail_url(result.id)
    )


def linked_response(response: schemas.SearchResponse) -> SearchResponse:
    """`response` with the file and thumbnail URL of every result."""
    fields = {name: getattr(response, name) for name in schemas.SearchResponse.model_fields}
    fields["results"] = [_linked_result(result) for result in response.results]
    return SearchResponse(**fields)


def linked_detail(detail: schemas.ImageDetail) -> ImageDetail:
    """`detail` with the URLs of the file, its thumbnail and its similar images."""
    return ImageDetail(
        **dict(detail),
        file_url=image_file_url(detail.id),
        thumbnail_url=thumbnail_url(detail.id),
        similar_url=similar_url(detail.id),
    )
