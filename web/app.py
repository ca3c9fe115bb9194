"""The ASGI app factory: one FastAPI app serving the JSON API (`search.api`), the HTML pages
and the static files. Nothing is built at import time; `create_app(settings)` makes an app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from search import api
from search.catalog import open_catalog
from search.engine import SearchEngine
from search.settings import Settings
from web import pages
from web.errors import install_error_handlers

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: from the environment).

    The catalog is opened when the app starts (lifespan), not here, so building an app has no
    side effects. The embedded SQLite catalog upgrades itself; other databases must be at the
    newest schema (`pixseek db upgrade`) or the app refuses to start.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.resolved_database_url()
        catalog = open_catalog(url, upgrade=url.startswith("sqlite"))
        app.state.engine = SearchEngine(settings, catalog)
        try:
            yield
        finally:
            catalog.close()

    app = FastAPI(
        title="pixseek",
        summary="Search your images by text or by example.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = Jinja2Templates(directory=str(files("web").joinpath("templates")))
    install_error_handlers(app)

    @app.get("/healthz", tags=["meta"], summary="Liveness check")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(files("web").joinpath("static"))), name="static")
    return app
