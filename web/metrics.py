"""`/metrics` in the Prometheus text format: what an operator graphs and alerts on.

- `pixseek_http_request_duration_seconds{method,route,status}`: latency per route *template*
  (`/api/images/{image_id}`, never the id: one series per route, not per image);
- `pixseek_search_stage_seconds{stage}`: the engine's own per-stage timings of each search
  (decode, encode, ann, filter, cutoff, text, fusion, metadata, rerank, total), observed by the
  routes through `observe_search`;
- read from the catalog at scrape time: images per collection and status, index sizes, failed
  images by reason, the rate of running indexing jobs, jobs by state, and whether warming
  finished.

Each app has its own registry (`create_app` builds one), so tests and several apps in one
process never share or double-register series. The middleware also writes one access log line
per request carrying its request id, the id an error body shows."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.images.failures import failure_kind
from web.request_id import current_request_id

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["Metrics", "MetricsMiddleware", "observe_search"]

access_log = logging.getLogger("web.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_UNMATCHED = "<unmatched>"  # a 404 for a path no route has: one series, whatever the path
_RECENT_JOBS = 200


class _CatalogCollector(Collector):
    """Gauges read from the catalog and the app's state when Prometheus scrapes."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        state = self.app.state
        ready = GaugeMetricFamily("pixseek_ready", "1 once models are warmed and serving.")
        readiness = getattr(state, "readiness", None)
        ready.add_metric([], 1.0 if readiness is not None and readiness.state == "ready" else 0.0)
        yield ready
        engine = getattr(state, "engine", None)
        up = GaugeMetricFamily("pixseek_catalog_up", "1 when the catalog answered this scrape.")
        if engine is None:
            up.add_metric([], 0.0)
            yield up
            return
        try:
            families = list(self._catalog_families(engine.catalog))
        except Exception:  # noqa: BLE001 - an unreachable catalog is a metric, not an error
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from families

    def _catalog_families(self, catalog: Any) -> Iterator[Metric]:
        images = GaugeMetricFamily(
            "pixseek_images",
            "Catalog images by collection and status.",
            labels=["collection", "status"],
        )
        vectors = GaugeMetricFamily(
            "pixseek_index_vectors", "Vectors in the last saved FAISS index.", labels=["collection"]
        )
        failed = GaugeMetricFamily(
            "pixseek_failed_images",
            "Images that could not be indexed, by reason.",
            labels=["collection", "reason"],
        )
        for info in catalog.list_collections():
            for status, count in catalog.count_by_status(info.id).items():
                images.add_metric([info.name, str(status)], float(count))
            build = catalog.index_build(info.id)
            vectors.add_metric([info.name], float(build.count if build is not None else 0))
            reasons = Counter(failure_kind(reason) for _, reason in catalog.failures(info.id))
            for reason, count in reasons.items():
                failed.add_metric([info.name, reason], float(count))
        yield from (images, vectors, failed)
        yield from self._job_families(catalog)

    def _job_families(self, catalog: Any) -> Iterator[Metric]:
        rate = GaugeMetricFamily(
            "pixseek_indexing_rate_images_per_second",
            "Images per second of each running indexing job.",
            labels=["job", "collection"],
        )
        progress = GaugeMetricFamily(
            "pixseek_indexing_images_done",
            "Images processed so far by each running indexing job.",
            labels=["job", "collection"],
        )
        states = GaugeMetricFamily(
            "pixseek_jobs", f"The last {_RECENT_JOBS} jobs by state.", labels=["state"]
        )
        counted: Counter[str] = Counter()
        for job in catalog.list_jobs(_RECENT_JOBS):
            counted[str(job.state)] += 1
            if job.state == "running":
                labels = [str(job.id), job.collection or ""]
                rate.add_metric(labels, float(job.rate or 0.0))
                progress.add_metric(labels, float(job.done))
        for name, count in counted.items():
            states.add_metric([name], float(count))
        yield from (rate, progress, states)


class Metrics:
    """The registry of one app and its instruments."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "pixseek_http_request_duration_seconds",
            "Time to answer a request, by route template.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search_stages = Histogram(
            "pixseek_search_stage_seconds",
            "Time spent in each stage of a search, as the engine measured it.",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_CatalogCollector(app))

    def observe_search(self, timings: Mapping[str, float]) -> None:
        """Record one search's stage timings (the engine's `timings`, in milliseconds)."""
        for name, milliseconds in timings.items():
            stage = name.removesuffix("_ms")
            self.search_stages.labels(stage=stage).observe(max(milliseconds, 0.0) / 1000)


def observe_search(request: Request, timings: Mapping[str, float]) -> None:
    """Record a search's stage timings on the app's metrics: every route that runs a search
    calls this with the response's `timings`."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.observe_search(timings)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return _UNMATCHED


class MetricsMiddleware:
    """Times every HTTP request by route template and logs one access line with its id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)  # a mount (/static) is one series for all its files
            method = str(scope.get("method", ""))
            self.metrics.latency.labels(method=method, route=route, status=str(status)).observe(
                seconds
            )
            access_log.info(
                "%s %s %d %.1fms request_id=%s",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                current_request_id() or "-",
                extra={
                    "request_id": current_request_id(),
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
