"""Two guards every request passes before any route: a cap on the request body, and a refusal
of state-changing requests that a browser sends on behalf of another site.

Body cap: FastAPI parses a multipart form (spooling the file to disk) before the route runs,
so a limit checked in the route comes after a 30 MB (or 30 GB) upload was read. Here a body
whose Content-Length is over `PIXSEEK_MAX_UPLOAD_BYTES` (plus a margin for the multipart
envelope) is answered 413 at once, unread; a chunked body is counted as it arrives and
refused with 413 as soon as it passes the cap.

Cross-site requests: a page on another site can make the visitor's browser POST to
`http://127.0.0.1:8000/api/jobs/1/cancel` (a form needs no CORS), and the loopback rule of
`web.auth` would let it in. Browsers say where a request comes from (`Sec-Fetch-Site`, else
`Origin`); a write whose origin is another site, and not one of `PIXSEEK_CORS_ORIGINS`, is
refused with 403. Requests without those headers (curl, scripts, the CLI) are not from a
browser and pass: they cannot ride on someone's session. This is the check of Go's
`http.CrossOriginProtection`."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.settings import Settings
from web.errors import error_response

__all__ = ["MULTIPART_MARGIN", "BodyLimitMiddleware", "CrossSiteGuardMiddleware", "body_limit"]

MULTIPART_MARGIN = 64 * 1024
"""Room for the multipart envelope (boundaries, part headers, small form fields) around a file
of the largest accepted size."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def body_limit(settings: Settings) -> int:
    """The largest request body accepted, in bytes."""
    return settings.max_upload_bytes + MULTIPART_MARGIN


def _too_large_message(settings: Settings, size: str) -> str:
    return (
        f"The request body is {size}; the limit is {settings.max_upload_bytes} bytes "
        "(PIXSEEK_MAX_UPLOAD_BYTES). Send a smaller image."
    )


class _BodyTooLarge(HTTPException):
    """Raised from `receive` while FastAPI reads the body; FastAPI passes HTTP exceptions on,
    so the app's handler answers 413 in the one error shape."""


class BodyLimitMiddleware:
    """Refuse request bodies over `body_limit(settings)` with 413 (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = body_limit(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            message = _too_large_message(self.settings, f"{declared} bytes")
            response = error_response(Request(scope), 413, "too_large", message)
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    detail = _too_large_message(self.settings, f"over {self.limit} bytes")
                    raise _BodyTooLarge(status_code=413, detail=detail)
            return message

        await self.app(scope, counting_receive, send)


def _origin_of(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


class CrossSiteGuardMiddleware:
    """Refuse (403) a state-changing request a browser sent from another site."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed = {origin.rstrip("/").lower() for origin in settings.cors_origins}

    def _cross_site(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin and origin.rstrip("/").lower() in self.allowed:
            return False
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site not in ("same-origin", "none")
        if origin is None:
            return False  # not a browser request (or a browser too old to say): nothing to ride
        parsed = _origin_of(origin)
        return parsed is None or parsed[1] != headers.get("host", "").lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self._cross_site(headers):
            origin = headers.get("origin") or "another site"
            message = (
                f"Refused a cross-site {scope['method']} from {origin}: pages of other sites "
                "may not change this server. To call the API from a web "
                "app on another origin, list that origin in PIXSEEK_CORS_ORIGINS."
            )
            response = error_response(Request(scope), 403, "cross_site", message)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
