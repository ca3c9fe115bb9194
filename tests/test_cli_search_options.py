"""`pixseek search` turns its flags into exactly the `SearchRequest` they name, one flag per
`SearchOptions` field, and prints the answer (table or JSON, facets, the next page's cursor).

The engine's side of these options (filters, cutoff, paging, arithmetic) is tested with the
engine; here the engine's entry points are replaced by recorders, so what is checked is the
request the CLI hands over and what it prints of an answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from search.query.engine import SearchEngine
from search.query.terms import QueryImage
from search.schemas import (
    FacetCount,
    FacetsResponse,
    SearchOptions,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from web.cli import app
from web.cli.search import search as search_command


class EngineRecorder:
    """Stands in for `SearchEngine.search` / `.facets`: keeps what they were called with and
    answers `response` / `facets`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.response = SearchResponse(query=None, k=10, results=[])
        self.facets = FacetsResponse(total=0, collections=[], years=[], cameras=[], tags=[])

    def search(self, request: SearchRequest, *args: Any, **kwargs: Any) -> SearchResponse:
        self.calls.append({"request": request, "args": args, "kwargs": kwargs})
        return self.response

    def facets_of(self, request: SearchRequest) -> FacetsResponse:
        self.calls.append({"request": request, "facets": True})
        return self.facets


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> EngineRecorder:
    recorder = EngineRecorder()
    monkeypatch.setattr(SearchEngine, "search", lambda _engine, *a, **k: recorder.search(*a, **k))
    monkeypatch.setattr(
        SearchEngine, "facets", lambda _engine, request: recorder.facets_of(request), raising=False
    )
    return recorder


def run(tmp_path: Path, *args: str, expect: int = 0) -> Any:
    """`pixseek search ARGS` on an empty data directory, never asking a server."""
    env = {"PIXSEEK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["search", *args, "--local"], env=env)
    assert result.exit_code == expect, f"exit {result.exit_code}: {result.output}"
    return result


def _search_command_params() -> dict[str, Any]:
    command = get_command(app).commands["search"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def test_every_search_option_has_a_flag_of_its_name() -> None:
    params = _search_command_params()
    missing = set(SearchOptions.model_fields) - set(params)
    assert not missing, f"SearchOptions fields without a `pixseek search` flag: {sorted(missing)}"


@pytest.mark.parametrize("name", ["sort", "mode", "orientation", "cutoff"])
def test_choices_are_the_fields_choices(name: str) -> None:
    flag = get_type_hints(search_command, include_extras=True)[name].__origin__
    assert _choices(flag) == _choices(SearchOptions.model_fields[name].annotation)


def _choices(annotation: Any) -> set[str]:
    """The values of a `Literal[...]` or `Literal[...] | None`."""
    args = get_args(annotation)
    if any(get_args(arg) for arg in args):  # a union: the Literal in it
        args = next(get_args(arg) for arg in args if get_args(arg))
    return set(args)


def test_flags_build_the_request_they_name(tmp_path: Path, recorder: EngineRecorder) -> None:
    run(
        tmp_path,
        "beach + 2:sunset - people",
        *("--folder", "/photos/2024", "--date-from", "2024-01-01", "--date-to", "2024-12-31"),
        *("--camera", "canon", "--tag", "sea", "--tag", "sky", "--any-tag", "dog"),
        *("--any-tag", "cat", "--min-width", "100", "--max-width", "5000", "--min-height", "50"),
        *("--max-height", "4000", "--min-megapixels", "0.5", "--max-megapixels", "50"),
        *("--orientation", "landscape", "--file-type", "jpeg", "--file-type", "png"),
        *("--has-caption", "--min-score", "0.2", "--cutoff", "auto", "--sort", "date_desc"),
        *("--limit", "5", "--cursor", "abc", "--collection", "trips", "--k", "50"),
    )
    (call,) = recorder.calls
    expected = SearchRequest(
        q="beach + 2:sunset - people",
        folder="/photos/2024",
        date_from="2024-01-01",
        date_to="2024-12-31",
        camera="canon",
        tag=["sea", "sky"],
        any_tag=["dog", "cat"],
        min_width=100,
        max_width=5000,
        min_height=50,
        max_height=4000,
        min_megapixels=0.5,
        max_megapixels=50,
        orientation="landscape",
        file_type=["jpeg", "png"],
        has_caption=True,
        min_score=0.2,
        cutoff="auto",
        sort="date_desc",
        limit=5,
        cursor="abc",
        collection="trips",
        k=50,
    )
    assert call["request"] == expected
    assert call["request"].model_fields_set == expected.model_fields_set  # defaults stay unset
    assert call["args"] == () and call["kwargs"] == {"images": []}


def test_no_caption_and_defaults(tmp_path: Path, recorder: EngineRecorder) -> None:
    run(tmp_path, "red", "--no-caption")
    run(tmp_path, "red", "--cutoff", "auto")
    run(tmp_path, "red", "--min-score", "0.3", "--k", "40")
    plain, cut, scored = (call["request"] for call in recorder.calls)
    assert plain.has_caption is False
    assert plain.model_fields_set == {"query", "has_caption", "k"}, "only what was given, and k"
    assert (plain.k, plain.limit) == (10, None)  # a terminal's page of the top 10
    assert (cut.k, cut.limit) == (None, 10)  # the cutoff decides how many; pages of 10
    assert (scored.k, scored.limit) == (40, 10)


def test_image_files_are_terms_of_the_query(tmp_path: Path, recorder: EngineRecorder) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    run(tmp_path, "--image", str(first))
    run(tmp_path, "red - blue", "--image", str(first), "--image", str(second))
    alone, combined = recorder.calls
    assert alone["request"].query is None
    assert alone["kwargs"] == {"images": [QueryImage(b"first", str(first), 1.0)]}
    assert combined["request"].query == "red - blue"
    assert combined["kwargs"] == {
        "images": [QueryImage(b"first", str(first), 1.0), QueryImage(b"second", str(second), 1.0)]
    }


def test_bad_values_are_one_sentence(tmp_path: Path, recorder: EngineRecorder) -> None:
    result = run(tmp_path, "red", "--date-from", "2024-13-01", expect=1)
    assert "Error: Invalid search: date_from" in " ".join(result.output.split())
    result = run(tmp_path, "red", "--date-from", "2024-05-02", "--date-to", "2024-05-01", expect=1)
    assert "nothing can match" in " ".join(result.output.split())
    result = run(tmp_path, "red", "--sort", "newest", expect=2)
    assert "--sort" in result.output
    assert not recorder.calls


def test_missing_query_says_so_unless_counting_facets(
    tmp_path: Path, recorder: EngineRecorder
) -> None:
    result = run(tmp_path, expect=2)
    assert "neither a QUERY nor --image PATH was given" in " ".join(result.output.split())
    run(tmp_path, "--facets", "--tag", "sea")
    assert recorder.calls[0]["request"].tag == ["sea"]


def _result(rank: int, taken_at: datetime | None = None) -> SearchResult:
    return SearchResult(
        id=rank,
        path=f"/photos/{rank}.jpg",
        score=1 - rank / 10,
        clip_score=1 - rank / 10,
        collection="default",
        taken_at=taken_at,
        taken_at_source="exif" if taken_at else None,
    )


def test_table_shows_taken_dates_and_the_next_page(
    tmp_path: Path, recorder: EngineRecorder
) -> None:
    taken = datetime(2024, 5, 31, 18, 30, tzinfo=UTC)
    recorder.response = SearchResponse(
        query="red",
        k=10,
        total=12,
        results=[_result(1, taken), _result(2)],
        next_cursor="c2",
        cutoff_score=0.25,
    )
    out = run(tmp_path, "red", "--limit", "2").stdout
    assert "taken" in out and "2024-05-31 18:30+00:00" in out, out
    assert "2 results (total 12), next page: --cursor c2" in out, out
    assert "Cut at score 0.2500." in out

    as_json = json.loads(run(tmp_path, "red", "--limit", "2", "--json").stdout)
    assert as_json["next_cursor"] == "c2" and as_json["total"] == 12
    assert as_json["results"][0]["taken_at"] == "2024-05-31T18:30:00Z"
    assert as_json["results"][0]["thumbnail_url"] == "/api/images/1/thumbnail"

    recorder.response = SearchResponse(query="red", k=10, total=1, results=[_result(1)])
    out = run(tmp_path, "red").stdout
    assert "taken" not in out and "next page" not in out


def test_facets_table_and_json(tmp_path: Path, recorder: EngineRecorder) -> None:
    recorder.facets = FacetsResponse(
        total=7,
        collections=[FacetCount(value="default", count=7)],
        years=[FacetCount(value="2024", count=5), FacetCount(value="2023", count=2)],
        cameras=[FacetCount(value="Canon EOS R5", count=3)],
        tags=[FacetCount(value="sea", count=4)],
    )
    out = run(tmp_path, "--facets", "--camera", "canon").stdout
    assert "7 images match." in out
    assert "Canon EOS R5" in out and "2023" in out
    assert json.loads(run(tmp_path, "--facets", "--json").stdout) == recorder.facets.model_dump()
    assert recorder.calls[0]["request"].camera == "canon"
