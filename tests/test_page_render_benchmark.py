"""`benchmarks/page_render.py` runs end to end at toy sizes: it indexes its own photos, the two
pages answer 200 with as many results and thumbnails as asked, and the table prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.page_render import measure_pages, print_table


@pytest.mark.slow
def test_page_render_benchmark_runs_at_toy_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timings = measure_pages(tmp_path, images=14, runs=2, k=5, thumbnails=12)
    assert [(t.shown, len(t.runs_ms), len(t.cpu_ms)) for t in timings] == [(5, 2, 2), (12, 2, 2)]
    assert all(t.cold_ms > 0 and t.median_ms > 0 and t.p90_ms >= t.median_ms for t in timings)
    print_table(timings)
    table = capsys.readouterr().out
    assert "search page, k=5" in table and "browse page, 12 thumbnails" in table, table
