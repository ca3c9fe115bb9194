"""The ASGI app factory: one FastAPI app serving the JSON API (`web.api.search`), the HTML pages
and the static files. Nothing is built at import time; `create_app(settings)` makes an app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from swagger_ui_bundle import swagger_ui_path

from web.api import search as search_api
from search.catalog import open_catalog
from search.query.engine import SearchEngine
from search.settings import Settings
from web import pages
from web.api import jobs as jobs_api
from web.errors import install_error_handlers
from indexer.job_runner import JobRunner
from web.readiness import Readiness

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
        app.state.jobs = JobRunner(settings, catalog)
        app.state.readiness.start(app.state.engine, warm=settings.warm_on_start)
        try:
            yield
        finally:
            app.state.jobs.shutdown()
            app.state.readiness.wait()
            catalog.close()

    app = FastAPI(
        title="pixseek",
        summary="Search your images by text or by example.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served below from local assets: no CDN, works offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.readiness = Readiness()
    app.state.templates = Jinja2Templates(directory=str(files("web").joinpath("templates")))
    install_error_handlers(app)

    @app.get("/healthz", tags=["meta"], summary="Liveness check")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["meta"], summary="Readiness check",
             responses={503: {"description": "Not ready yet (models warming) or warming failed; the body says why."}})
    def readyz() -> JSONResponse:
        readiness: Readiness = app.state.readiness
        try:
            app.state.engine.catalog.list_collections()
        except Exception as exc:  # noqa: BLE001 - whatever the database says, the answer is "not ready"
            return JSONResponse({"status": "failed", "reason": f"catalog unreachable: {exc}"}, status_code=503)
        body = {"status": readiness.state, "reason": readiness.reason, "collections": readiness.collections,
                "warm_seconds": None if readiness.seconds is None else round(readiness.seconds, 3)}
        return JSONResponse(body, status_code=200 if readiness.state == "ready" else 503)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="pixseek API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    app.include_router(search_api.router)
    app.include_router(jobs_api.router)
    app.include_router(pages.router)
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    app.mount("/static", StaticFiles(directory=str(files("web").joinpath("static"))), name="static")
    return app
