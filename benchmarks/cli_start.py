"""How long does a `pixseek` command take, from the shell prompt to the answer?

Indexes a small corpus with the tiny-test model, then runs each command N times in a fresh
interpreter and prints the median wall time and the median CPU time (user + system, which
other load on the machine inflates less), and whether it imported the model stack (torch,
torchvision, transformers, open_clip; one more run under `python -X importtime`). Targets:
`pixseek --help` under 0.5 s, `pixseek stats --json` under 1.0 s.

The last rows are the same text query sent to a running `pixseek serve`: over HTTP alone (a
search whose model is already loaded), and as `pixseek search`, which finds the server by the
record it keeps in the data directory and forwards the query (its own start plus that).

    python -m benchmarks.cli_start              # from the repository root
    python -m benchmarks.cli_start --runs 9
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.photo_corpus import build_photo_corpus

REPO = Path(__file__).resolve().parents[1]
PIXSEEK = [sys.executable, "-m", "web.cli"]  # the console script's code, from this checkout
MODEL_STACK = {"torch", "torchvision", "transformers", "open_clip"}
QUERY = "a red car"
COMMANDS: list[tuple[str, list[str]]] = [
    ("pixseek --help", ["--help"]),
    ("pixseek stats --json", ["stats", "--json"]),
    ("pixseek jobs", ["jobs"]),
    ("pixseek failures", ["failures"]),
    ("pixseek db current", ["db", "current"]),
    ("pixseek search --help", ["search", "--help"]),
    (f"pixseek search {QUERY!r} (loads the model)", ["search", QUERY]),
]


@dataclass(frozen=True)
class Timing:
    label: str
    wall: list[float]
    cpu: list[float]
    model_stack: str  # the heavy packages it imported, or "no"


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run: (wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*PIXSEEK, *args], cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _heavy_imports(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "web.cli", *args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    loaded = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return ", ".join(sorted(loaded & MODEL_STACK)) or "no"


def _time_command(label: str, args: list[str], env: dict[str, str], runs: int) -> Timing:
    _run(args, env)  # once untimed: the OS file cache, and the catalog's first open
    samples = [_run(args, env) for _ in range(runs)]
    return Timing(
        label, [w for w, _ in samples], [c for _, c in samples], _heavy_imports(args, env)
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.read()


def _time_served_query(env: dict[str, str], runs: int) -> list[Timing]:
    """The query against a warm `pixseek serve` (its /readyz says the model is loaded): over
    HTTP alone, and as `pixseek search`, which finds the server through its record in the data
    directory."""
    port = _free_port()
    server = subprocess.Popen(
        [*PIXSEEK, "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    search = f"{base}/api/search?" + urllib.parse.urlencode({"q": QUERY, "k": 10})
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"pixseek serve exited {server.returncode}")
            try:
                status, body = _get(f"{base}/readyz")
            except OSError:  # not listening yet
                time.sleep(0.05)
                continue
            if status == 200:
                break
            if json.loads(body).get("status") == "failed":
                raise SystemExit(f"pixseek serve could not warm up: {body!r}")
            time.sleep(0.05)
        _get(search)
        wall = []
        for _ in range(runs):
            started = time.perf_counter()
            status, body = _get(search)
            wall.append(time.perf_counter() - started)
            assert status == 200, body
        label = f"pixseek search {QUERY!r} (asks the running serve)"
        command = _time_command(label, ["search", QUERY], env, runs)
    finally:
        server.terminate()
        server.wait(timeout=60)
    http = Timing(f"GET /api/search?q={QUERY!r} on a warm serve", wall, [], "in the server")
    return [http, command]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (median)")
    parser.add_argument("--count", type=int, default=12, help="photos indexed first")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pixseek-cli-start-"))
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
            "PIXSEEK_MODEL": "tiny-test",
            "HF_HUB_OFFLINE": "1",
        }
    )
    try:
        subprocess.run(
            [*PIXSEEK, "index", str(corpus), "--json"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        timings = [_time_command(label, argv, env, args.runs) for label, argv in COMMANDS]
        timings.extend(_time_served_query(env, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.runs} runs each, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print("command | median wall s | min wall s | median CPU s | imports the model stack")
    print("--- | --- | --- | --- | ---")
    for t in timings:
        cpu = f"{statistics.median(t.cpu):.2f}" if t.cpu else "-"
        print(
            f"{t.label} | {statistics.median(t.wall):.3f} | {min(t.wall):.3f} | {cpu} | "
            f"{t.model_stack}"
        )


if __name__ == "__main__":
    main()
