"""Routes about the server itself: liveness, readiness, metrics and the API docs (served from
local assets: no CDN, so the docs work offline)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from web.auth import require_reader
from web.readiness import Readiness

__all__ = [
    "DOCS_ASSETS",
    "Health",
    "ReadinessChecks",
    "ReadinessReport",
    "docs_assets_dir",
    "router",
]

DOCS_ASSETS = "/docs-assets"  # where the app mounts the Swagger UI files


def docs_assets_dir() -> Traversable:
    """The folder of Swagger UI files that /docs loads, from the `fastapi-offline` package.

    FastAPI emits OpenAPI 3.1, which only Swagger UI 5 and later can render (older ones show
    "Unable to render this definition"); `fastapi-offline` ships a current Swagger UI 5 dist
    (`swagger-ui-bundle.js`, `swagger-ui.css`, `favicon.png`), so nothing comes from a CDN and
    no npm step is needed at build time. Only its files are used, not its app factory."""
    return files("fastapi_offline").joinpath("static")


router = APIRouter(tags=["meta"])


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class ReadinessChecks(BaseModel):
    """Each thing a query needs, and whether it is there."""

    catalog: str = Field(description="'ok', or 'unreachable: <the database's words>'.")
    indexes: str = Field(description="'loaded', 'loading' or 'failed'.")
    encoder: str = Field(description="'warmed', 'warming', 'failed' or 'not warmed (off)'.")


class ReadinessReport(BaseModel):
    """Whether the server answers queries at full speed now, and if not, why."""

    status: Literal["ready", "warming", "failed"]
    reason: str = Field(description="'ready', or what is missing, in a sentence.")
    checks: ReadinessChecks
    collections: list[str] = Field(description="Collections whose index and encoder are warm.")
    warm_seconds: float | None = Field(description="How long warming took.")


@router.get("/healthz", response_model=Health, summary="Liveness check")
def healthz() -> Health:
    return Health()


def _readiness_report(request: Request) -> ReadinessReport:
    readiness: Readiness = request.app.state.readiness
    seconds = None if readiness.seconds is None else round(readiness.seconds, 3)
    progress = {"ready": ("loaded", "warmed"), "warming": ("loading", "warming")}
    indexes, encoder = progress.get(readiness.state, ("failed", "failed"))
    if readiness.state == "ready" and readiness.seconds is None:
        encoder = "not warmed (off)"
    status, reason, catalog = readiness.state, readiness.reason, "ok"
    try:
        request.app.state.engine.catalog.list_collections()
    except Exception as exc:  # noqa: BLE001 - whatever the database says, the answer is "not ready"
        catalog = f"unreachable: {exc}"
        status, reason = "failed", f"catalog unreachable: {exc}"
    checks = ReadinessChecks(catalog=catalog, indexes=indexes, encoder=encoder)
    return ReadinessReport(
        status=status,
        reason=reason,
        checks=checks,
        collections=readiness.collections,
        warm_seconds=seconds,
    )


@router.get(
    "/readyz",
    response_model=ReadinessReport,
    summary="Readiness check",
    description="200 once the catalog answers and every collection's index and encoder are "
    "loaded and warmed; 503 before that or when something failed, with the reason. Use it as "
    "the health check of a container or a load balancer.",
    responses={
        503: {
            "model": ReadinessReport,
            "description": "Not ready yet (models warming), warming failed or the catalog is "
            "unreachable; `reason` says which.",
        }
    },
)
def readyz(request: Request) -> JSONResponse:
    report = _readiness_report(request)
    return JSONResponse(
        report.model_dump(mode="json"), status_code=200 if report.status == "ready" else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    dependencies=[Depends(require_reader)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="pixseek API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )
