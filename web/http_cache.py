"""HTTP caching of image bytes: strong ETags, `If-None-Match` answered with 304, and the
`Cache-Control` policy of the file and thumbnail routes, written once here.

Starlette's `FileResponse` sends an ETag of the file's mtime and size but never answers a
conditional request, and it would have to open (or first make) the file to compute it. The
routes here know an image's identity from the catalog (`search.images.thumbnails`,
`search.images.originals`) and answer a browser that holds the current bytes with an empty 304
before any file is read or thumbnail made.

Policy. The image URLs are not versioned (`/api/images/{id}/thumbnail` shows new content after
a re-index), so `immutable` would pin stale bytes for a year: they get a short `max-age` with
`must-revalidate`, after which a revalidation costs one catalog read and a 304. A request that
names the current version (`?v=TAG`, the ETag's value) may be cached for a year, `immutable`.
With a read token set (`PIXSEEK_READ_TOKEN`) responses are `private`: a shared cache must not
hand one reader's authorised bytes to the next.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

__all__ = [
    "REVALIDATE_AFTER_S",
    "VERSIONED_MAX_AGE_S",
    "cache_control",
    "etag_of",
    "if_none_match",
    "not_modified",
]

REVALIDATE_AFTER_S = 600
VERSIONED_MAX_AGE_S = 365 * 24 * 3600


def etag_of(tag: str) -> str:
    """The strong ETag header value of a content tag."""
    return f'"{tag}"'


def if_none_match(request: Request, etag: str) -> bool:
    """Whether the request's `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks
    for this header: `W/"x"` matches `"x"`) or is `*`."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates = (part.strip().removeprefix("W/") for part in header.split(","))
    return any(candidate in ("*", etag) for candidate in candidates)


def cache_control(tag: str, version: str | None, *, private: bool) -> str:
    """The `Cache-Control` of an image response whose URL named `version` (`?v=`); see the
    module docstring for the policy."""
    scope = "private" if private else "public"
    if version == tag:
        return f"{scope}, max-age={VERSIONED_MAX_AGE_S}, immutable"
    return f"{scope}, max-age={REVALIDATE_AFTER_S}, must-revalidate"


def not_modified(headers: dict[str, str]) -> Response:
    """The empty 304 answer; it repeats the ETag and Cache-Control a 200 would send."""
    return Response(status_code=304, headers=headers)
