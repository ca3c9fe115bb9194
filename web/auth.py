"""The admin token: when `PIXSEEK_ADMIN_TOKEN` is set, write/admin routes need
`Authorization: Bearer <token>`; read routes stay public."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request

__all__ = ["require_admin"]


def require_admin(request: Request) -> None:
    """A route dependency: refuse (401) a request without the admin token, when one is set.
    The comparison takes constant time, so the token cannot be guessed byte by byte."""
    token = request.app.state.settings.admin_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise HTTPException(
            status_code=401,
            detail="This route needs the admin token: send "
            "'Authorization: Bearer <PIXSEEK_ADMIN_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
