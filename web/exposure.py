"""Whether a server may listen where it was asked to: no admin door open to the network.

`pixseek serve --host 0.0.0.0` with no admin token would let anyone who reaches the port start
indexing any folder and then download every image in it. `check_bind` refuses that before the
socket opens, in one sentence naming both ways out. A loopback address is always fine: only
this machine can reach it (and `web.auth` keeps the admin routes to local requests)."""

from __future__ import annotations

import logging

from search.errors import ConfigError
from search.settings import Settings
from web.auth import is_loopback_host

__all__ = ["check_bind"]

logger = logging.getLogger(__name__)


def check_bind(host: str, settings: Settings, *, insecure_no_auth: bool = False) -> None:
    """Raise `ConfigError` when `host` is reachable from the network and no admin token is
    set, unless `insecure_no_auth` (the `--insecure-no-auth` flag) says so on purpose."""
    if is_loopback_host(host) or settings.admin_token:
        return
    if insecure_no_auth or settings.insecure_no_auth:
        logger.warning(
            "Serving on %s with no admin token: anyone who reaches this port can start "
            "indexing jobs (--insecure-no-auth).",
            host,
        )
        return
    raise ConfigError(
        f"Refusing to serve on {host} with no admin token: anyone on the network could index "
        "and download any folder; set PIXSEEK_ADMIN_TOKEN, serve on 127.0.0.1, or pass "
        "--insecure-no-auth if this network is trusted."
    )
