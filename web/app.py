"""The ASGI app factory: one FastAPI app serving the JSON API (`web.api`), the HTML pages and
the static files. Nothing is built at import time; `create_app(settings)` makes an app.

Every request passes, outermost first: the request id (`web.request_id`), metrics and the
access log (`web.metrics`), the catch-all for bugs (`web.errors`), the body cap and the
cross-site guard (`web.guards`) and, when configured, CORS. Read routes depend on
`require_reader`, admin routes on `require_admin` (`web.auth`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from indexer.job_runner import JobRunner
from search.catalog import open_catalog
from search.query.engine import SearchEngine
from search.settings import Settings
from web import browse_pages, pages
from web.api import browse, collections, images, jobs, meta, search
from web.api_docs import document_errors
from web.auth import require_reader
from web.errors import CatchAllMiddleware, install_error_handlers
from web.guards import BodyLimitMiddleware, CrossSiteGuardMiddleware
from web.metrics import Metrics, MetricsMiddleware
from web.readiness import Readiness
from web.request_id import RequestIdMiddleware
from web.served_files import CollectionRoots

__all__ = ["create_app"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the catalog, build the engine and the job runner, start warming; undo on exit.

    The embedded SQLite catalog upgrades itself; other databases must be at the newest schema
    (`pixseek db upgrade`) or the app refuses to start."""
    settings: Settings = app.state.settings
    url = settings.resolved_database_url()
    catalog = open_catalog(url, upgrade=url.startswith("sqlite"))
    app.state.engine = SearchEngine(settings, catalog)
    app.state.jobs = JobRunner(settings, catalog)
    app.state.collection_roots = CollectionRoots(catalog)
    app.state.readiness.start(app.state.engine, warm=settings.warm_on_start)
    app.state.jobs.resume_interrupted()
    try:
        yield
    finally:
        app.state.jobs.shutdown()
        app.state.readiness.wait()
        catalog.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for `settings` (default: from the environment).

    The catalog is opened when the app starts (lifespan), not here, so building an app has no
    side effects."""
    app = FastAPI(
        title="pixseek",
        summary="Search your images by text or by example.",
        version="0.1.0",
        lifespan=_lifespan,
        docs_url=None,  # `web.api.meta` serves them from local assets
        redoc_url=None,
    )
    settings = app.state.settings = settings or Settings()
    app.state.readiness = Readiness()
    app.state.templates = Jinja2Templates(directory=str(files("web").joinpath("templates")))
    app.state.metrics = Metrics(app)
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(CrossSiteGuardMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so every response has it
    app.include_router(meta.router)  # /healthz, /readyz public; /metrics needs the read token
    reader = [Depends(require_reader)]
    for module in (search, browse, images, collections, jobs, pages, browse_pages):
        app.include_router(module.router, dependencies=reader)
    document_errors(app)
    docs_assets = StaticFiles(directory=str(meta.docs_assets_dir()))
    app.mount(meta.DOCS_ASSETS, docs_assets, name="docs-assets")
    static = StaticFiles(directory=str(files("web").joinpath("static")))
    app.mount("/static", static, name="static")
    return app
