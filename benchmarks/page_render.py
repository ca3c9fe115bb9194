"""How long does the server take to render the two heaviest pages?

The search page with 50 results (`/?q=...&k=50`, its query vector cached after the first
request) and the browse page of a collection with 200 thumbnails (`/collections/NAME?limit=200`),
on `tiny-test` over a fresh data directory of synthetic images. Each page is requested
in-process through the app's ASGI stack (`fastapi.testclient`: routing, middleware, the engine,
the template), so the time is the server's alone, no socket or browser. The first (cold)
request, which loads the model and reads the index, is shown on its own; then N timed runs
give the median and p90 wall time and the median CPU time (steadier on a shared machine).
Goal: under 50 ms each.

    python -m benchmarks.page_render              # from the repository root
    python -m benchmarks.page_render --runs 50 --images 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["PageTiming", "main", "measure_pages", "print_table"]

QUERY = "a red circle on a blue background"
SEARCH_K = 50
BROWSE_THUMBNAILS = 200
GOAL_MS = 50.0
_COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]


@dataclass(frozen=True)
class PageTiming:
    label: str
    url: str
    shown: int  # results or thumbnails on the page
    cold_ms: float
    runs_ms: list[float]
    cpu_ms: list[float]  # this process's CPU time per run: less swayed by a busy machine

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def cpu_median_ms(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.runs_ms)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _photos(root: Path, count: int) -> None:
    """`count` small JPEGs of a coloured shape on a background, in a few folders and seeded."""
    rng = random.Random(11)
    for i in range(count):
        background, fill = rng.sample(_COLOURS, 2)
        image = Image.new("RGB", (rng.randint(160, 480), rng.randint(160, 480)), background)
        x, y = rng.randint(10, 80), rng.randint(10, 80)
        ImageDraw.Draw(image).ellipse((x, y, x + 70, y + 70), fill=fill)
        folder = root / f"folder-{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i:05d}.jpg", quality=88)


def _index(work: Path, images: int) -> dict[str, str]:
    """Index `images` synthetic photos with `pixseek index` into `work`; returns its settings
    as environment variables."""
    _photos(work / "photos", images)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIXSEEK_")}
    env.update(
        {
            "PIXSEEK_DATA_DIR": str(work / "data"),
            "PIXSEEK_CACHE_DIR": str(work / "cache"),
            "PIXSEEK_MODEL": "tiny-test",
            "PIXSEEK_WORKERS": "0",
            "PIXSEEK_DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1",
        }
    )
    command = [sys.executable, "-m", "web.cli", "index", str(work / "photos"), "--json"]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    indexed = json.loads(done.stdout)["indexed"]
    if indexed != images:
        raise SystemExit(f"pixseek index indexed {indexed} of {images} images: {done.stderr}")
    return env


@contextmanager
def _app_client(env: dict[str, str]) -> Iterator[object]:
    """The app for the settings in `env`, started (its lifespan run) in this process."""
    from fastapi.testclient import TestClient

    from search.settings import Settings
    from web.app import create_app

    settings = Settings(
        data_dir=Path(env["PIXSEEK_DATA_DIR"]),
        cache_dir=Path(env["PIXSEEK_CACHE_DIR"]),
        model="tiny-test",
        workers=0,
        device="cpu",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _time_page(client: object, label: str, url: str, runs: int, marker: str) -> PageTiming:
    """One cold request, then `runs` timed ones; every answer must be 200."""
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    headers = {"accept": "text/html"}
    timings: list[float] = []
    cpu: list[float] = []
    body = ""
    for _ in range(runs + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = client.get(url, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"GET {url} answered {answer.status_code}: {answer.text[:300]}")
        body = answer.text
    return PageTiming(label, url, body.count(marker), timings[0], timings[1:], cpu[1:])


def measure_pages(
    work: Path, *, images: int, runs: int, k: int, thumbnails: int
) -> list[PageTiming]:
    """Index `images` photos in `work` and time the search page (`k` results) and the browse
    page (`thumbnails` per page)."""
    env = _index(work, images)
    query = QUERY.replace(" ", "+")
    with _app_client(env) as client:
        return [
            _time_page(
                client,
                f"search page, k={k}",
                f"/?q={query}&k={k}&limit={k}",
                runs,
                'class="result"',
            ),
            _time_page(
                client,
                f"browse page, {thumbnails} thumbnails",
                f"/collections/default?limit={thumbnails}",
                runs,
                'loading="lazy"',
            ),
        ]


def print_table(timings: list[PageTiming]) -> None:
    print(
        f"{'page':<30} {'shown':>5} {'cold ms':>8} {'median ms':>9} {'p90 ms':>7} "
        f"{'cpu ms':>7} {'runs':>5}"
    )
    for t in timings:
        verdict = "ok" if t.median_ms < GOAL_MS else f"over the {GOAL_MS:.0f} ms goal"
        print(
            f"{t.label:<30} {t.shown:>5} {t.cold_ms:>8.1f} {t.median_ms:>9.1f} "
            f"{t.p90_ms:>7.1f} {t.cpu_median_ms:>7.1f} {len(t.runs_ms):>5}  {verdict}"
        )
    print("cpu ms: median CPU time of this process per request (the app runs in it)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=240, help="Synthetic photos indexed.")
    parser.add_argument("--runs", type=int, default=30, help="Timed requests per page.")
    parser.add_argument("--k", type=int, default=SEARCH_K, help="Results on the search page.")
    parser.add_argument(
        "--thumbnails", type=int, default=BROWSE_THUMBNAILS, help="Thumbnails on the browse page."
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pixseek-page-render-") as folder:
        timings = measure_pages(
            Path(folder),
            images=args.images,
            runs=args.runs,
            k=args.k,
            thumbnails=args.thumbnails,
        )
    print_table(timings)


if __name__ == "__main__":
    main()
