"""Who may call what: the admin door and the optional read door.

Admin routes (start and cancel indexing jobs) change what the server holds and reads from disk,
so they are never open to the network by accident:

- `PIXSEEK_ADMIN_TOKEN` set: they need `Authorization: Bearer <token>` (else 401).
- unset: they answer only a *local* request, one that arrived on a loopback address from a
  loopback client with no proxy header (a reverse proxy on the same machine relays other
  people's requests from 127.0.0.1; its `X-Forwarded-For`/`Forwarded` header gives it away).
  Anything else gets 403 naming the setting. Anyone who can reach a loopback port is on the
  machine already and could run `pixseek index` themselves.
- `PIXSEEK_INSECURE_NO_AUTH` (`pixseek serve --insecure-no-auth`): open to all, by choice.

Read routes are public unless `PIXSEEK_READ_TOKEN` is set; then they need that token or the
admin token, as a Bearer header or as the password of HTTP Basic auth (so a browser can show
the pages and their images after one prompt). Tokens are compared in constant time."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from search.settings import Settings

__all__ = [
    "ADMIN_SCHEME",
    "READ_SCHEME",
    "is_local_request",
    "is_loopback_host",
    "require_admin",
    "require_reader",
]

ADMIN_SCHEME = "AdminToken"
READ_SCHEME = "ReadToken"

# Declared for the OpenAPI document (and Swagger UI's Authorize button); the header itself is
# read by `_given_token`, which also takes Basic auth, so these never refuse on their own.
_admin_bearer = HTTPBearer(
    scheme_name=ADMIN_SCHEME,
    auto_error=False,
    description="PIXSEEK_ADMIN_TOKEN. Needed by admin routes when the server sets it; without "
    "it they answer only requests from the server's own machine.",
)
_read_bearer = HTTPBearer(
    scheme_name=READ_SCHEME,
    auto_error=False,
    description="PIXSEEK_READ_TOKEN (or the admin token), only when the server sets it; also "
    "accepted as the password of HTTP Basic auth.",
)
_AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_admin_bearer)]
_ReadCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(_read_bearer)]

_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def is_loopback_host(host: str | None) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped); False for anything else."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_local_request(request: Request) -> bool:
    """The request came from this machine to a loopback address, not relayed by a proxy."""
    server = request.scope.get("server")
    client = request.scope.get("client")
    if not server or not client:
        return False
    if any(name in request.headers for name in _PROXY_HEADERS):
        return False
    return is_loopback_host(str(server[0])) and is_loopback_host(str(client[0]))


def _given_token(request: Request) -> str | None:
    """The token of a Bearer header, or the password of a Basic one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        return value
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def _matches(given: str | None, *tokens: str | None) -> bool:
    if given is None:
        return False
    found = False
    for token in tokens:
        if token:  # compare with every token, so the time does not say which one matched
            found |= secrets.compare_digest(given.encode(), token.encode())
    return found


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def require_admin(request: Request, _declared: _AdminCredentials = None) -> None:
    """A route dependency for admin routes: see the module docstring for the rules."""
    settings = _settings(request)
    if settings.admin_token:
        if not _matches(_given_token(request), settings.admin_token):
            raise HTTPException(
                status_code=401,
                detail="This route needs the admin token: send "
                "'Authorization: Bearer <PIXSEEK_ADMIN_TOKEN>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return
    if settings.insecure_no_auth or is_local_request(request):
        return
    raise HTTPException(
        status_code=403,
        detail="Admin routes are closed to the network because PIXSEEK_ADMIN_TOKEN is not set: "
        "set it on the server and send 'Authorization: Bearer <token>', or call from the "
        "server's own machine on a loopback address (127.0.0.1).",
    )


def require_reader(request: Request, _declared: _ReadCredentials = None) -> None:
    """A dependency for read routes: with `PIXSEEK_READ_TOKEN` set, the read or the admin
    token is needed (Bearer, or Basic auth's password); without it, reading is public."""
    settings = _settings(request)
    if not settings.read_token:
        return
    if _matches(_given_token(request), settings.read_token, settings.admin_token):
        return
    raise HTTPException(
        status_code=401,
        detail="This server needs a token to read: send 'Authorization: Bearer "
        "<PIXSEEK_READ_TOKEN>' (a browser asks for it as the password).",
        headers={"WWW-Authenticate": 'Basic realm="pixseek", charset="UTF-8"'},
    )
