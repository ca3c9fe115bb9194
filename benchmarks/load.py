"""Load test: a real `uvicorn` server on loopback, `tiny-test` over a small indexed folder, driven
by N concurrent clients for S seconds with a mix of text searches, image uploads, similar-image
queries and HTML pages. Prints requests/s, latency percentiles and errors per kind.

    python -m benchmarks.load                      # 60 s, 50 clients (the issue's setting)
    python -m benchmarks.load --seconds 20 --clients 50

It builds its own data directory (synthetic photos, `pixseek index`), starts the server in a
process of its own (`python -m uvicorn --factory`), waits for /readyz, runs, and at the end
stops the server with SIGTERM while the last requests are in flight: uvicorn's graceful
shutdown must let them finish (counted as `cut at shutdown` when they do not)."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

__all__ = ["main"]

QUERIES = ["red circle", "blue square", "a green triangle", "yellow", "beach", "snow", "cat"]
MIX = [("text", 5), ("similar", 3), ("upload", 1), ("page", 1)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _photos(root: Path, count: int) -> None:
    rng = random.Random(5)
    colours = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]
    root.mkdir(parents=True)
    for i in range(count):
        background, fill = rng.sample(colours, 2)
        image = Image.new("RGB", (rng.randint(120, 320), rng.randint(120, 320)), background)
        x, y = rng.randint(10, 60), rng.randint(10, 60)
        ImageDraw.Draw(image).ellipse((x, y, x + 50, y + 50), fill=fill)
        image.save(root / f"{i:04d}.jpg", quality=90)


def _upload_body() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 150), "red").save(buffer, "JPEG")
    return buffer.getvalue()


class Stats:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.cut_at_shutdown: Counter[str] = Counter()


async def _one(client: httpx.AsyncClient, kind: str, ids: list[int], upload: bytes) -> int:
    if kind == "text":
        params = {"q": random.choice(QUERIES), "k": 24}
        return (await client.get("/api/search", params=params)).status_code
    if kind == "similar":
        return (await client.get(f"/api/images/{random.choice(ids)}/similar?k=12")).status_code
    if kind == "upload":
        files = {"file": ("q.jpg", upload, "image/jpeg")}
        return (await client.post("/api/search/image", files=files, data={"k": "12"})).status_code
    page = await client.get("/", params={"q": random.choice(QUERIES)})
    return page.status_code


async def _client_loop(
    base: str, until: float, ids: list[int], upload: bytes, stats: Stats, stop: asyncio.Event
) -> None:
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < until and not stop.is_set():
            kind = random.choice(kinds)
            started = time.perf_counter()
            try:
                status = await _one(client, kind, ids, upload)
            except httpx.HTTPError as exc:
                if stop.is_set():
                    stats.cut_at_shutdown[f"{kind}: {type(exc).__name__}"] += 1
                else:
                    stats.errors[f"{kind}: {type(exc).__name__}"] += 1
                continue
            stats.latencies[kind].append(time.perf_counter() - started)
            if status != 200:
                stats.errors[f"{kind}: HTTP {status}"] += 1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _drive(base: str, seconds: float, clients: int, server: subprocess.Popen) -> Stats:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        hits = (await client.get("/api/search", params={"q": "red", "k": 200})).json()["results"]
    ids = [hit["id"] for hit in hits]
    upload, stats, stop = _upload_body(), Stats(), asyncio.Event()
    until = time.monotonic() + seconds
    tasks = [
        asyncio.create_task(_client_loop(base, until + 5, ids, upload, stats, stop))
        for _ in range(clients)
    ]
    await asyncio.sleep(seconds)
    # Stop the server while requests are in flight: the graceful shutdown lets them finish.
    server.send_signal(signal.SIGTERM)
    stop.set()
    await asyncio.gather(*tasks)
    return stats


def _report(stats: Stats, seconds: float, clients: int) -> None:
    every = [v for values in stats.latencies.values() for v in values]
    print(f"\n{clients} clients, {seconds:.0f} s, {len(every)} requests answered")
    print(f"{'kind':10s} {'count':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}")
    for kind in [*sorted(stats.latencies), "all"]:
        values = every if kind == "all" else stats.latencies[kind]
        if values:
            print(
                f"{kind:10s} {len(values):7d} {_percentile(values, 0.5):8.0f} "
                f"{_percentile(values, 0.95):8.0f} {_percentile(values, 0.99):8.0f}"
            )
    print(f"requests/s: {len(every) / seconds:.1f}  mean {statistics.mean(every) * 1000:.0f} ms")
    print(f"errors: {sum(stats.errors.values())} {dict(stats.errors) or ''}")
    cut = stats.cut_at_shutdown
    print(f"failed while the server stopped (after SIGTERM): {sum(cut.values())} {dict(cut) or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="How long to drive the server.")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients.")
    parser.add_argument("--images", type=int, default=200, help="Photos in the indexed folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pixseek-load-") as tmp:
        root, data = Path(tmp) / "photos", Path(tmp) / "data"
        _photos(root, args.images)
        env = {
            **os.environ,
            "PIXSEEK_DATA_DIR": str(data),
            "PIXSEEK_MODEL": "tiny-test",
            "PIXSEEK_DEVICE": "cpu",
            "PIXSEEK_WORKERS": "0",
            "HF_HUB_OFFLINE": "1",
        }
        subprocess.run(
            [sys.executable, "-m", "web.cli", "index", str(root)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        port = _free_port()
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed after the server
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "web.app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--timeout-graceful-shutdown", "30"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit("the server did not become ready:\n" + log.name)
            stats = asyncio.run(_drive(base, args.seconds, args.clients, server))
            code = server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
            log.close()
        _report(stats, args.seconds, args.clients)
        # uvicorn finishes in-flight requests, then re-raises the signal: -15 is a clean stop.
        print(f"server exit code after SIGTERM: {code}")
        if code not in (0, -signal.SIGTERM):
            print((Path(tmp) / "server.log").read_text()[-3000:])


if __name__ == "__main__":
    main()
