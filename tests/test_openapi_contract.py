"""Every response as documented: requests generated from the app's own OpenAPI document, for
every route (Schemathesis, in-process against the ASGI app, fixed seed, bounded examples),
must never be a 5xx, must have a documented status and a body valid against its schema.

The generated statuses are counted per route and printed at the end (run with `-s`); the
closing note of the issue quotes them. (Schemathesis' own pytest plugin is not used: it does
not run under pytest 9; the cases come from its strategies, driven by Hypothesis here.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app

EXAMPLES_PER_ROUTE = 25  # per route and per mode (valid and invalid requests)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _app(data_dir: Path) -> tuple[Settings, Any]:
    settings = Settings(
        data_dir=data_dir,
        model="tiny-test",
        workers=0,
        device="cpu",
        max_upload_bytes=200_000,
        max_upload_pixels=1_000_000,
        warm_on_start=False,
    )
    return settings, create_app(settings)


def _exercise(operation: Any, mode: GenerationMode, seen: Counter[tuple[str, str, int]]) -> None:
    """Send `EXAMPLES_PER_ROUTE` generated requests to one operation, checking each answer."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=True,  # a fixed seed: the same requests on every run
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk
    )
    def run(case: Any) -> None:
        response = case.call()
        seen[(f"{case.method} {case.path}", mode.value, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # no invalid request exists for a route without inputs (/healthz)
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.slow
def test_every_route_answers_as_documented(
    tmp_path_factory: pytest.TempPathFactory, photo_set: PhotoSet
) -> None:
    """Valid and invalid requests for every operation of the app's OpenAPI document: never a
    5xx, every status documented, every body valid against its schema."""
    settings, app = _app(tmp_path_factory.mktemp("contract") / "data")
    Cli(settings).json("index", str(photo_set.root))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: Counter[tuple[str, str, int]] = Counter()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _exercise(operation, mode, seen)
            except (
                BaseExceptionGroup
            ) as exc:  # Schemathesis' FailureGroup: collect, fail at the end
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    print(f"\nSchemathesis: {sum(seen.values())} requests, {len(operations)} operations")  # noqa: T201
    for (route, mode, status), count in sorted(seen.items()):
        print(f"  {route:42s} {mode:8s} {status}  {count}")  # noqa: T201
    assert not failures, "\n\n".join(f"{where}:\n{why}" for where, why in failures.items())


def test_every_route_documents_its_errors_with_the_error_shape(tmp_path: Path) -> None:
    """Without generating anything: each operation lists 500 and the statuses its kind of
    route can answer, each with `ErrorResponse`; no FastAPI default 422 body is left."""
    _, app = _app(tmp_path / "data")
    spec = app.openapi()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error_ref = "#/components/schemas/ErrorResponse"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            expected = {"500"}
            if path.startswith("/api/"):
                expected |= {"400", "401", "404", "503"}
            if operation.get("parameters") or operation.get("requestBody"):
                expected.add("422")
            if method != "get":
                expected |= {"403", "413"}
            assert expected <= set(responses), (where, sorted(responses))
            for status, entry in responses.items():
                if status.startswith(("4", "5")) and not (path == "/readyz" and status == "503"):
                    schema_ref = entry["content"]["application/json"]["schema"]["$ref"]
                    assert schema_ref == error_ref, (where, status, entry)
    jobs = spec["paths"]["/api/jobs"]["post"]["responses"]
    assert {"401", "403"} <= set(jobs), sorted(jobs)
    upload = spec["paths"]["/api/search/image"]["post"]["responses"]
    assert "413" in upload, sorted(upload)
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
