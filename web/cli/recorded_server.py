"""A uvicorn server that records itself in the data directory while it listens
(`web.server_info`), so that `pixseek search` finds it and sends its queries there.

The record is written after the sockets are bound (uvicorn's `startup`), not before: a record
exists only while its port accepts connections, so a search that finds the port refusing knows
the record is stale. It is removed when the server stops cleanly (Ctrl+C, SIGTERM: uvicorn's
`shutdown`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import uvicorn

from web.cli.common import stderr
from web.server_info import (
    ServerRecord,
    connect_url,
    remove_server_record,
    write_server_record,
)

if TYPE_CHECKING:
    import socket

    from search.settings import Settings

__all__ = ["RecordedServer"]


class RecordedServer(uvicorn.Server):
    """`uvicorn.Server` plus the record of `settings.data_dir` (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings
        self.record: ServerRecord | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:  # it could not bind and is exiting
            return
        port = self._bound_port()
        stderr.print(
            f"pixseek serving {self.settings.data_dir} at {connect_url(self.config.host, port)}/"
            "  (API docs: /docs; Ctrl+C to stop)",
            highlight=False,
            soft_wrap=True,
        )
        try:
            self.record = write_server_record(self.settings, self.config.host, port)
        except OSError as exc:  # StorageError is one: a read-only data directory still serves
            stderr.print(
                f"[yellow]Warning:[/] {exc} `pixseek search` will not find this server by "
                "itself; give it --server.",
                highlight=False,
                soft_wrap=True,
            )

    def _bound_port(self) -> int:
        """The port the server listens on: the one asked for, or the one the system chose for
        `--port 0`."""
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.config.port

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Unrecord first: a search arriving while the server closes goes local. (uvicorn
        re-raises a SIGTERM or SIGINT once it has shut down, so nothing after `run` runs.)"""
        self._unrecord()
        await super().shutdown(sockets)

    def _unrecord(self) -> None:
        if self.record is not None:
            remove_server_record(self.settings.data_dir, self.record)
            self.record = None

    def run_recorded(self) -> None:
        """Serve until stopped, then remove the record."""
        try:
            self.run()
        finally:  # a failure, or an exit without a signal
            self._unrecord()
