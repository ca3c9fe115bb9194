"""What an operator sees: /metrics in the Prometheus format (latency by route template, search
stages, index sizes, failures by reason), /readyz with each check, access logs whose request
id is the one an error body shows, and timestamps in UTC on both databases."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from search.catalog import JobInfo
from search.job_schemas import JobResponse
from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("metrics") / "data",
        model="tiny-test",
        workers=0,
        device="cpu",
    )
    Cli(settings).json("index", str(photo_set.root))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _samples(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: dict, name: str, **labels: str) -> float:
    found = [v for got, v in samples.get(name, []) if labels.items() <= got.items()]
    assert found, f"no {name}{labels} in {sorted(samples)}"
    return float(sum(found))


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    first = client.get("/api/search", params={"q": "red circle", "k": 3}).json()["results"][0]
    client.get(f"/api/images/{first['id']}")
    client.get("/api/images/987654")
    client.get("/api/images/987654/similar")
    client.get("/no/such/page/123")
    samples = _samples(client)
    name = "pixseek_http_request_duration_seconds_count"
    assert _value(samples, name, route="/api/images/{image_id}", status="200") >= 1
    assert _value(samples, name, route="/api/images/{image_id}", status="404") >= 1
    assert _value(samples, name, route="/api/images/{image_id}/similar", status="404") >= 1
    assert _value(samples, name, route="<unmatched>", status="404") >= 1
    routes = {labels["route"] for labels, _ in samples[name]}
    assert not any(char.isdigit() for route in routes for char in route), routes


def test_metrics_show_search_stages_index_sizes_and_failures(
    client: TestClient, photo_set: PhotoSet
) -> None:
    first = client.get("/api/search", params={"q": "red", "k": 2}).json()["results"][0]
    similar = client.get(f"/api/images/{first['id']}/similar", params={"k": 2})
    assert similar.status_code == 200
    stages = set(similar.json()["timings"])
    filtered = client.get("/api/search", params={"q": "red", "k": 2, "min_width": 1}).json()
    assert {"encode_ms", "ann_ms", "filter_ms", "fusion_ms", "metadata_ms"} <= set(
        filtered["timings"]
    ), filtered["timings"]  # the stages the issue names: encode, ANN, filter, fusion (+ rerank)
    stages |= set(filtered["timings"])
    samples = _samples(client)
    for stage in stages:
        assert _value(samples, "pixseek_search_stage_seconds_count", stage=stage[:-3]) >= 1
    embedded = len(photo_set.good)
    assert _value(samples, "pixseek_images", collection="default", status="embedded") == embedded
    assert _value(samples, "pixseek_index_vectors", collection="default") == embedded
    reasons = {labels["reason"] for labels, _ in samples["pixseek_failed_images"]}
    assert reasons == {"truncated or corrupt image data", "not an image"}, reasons
    assert _value(samples, "pixseek_jobs", state="done") >= 1
    assert _value(samples, "pixseek_catalog_up") == 1


def test_access_log_lines_carry_the_request_id_of_the_error_body(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="web.access"):
        response = client.get("/api/images/123456789")
    request_id = response.json()["error"]["request_id"]
    assert response.headers["X-Request-ID"] == request_id
    lines = [r for r in caplog.records if r.name == "web.access"]
    assert any(
        getattr(r, "request_id", None) == request_id
        and request_id in r.getMessage()
        and getattr(r, "route", None) == "/api/images/{image_id}"
        and r.status == 404  # type: ignore[attr-defined]
        for r in lines
    ), [r.getMessage() for r in lines]


def test_readyz_reports_each_check(client: TestClient) -> None:
    deadline = time.monotonic() + 300
    while (ready := client.get("/readyz")).status_code == 503 and time.monotonic() < deadline:
        assert ready.json()["status"] == "warming", ready.json()
        time.sleep(0.1)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["collections"] == ["default"]
    assert body["checks"] == {"catalog": "ok", "indexes": "loaded", "encoder": "warmed"}


def _job(created: datetime) -> JobInfo:
    return JobInfo(
        id=1, kind="index", state="done", collection="c", args={}, total=0, done=0, failed=0,
        rate=None, error=None, errors=[], created_at=created, started_at=None, finished_at=None,
    )  # fmt: skip


def test_timestamps_are_utc_whatever_the_database_returned() -> None:
    naive = datetime(2026, 11, 30, 18, 7, 56, 706938)
    paris = datetime(2026, 11, 30, 19, 7, 56, 706938, tzinfo=timezone(timedelta(hours=1)))
    for value in (naive, paris, naive.replace(tzinfo=UTC)):
        dumped = JobResponse.from_info(_job(value)).model_dump(mode="json")
        assert dumped["created_at"] == "2026-11-30T18:07:56.706938Z", dumped["created_at"]


def test_job_timestamps_from_the_api_are_utc_on_both_databases(
    cli: Cli, settings: Settings, photo_set: PhotoSet
) -> None:
    cli.json("index", str(photo_set.root))
    with TestClient(create_app(settings.model_copy(update={"warm_on_start": False}))) as client:
        (job,) = client.get("/api/jobs").json()
        spec = client.get("/openapi.json").json()["components"]["schemas"]["JobResponse"]
    assert spec["properties"]["created_at"]["format"] == "date-time"
    for field in ("created_at", "started_at", "finished_at"):
        parsed = datetime.fromisoformat(job[field])
        assert parsed.utcoffset() == timedelta(0), (field, job[field])
        assert abs(datetime.now(UTC) - parsed) < timedelta(minutes=10), (field, job[field])
