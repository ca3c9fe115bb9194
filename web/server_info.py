"""Where a running `pixseek serve` can be found: a small JSON record in the data directory.

`pixseek search` loads the CLIP model for every command (seconds); a running server has it
loaded already. So `pixseek serve` writes `server.json` into its data directory once it listens
(atomically, so a reader never sees half a record) and removes it when it stops cleanly, and
`pixseek search` sends its query there when the record names a live server for the same data
directory and catalog.

The check must cost a search next to nothing when no server is up: no file means no server
(one `stat`); otherwise the record's process must exist (same machine) and its port must accept
a TCP connection within a fraction of a second. A record whose process is gone or whose port
refuses connections (a server killed with SIGKILL, a reboot) is stale: it is ignored and removed.

The record names the catalog by a hash of its URL (which may hold a password), so a search with
another `PIXSEEK_DATABASE_URL` does not go to a server reading another catalog.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from search.settings import Settings

__all__ = [
    "RECORD_NAME",
    "ServerRecord",
    "catalog_fingerprint",
    "connect_url",
    "find_live_server",
    "read_server_record",
    "record_path",
    "remove_server_record",
    "write_server_record",
]

RECORD_NAME = "server.json"
_SQLITE_PREFIX = "sqlite:///"
CONNECT_TIMEOUT_S = 0.25  # a server on this machine answers a connect in well under 1 ms


@dataclass(frozen=True)
class ServerRecord:
    """One running server, as `pixseek serve` describes itself."""

    url: str  # what a client connects to, e.g. http://127.0.0.1:8000
    host: str  # the interface it listens on (0.0.0.0 included)
    port: int
    pid: int
    hostname: str  # the machine of `pid`: a data directory may be shared over the network
    data_dir: str
    catalog: str  # catalog_fingerprint of the database URL
    started_at: str  # ISO 8601, UTC


def record_path(data_dir: Path) -> Path:
    """The record of the server of `data_dir`."""
    return data_dir / RECORD_NAME


def catalog_fingerprint(database_url: str) -> str:
    """Names a catalog without writing its URL (and any password in it) to disk. A SQLite
    file is named by its real path, so `--data-dir data` and the same folder given as an
    absolute path (what `pixseek demo` serves) name the same catalog."""
    if database_url.startswith(_SQLITE_PREFIX):
        path, query = database_url[len(_SQLITE_PREFIX) :].partition("?")[::2]
        if path and path != ":memory:":
            real = os.path.realpath(path)
            database_url = f"{_SQLITE_PREFIX}{real}" + (f"?{query}" if query else "")
    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def connect_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server listening on `host`: a server on
    every interface (0.0.0.0, ::) is reached on the loopback one."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:  # an IPv6 address goes in brackets
        host = f"[{host}]"
    return f"http://{host}:{port}"


def write_server_record(settings: Settings, host: str, port: int) -> ServerRecord:
    """Record this process as the server of `settings.data_dir` (listening on `host:port`)."""
    from search.storage.atomic_files import atomic_write_bytes

    record = ServerRecord(
        url=connect_url(host, port),
        host=host,
        port=port,
        pid=os.getpid(),
        hostname=socket.gethostname(),
        data_dir=str(settings.data_dir.resolve()),
        catalog=catalog_fingerprint(settings.resolved_database_url()),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    text = json.dumps(asdict(record), indent=2) + "\n"
    atomic_write_bytes(record_path(settings.data_dir), text.encode())
    return record


def read_server_record(data_dir: Path) -> ServerRecord | None:
    """The record in `data_dir`, or None when there is none or it cannot be read (a record
    from another version of pixseek, a truncated file: treated as no server)."""
    try:
        values = json.loads(record_path(data_dir).read_text(encoding="utf-8"))
        return ServerRecord(**values)
    except (OSError, ValueError, TypeError):
        return None


def remove_server_record(data_dir: Path, record: ServerRecord) -> None:
    """Remove the record of `data_dir` if it is still `record` (another server may have written
    its own since), e.g. when the server of `record` stops."""
    if read_server_record(data_dir) == record:
        with contextlib.suppress(FileNotFoundError):
            record_path(data_dir).unlink()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def _state(record: ServerRecord, timeout: float) -> Literal["live", "stale", "unknown"]:
    """live: something listens at the record's address (its process exists); stale: the process
    is gone or the port refuses connections; unknown: no answer in `timeout` (a firewall, a
    machine that is down), so the record is left alone."""
    same_machine = record.hostname == socket.gethostname()
    # os.kill(pid, 0) would terminate the process on Windows: trust the connect alone there
    if same_machine and sys.platform != "win32" and not _pid_exists(record.pid):
        return "stale"
    host = record.url.removeprefix("http://").rsplit(":", 1)[0].strip("[]")
    try:
        with socket.create_connection((host, record.port), timeout=timeout):
            return "live"
    except ConnectionRefusedError:
        return "stale"
    except OSError:
        return "unknown"


def find_live_server(settings: Settings, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """The URL of a running `pixseek serve` for the data directory and catalog of `settings`,
    or None (then search locally). A stale record is removed on the way."""
    record = read_server_record(settings.data_dir)
    if record is None:
        return None
    if Path(record.data_dir) != settings.data_dir.resolve() or record.catalog != (
        catalog_fingerprint(settings.resolved_database_url())
    ):
        return None  # a copied data directory, or another catalog: not this search's server
    state = _state(record, timeout)
    if state == "stale":
        remove_server_record(settings.data_dir, record)
    return record.url if state == "live" else None
