"""Routes about the server itself: liveness, readiness and the API docs (served from local
assets: no CDN, so the docs work offline)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from web.readiness import Readiness

__all__ = ["DOCS_ASSETS", "docs_assets_dir", "router"]

DOCS_ASSETS = "/docs-assets"  # where the app mounts the Swagger UI files


def docs_assets_dir() -> Traversable:
    """The folder of Swagger UI files that /docs loads, from the `fastapi-offline` package.

    FastAPI emits OpenAPI 3.1, which only Swagger UI 5 and later can render (older ones show
    "Unable to render this definition"); `fastapi-offline` ships a current Swagger UI 5 dist
    (`swagger-ui-bundle.js`, `swagger-ui.css`, `favicon.png`), so nothing comes from a CDN and
    no npm step is needed at build time. Only its files are used, not its app factory."""
    return files("fastapi_offline").joinpath("static")


router = APIRouter(tags=["meta"])


@router.get("/healthz", summary="Liveness check")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness check",
    responses={
        503: {"description": "Not ready yet (models warming) or warming failed; the body says why."}
    },
)
def readyz(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    try:
        request.app.state.engine.catalog.list_collections()
    except Exception as exc:  # noqa: BLE001 - whatever the database says, the answer is "not ready"
        return JSONResponse(
            {"status": "failed", "reason": f"catalog unreachable: {exc}"}, status_code=503
        )
    seconds = None if readiness.seconds is None else round(readiness.seconds, 3)
    body = {
        "status": readiness.state,
        "reason": readiness.reason,
        "collections": readiness.collections,
        "warm_seconds": seconds,
    }
    return JSONResponse(body, status_code=200 if readiness.state == "ready" else 503)


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="pixseek API",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
    )
