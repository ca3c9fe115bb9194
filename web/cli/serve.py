"""`pixseek serve`: the web page and the JSON API under uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from web.cli.common import reports_errors, settings_from, stderr

if TYPE_CHECKING:
    from search.settings import Settings

__all__ = ["Host", "Port", "serve", "serve_settings"]

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def serve_settings(settings: Settings, host: str, port: int) -> None:
    """Serve an app for `settings` until Ctrl+C (also what `pixseek demo` ends with)."""
    import uvicorn

    from web.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@reports_errors
def serve(ctx: typer.Context, host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Serve the web page and the JSON API (docs at /docs)."""
    settings = settings_from(ctx)
    stderr.print(f"pixseek serving {settings.data_dir} at http://{host}:{port}/  (API docs: /docs)")
    serve_settings(settings, host, port)
