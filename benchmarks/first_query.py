"""Is the first query after `pixseek serve` starts as fast as the tenth?

Indexes a small corpus, starts `pixseek serve` on loopback, waits for `/readyz` (the server
warms every collection's encoder and index in the background), then times text queries 1..N
over HTTP with distinct texts (so the query-vector cache does not hide encoding), and the same
text again (a cache hit). Prints the times to ready and the per-query latencies.

    python -m benchmarks.first_query                       # tiny-test model
    python -m benchmarks.first_query --model ViT-B-32-256/random
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.photo_corpus import build_photo_corpus

QUERIES = (
    "a red car",
    "two dogs in the snow",
    "a beach at sunset",
    "a city at night",
    "a bowl of fruit",
    "a mountain lake",
    "people at a party",
    "a cat on a sofa",
    "a bicycle",
    "a forest path",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-test")
    parser.add_argument("--count", type=int, default=20, help="photos indexed first")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pixseek-first-query-"))
    corpus = build_photo_corpus(
        Path(tempfile.gettempdir()) / "pixseek-bench-photos-small",
        args.count,
        min_mp=0.3,
        max_mp=1.0,
    )[0].parent
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIXSEEK_")}
    env.update(
        {
            "PIXSEEK_DATA_DIR": str(work / "data"),
            "PIXSEEK_CACHE_DIR": str(work / "cache"),
            "PIXSEEK_MODEL": args.model,
            "HF_HUB_OFFLINE": "1",
        }
    )
    pixseek = str(Path(sys.executable).with_name("pixseek"))
    subprocess.run(
        [pixseek, "index", str(corpus), "--json"], env=env, check=True, capture_output=True
    )
    port = _free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [pixseek, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        listening = ready = None
        with httpx.Client(base_url=base, timeout=120) as client:
            while ready is None:
                if server.poll() is not None:
                    raise SystemExit(f"pixseek serve exited {server.returncode}")
                try:
                    answer = client.get("/readyz")
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                listening = listening or time.perf_counter() - started
                if answer.status_code == 200:
                    ready = time.perf_counter() - started
                elif answer.json().get("status") == "failed":
                    raise SystemExit(f"warming failed: {answer.json()}")
                else:
                    time.sleep(0.05)
            latencies = []
            for query in QUERIES:
                t0 = time.perf_counter()
                client.get("/api/search", params={"q": query, "k": 10}).raise_for_status()
                latencies.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            client.get("/api/search", params={"q": QUERIES[0], "k": 10}).raise_for_status()
            repeat_ms = (time.perf_counter() - t0) * 1000
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n`pixseek serve` with {args.model}: listening after {listening:.1f} s,"
        f" /readyz 200 after {ready:.1f} s"
    )
    print("query | 1st | 2nd | 10th | median 2..10 | same text again (cache hit)")
    print("--- | --- | --- | --- | --- | ---")
    print(
        f"ms over HTTP | {latencies[0]:.1f} | {latencies[1]:.1f} | {latencies[-1]:.1f} | "
        f"{statistics.median(latencies[1:]):.1f} | {repeat_ms:.1f}"
    )


if __name__ == "__main__":
    main()
