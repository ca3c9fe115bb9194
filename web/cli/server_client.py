"""Sending a `SearchRequest` to a running `pixseek serve` (`search --server URL`, or the server
`web.server_info` finds), and reading its answer into the same models a local search returns,
so the CLI prints the same table and the same JSON either way.

The request goes generically: every field set on the request becomes a query parameter of the
same name as the API's (`SearchOptions`' alias, e.g. `q` for `query`; a list is a repeated
parameter), so an option added to `SearchOptions` is forwarded without code here.
tests/test_cli_server.py checks that the server rebuilds exactly the request the CLI built.

httpx is imported when a request is sent, never when `pixseek` starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from search.errors import PixseekError

if TYPE_CHECKING:
    import httpx

    from search.schemas import FacetsResponse, SearchOptions
    from web.responses import SearchResponse

__all__ = [
    "ServerError",
    "ServerUnreachableError",
    "facets_on_server",
    "query_params",
    "search_on_server",
]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 600.0  # a server still loading its model, or reranking on a CPU, takes a while
TOKEN_VARIABLES = ("PIXSEEK_READ_TOKEN", "PIXSEEK_ADMIN_TOKEN")


class ServerError(PixseekError):
    """The server answered with an error; the message is the one it gave (the sentence a
    local search would have printed)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ServerUnreachableError(PixseekError):
    """No answer from the server (refused, timed out, dropped): a search that found the server
    by itself then runs locally instead; one sent with --server stops here."""


def query_params(request: SearchOptions) -> list[tuple[str, str]]:
    """The request as the API's query parameters: the fields set on it, under the names the
    API reads (a field's validation alias, e.g. `q`), lists repeated, values as JSON scalars
    (`true`, `2024-05-31`). Fields that are not options of a URL (`terms`) are left out."""
    from search.schemas import SearchOptions

    params: list[tuple[str, str]] = []
    dumped = request.model_dump(mode="json", include=request.model_fields_set)
    for name, value in dumped.items():
        field = SearchOptions.model_fields.get(name)
        if field is None or value is None:
            continue
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        key = alias or field.alias or name
        items = value if isinstance(value, list) else [value]
        params.extend((key, v if isinstance(v, str) else json.dumps(v)) for v in items)
    return params


def _headers() -> dict[str, str]:
    """A bearer token from the environment, when one is set (read routes ignore it)."""
    token = next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _send(
    url: str,
    method: str,
    path: str,
    params: list[tuple[str, str]],
    files: Sequence[tuple[str, tuple[str, bytes]]] = (),
) -> Any:
    """One request; the JSON body of a success, else `ServerError` with the server's message,
    or `ServerUnreachableError` when nothing answered."""
    import httpx

    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        with httpx.Client(base_url=url, timeout=timeout, headers=_headers()) as client:
            answer = client.request(method, path, params=tuple(params), files=list(files) or None)
    except httpx.TransportError as exc:
        raise ServerUnreachableError(
            f"No answer from the pixseek server at {url} ({type(exc).__name__}: {exc}). Is "
            "`pixseek serve` running there? Without --server, pixseek searches locally."
        ) from exc
    if answer.is_success:
        return answer.json()
    raise _server_error(url, answer)


def _server_error(url: str, answer: httpx.Response) -> ServerError:
    """The error the server described in its one error shape (`web.errors.error_body`), or
    what it answered when it is not that shape (a proxy's page, another program)."""
    try:
        error = answer.json()["error"]
        return ServerError(
            str(error["message"]), status=answer.status_code, code=str(error.get("code", ""))
        )
    except (ValueError, KeyError, TypeError):
        text = " ".join(answer.text.split())[:200]
        return ServerError(
            f"The server at {url} answered {answer.status_code} {answer.reason_phrase}: {text}",
            status=answer.status_code,
            code="http_error",
        )


def search_on_server(
    url: str, request: SearchOptions, images: Sequence[tuple[str, bytes]] = ()
) -> SearchResponse:
    """`GET /api/search`, or with example images (`(file name, bytes)`), `POST
    /api/search/image` with each as a `file` part."""
    from web.responses import SearchResponse

    params = query_params(request)
    if images:
        files = [("file", (name, data)) for name, data in images]
        body = _send(url, "POST", "/api/search/image", params, files)
    else:
        body = _send(url, "GET", "/api/search", params)
    return SearchResponse.model_validate(body)


def facets_on_server(url: str, request: SearchOptions) -> FacetsResponse:
    """`GET /api/facets` for the request's filter set."""
    from search.schemas import FacetsResponse

    return FacetsResponse.model_validate(_send(url, "GET", "/api/facets", query_params(request)))
