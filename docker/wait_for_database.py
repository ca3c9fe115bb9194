"""Wait until the catalog database in `PIXSEEK_DATABASE_URL` accepts TCP connections.

Run by docker/entrypoint.sh before `pixseek db upgrade`: a container started together with
its database (docker compose, a Kubernetes pod) would otherwise fail on its first connection.
Only the standard library is used, and the password in the URL is never printed.

    python wait_for_database.py [TIMEOUT_SECONDS]   (default 60)

Exit status 0 when the database answers (at once when the URL is unset or names SQLite, or a
socket path instead of a host), 1 when it did not within the timeout, 2 on a bad argument or URL.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from urllib.parse import SplitResult, urlsplit

__all__ = ["database_address", "main", "wait_for"]

DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306}
RETRY_SECONDS = 1.0


def database_address(url: str) -> tuple[str, int] | None:
    """The (host, port) to wait for, or None when there is no server to wait for."""
    parts: SplitResult = urlsplit(url)
    dialect = parts.scheme.partition("+")[0]
    if not dialect or dialect == "sqlite" or not parts.hostname:
        return None
    if dialect not in DEFAULT_PORTS and parts.port is None:
        raise ValueError(f"no port given, and none is known for {dialect!r}")
    return parts.hostname, parts.port or DEFAULT_PORTS[dialect]


def wait_for(host: str, port: int, timeout: float) -> str | None:
    """Try to connect until `timeout` seconds have passed: None once connected, else the last
    error."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        remaining = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(remaining, 5.0))):
                return None
        except OSError as exc:
            error = str(exc) or type(exc).__name__
        if time.monotonic() + RETRY_SECONDS > deadline:
            return error
        if not announced:
            sys.stderr.write(f"pixseek-entrypoint: waiting for the database at {host}:{port}\n")
            announced = True
        time.sleep(RETRY_SECONDS)


def main(argv: list[str]) -> int:
    """Parse the arguments and the URL, wait, and say what went wrong if it did."""
    try:
        timeout = float(argv[1]) if len(argv) > 1 else 60.0
    except ValueError:
        sys.stderr.write(
            f"pixseek-entrypoint: DB_WAIT_TIMEOUT={argv[1]!r} is not a number of seconds\n"
        )
        return 2
    try:
        address = database_address(os.environ.get("PIXSEEK_DATABASE_URL", ""))
    except ValueError as exc:
        sys.stderr.write(f"pixseek-entrypoint: PIXSEEK_DATABASE_URL: {exc}\n")
        return 2
    if address is None:
        return 0
    host, port = address
    error = wait_for(host, port, timeout)
    if error is None:
        return 0
    sys.stderr.write(
        f"pixseek-entrypoint: the database at {host}:{port} did not accept connections within "
        f"{timeout:g} s ({error}). Check PIXSEEK_DATABASE_URL and that the database is running; "
        "DB_WAIT_TIMEOUT sets how long to wait.\n"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
