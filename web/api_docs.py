"""The OpenAPI document lists every status each route can answer, each with the one error body.

FastAPI documents a route's success and its own 422 (with a body the app never sends: errors
leave through `web.errors` as `ErrorResponse`). The statuses an operation can answer follow
from what it is, which the generated document already says: an `/api/` route reads the catalog
(400, 404, 409, 503), parameters can be malformed (422), a path id can be missing (404), a
write can come cross-site or be too large (403, 413, `web.guards`), an upload can be too large
or unreadable (413, 400), and its security schemes (`web.auth`) give 401 and 403. Working on
the document rather than on route objects keeps it right for routes added later and for
routers FastAPI includes lazily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from web.auth import ADMIN_SCHEME, READ_SCHEME
from web.errors import ErrorResponse

__all__ = ["document_errors", "error_statuses"]

_REF = "#/components/schemas/ErrorResponse"
_MARK = "x-pixseek-errors-documented"

_DESCRIPTIONS = {
    400: "The request is unusable (a blank query, an unreadable image, a malformed body); the "
    "message says what to change.",
    401: "A token is needed: send 'Authorization: Bearer <token>'.",
    403: "Not allowed by this server's settings (the message names the setting), or a "
    "cross-site write from a browser.",
    404: "No such image, job, collection or file.",
    409: "Conflicts with the index (another encoder built it, or another process writes it).",
    413: "The request body is over PIXSEEK_MAX_UPLOAD_BYTES.",
    422: "A parameter or field is malformed or out of range; the message names it.",
    500: "A bug: the message carries the request id to quote.",
    503: "Not ready: the catalog is unreachable, or a model or storage is unavailable.",
    507: "The disk of the data directory is full.",
}


def _schemes(operation: dict[str, Any]) -> set[str]:
    return {name for requirement in operation.get("security", []) for name in requirement}


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation of the generated document can answer."""
    statuses = {500}
    parameters = operation.get("parameters", [])
    body = operation.get("requestBody", {}).get("content", {})
    if path.startswith("/api/"):
        statuses |= {400, 404, 409, 503}
    if parameters or body:
        statuses.add(422)
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if method != "get":
        statuses |= {403, 413}
    if "multipart/form-data" in body:
        statuses |= {400, 413}
    schemes = _schemes(operation)
    if ADMIN_SCHEME in schemes:
        statuses |= {401, 403, 507}
    if READ_SCHEME in schemes:
        statuses.add(401)
    return statuses


def _add_errors(spec: dict[str, Any]) -> None:
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorResponse"] = error_schema
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(path, method, operation)):
                entry = responses.get(str(status))
                if entry is not None and "HTTPValidationError" not in str(entry):
                    continue  # the route documents this status itself (/readyz's 503)
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": {"$ref": _REF}}},
                }
    if "HTTPValidationError" not in str(spec.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    spec[_MARK] = True


def document_errors(app: FastAPI) -> None:
    """Make `app.openapi()` add the error statuses to the document FastAPI generates."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        if not spec.get(_MARK):
            _add_errors(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
