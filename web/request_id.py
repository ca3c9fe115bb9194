"""One id per request: taken from a sane incoming `X-Request-ID` (a proxy's), else made here.
It is sent back in the `X-Request-ID` response header and is what the log line of an
unexpected error names, so a user's report and the server log meet on one string."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HEADER", "RequestIdMiddleware", "current_request_id"]

HEADER = "X-Request-ID"

# Letters, digits and a few separators, at most 128: anything else (spaces, newlines that could
# forge log lines, kilobytes of junk) is replaced by an id of our own.
_SANE = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")

_current: ContextVar[str | None] = ContextVar("pixseek_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context (None outside a request)."""
    return _current.get()


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """Pure ASGI (no response buffering): sets the id for the request's context and adds the
    header to whatever response goes out, error responses included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or uuid.uuid4().hex
        token = _current.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _current.reset(token)
