"""`pixseek serve`: the web page and the JSON API under uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from web.cli.common import reports_errors, settings_from

if TYPE_CHECKING:
    from search.settings import Settings

__all__ = ["Host", "Port", "serve", "serve_settings"]

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on (0: any free port).")]
InsecureNoAuth = Annotated[
    bool,
    typer.Option(
        "--insecure-no-auth",
        help="Serve on a network address with no admin token: anyone who reaches the port can "
        "start indexing jobs. Trusted networks only.",
    ),
]


def serve_settings(
    settings: Settings, host: str, port: int, *, insecure_no_auth: bool = False
) -> None:
    """Serve an app for `settings` until Ctrl+C (also what `pixseek demo` ends with). While it
    listens, the data directory records it, so `pixseek search` sends queries here
    (`web.server_info`). A network address with no admin token is refused before the socket
    opens (`web.exposure`), unless `insecure_no_auth`."""
    import uvicorn

    from web.app import create_app
    from web.cli.recorded_server import RecordedServer
    from web.exposure import check_bind

    check_bind(host, settings, insecure_no_auth=insecure_no_auth)
    if insecure_no_auth:
        settings = settings.model_copy(update={"insecure_no_auth": True})
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=30,  # in-flight requests finish; then a job is checkpointed
    )
    try:
        RecordedServer(config, settings).run_recorded()
    except KeyboardInterrupt:  # Ctrl+C is how a server stops: not "run it again to resume"
        raise typer.Exit(130) from None


@reports_errors
def serve(
    ctx: typer.Context,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    insecure_no_auth: InsecureNoAuth = False,
) -> None:
    """Serve the web page and the JSON API (docs at /docs)."""
    serve_settings(settings_from(ctx), host, port, insecure_no_auth=insecure_no_auth)
