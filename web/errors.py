"""Every error leaves the app in one shape: JSON requests get
`{"error": {"status", "code", "message", "request_id"}}` (`ErrorResponse`, pinned by a test),
pages get `error.html`.

Errors pixseek raises on purpose, HTTP errors and malformed requests have handlers here. Any
other exception is a bug: `CatchAllMiddleware` logs it with the request's id and answers 500 in
the same shape, so the user sees no traceback and can quote the id. Every error body carries
the request id that the `X-Request-ID` header and the server's log lines carry too."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.errors import PixseekError
from web.request_id import current_request_id

__all__ = [
    "CatchAllMiddleware",
    "ErrorDetail",
    "ErrorResponse",
    "error_body",
    "error_response",
    "install_error_handlers",
    "validation_message",
]

logger = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


class ErrorDetail(BaseModel):
    """What went wrong, for the person who meets it."""

    status: int = Field(description="The HTTP status, repeated for clients that lose it.")
    code: str = Field(description="A stable machine-readable name, e.g. not_found, too_large.")
    message: str = Field(description="A sentence saying what failed and what to do next.")
    request_id: str = Field(
        description="The request's id (also the X-Request-ID header): the server log names "
        "it, so quote it when you report a problem."
    )


class ErrorResponse(BaseModel):
    """The one JSON error shape of every route."""

    error: ErrorDetail


def error_body(status: int, code: str, message: str, **extra: str) -> dict[str, Any]:
    """The one JSON error shape, with the current request's id (`extra` may override it)."""
    fields = {"request_id": current_request_id() or uuid.uuid4().hex, **extra}
    return {"error": {"status": status, "code": code, "message": message, **fields}}


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", ""
    )


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> Response:
    """The error as JSON (API clients) or as the error page (browsers asking for HTML); the one
    builder every handler and middleware uses."""
    if _wants_html(request):
        templates = request.app.state.templates
        context = {"status": status, "code": code, "message": message, **extra}
        context.setdefault("request_id", current_request_id() or "")
        return templates.TemplateResponse(  # type: ignore[no-any-return]
            request, "error.html", context, status_code=status, headers=headers
        )
    body = error_body(status, code, message, **extra)
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError | ValidationError) -> str:
    """`field: problem` for each bad field (of a request, or of options a page parsed)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers for errors with a known meaning (the catch-all is a middleware)."""

    @app.exception_handler(PixseekError)
    async def _pixseek(request: Request, exc: PixseekError) -> Response:
        return error_response(request, exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422, "invalid_request", validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = (
                "The request body could not be parsed: send valid JSON, or for an upload a "
                "multipart/form-data body with the image in the field 'file'."
            )
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request, exc.status_code, code, message, headers=headers)


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
            response = error_response(
                Request(scope, receive), 500, "internal_error", message, request_id=request_id
            )
            await response(scope, receive, send)
