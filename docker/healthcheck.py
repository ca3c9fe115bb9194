"""The container's health check: GET the server's /readyz and exit 0 only on 200.

The image has no curl; the standard library does the request. When `PIXSEEK_READ_TOKEN` is
set, it is sent as a bearer token, so the check passes whether or not the server asks for it on
/readyz. What it prints (the reason /readyz gives for 503) lands in `docker inspect`'s health log.

    python healthcheck.py [URL]   (default http://127.0.0.1:8000/readyz)
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

__all__ = ["DEFAULT_URL", "check", "main"]

DEFAULT_URL = "http://127.0.0.1:8000/readyz"
TIMEOUT_SECONDS = 8.0
MAX_REASON_CHARS = 500
# The server is local: an HTTP(S)_PROXY set for the container's downloads must not be asked.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check(url: str, read_token: str | None) -> tuple[bool, str]:
    """Ask `url` once: (healthy, what to report)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if read_token:
        request.add_header("Authorization", f"Bearer {read_token}")
    try:
        with _NO_PROXY.open(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read(MAX_REASON_CHARS).decode("utf-8", "replace")
            return response.status == 200, f"{response.status} {body}"
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_REASON_CHARS).decode("utf-8", "replace")
        return False, f"{exc.code} {body}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url} did not answer: {getattr(exc, 'reason', exc)}"


def main(argv: list[str]) -> int:
    """Check once and print the outcome; exit status 0 when ready, else 1."""
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    healthy, report = check(url, os.environ.get("PIXSEEK_READ_TOKEN") or None)
    sys.stdout.write(report.strip() + "\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
