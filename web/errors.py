"""Every error leaves the app in one shape: JSON requests get
`{"error": {"status", "code", "message"}}` (pinned by a test), pages get `error.html`.

Errors pixseek raises on purpose, HTTP errors and malformed requests have handlers here. Any
other exception is a bug: `CatchAllMiddleware` logs it with the request's id and answers 500 in
the same shape plus that `request_id`, so the user sees no traceback and can quote the id."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.errors import PixseekError
from web.request_id import current_request_id

__all__ = ["CatchAllMiddleware", "error_body", "install_error_handlers"]

logger = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 401: "unauthorized", 405: "method_not_allowed"}


def error_body(status: int, code: str, message: str, **extra: str) -> dict[str, Any]:
    """The one JSON error shape; `extra` adds fields (the catch-all's `request_id`)."""
    return {"error": {"status": status, "code": code, "message": message, **extra}}


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", ""
    )


def _respond(request: Request, status: int, code: str, message: str, **extra: str) -> Response:
    if _wants_html(request):
        templates = request.app.state.templates
        context = {"status": status, "code": code, "message": message, **extra}
        return templates.TemplateResponse(  # type: ignore[no-any-return]
            request, "error.html", context, status_code=status
        )
    return JSONResponse(error_body(status, code, message, **extra), status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers for errors with a known meaning (the catch-all is a middleware)."""

    @app.exception_handler(PixseekError)
    async def _pixseek(request: Request, exc: PixseekError) -> Response:
        return _respond(request, exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _respond(request, 422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _respond(request, exc.status_code, code, str(exc.detail))


class CatchAllMiddleware:
    """Turns an unexpected exception into a logged 500 in the one error shape.

    A middleware rather than an `Exception` handler: Starlette runs those outside every
    middleware (so the response would miss its `X-Request-ID`) and re-raises afterwards (so the
    server logs the error a second time, without the id). Once a response has started it can
    no longer be replaced: the error is logged and re-raised, and the server drops the
    connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = current_request_id() or uuid.uuid4().hex
            logger.exception(
                "Unexpected error in %s %s [request_id=%s]",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
            if started:
                raise
            message = (
                "Something went wrong on the server. It is logged with request id "
                f"{request_id}; quote it when you report the problem."
            )
            response = _respond(
                Request(scope, receive), 500, "internal_error", message, request_id=request_id
            )
            await response(scope, receive, send)
