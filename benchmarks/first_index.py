"""What a new user waits for: the first `pixseek index` of a folder, with default settings, cold.

Each run is a fresh `pixseek index` process (Python start, imports and model load included) on
a fresh data directory and a fresh per-machine cache directory (no cached tag label
embeddings), exactly what the first run on a new machine costs. Rows: defaults (tags on) and
tags off; the "tags cost" column is their ratio (the goal is at most 1.15).

    python -m benchmarks.first_index                         # 300 wallpaper photos, ViT-B-32-256
    python -m benchmarks.first_index --corpus synthetic --count 100 --repeat 1

The model defaults to `ViT-B-32-256/random`: seeded random weights cost exactly what the real
`cpu` preset costs (no weights can be downloaded on the build machines). Memory: "peak RSS" is
the largest single process (what `/usr/bin/time -v` reports); "peak PSS" samples the whole
process tree (main process plus decode workers, shared pages split between them) every 0.1 s.
`--rclip-seconds` prints our time as a fraction of a peer's wall time measured on the same
corpus (see benchmarks/peers.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FirstIndexRun", "time_first_index"]


@dataclass
class FirstIndexRun:
    wall_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    report: dict[str, Any]


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack += children.get(current, [])
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def time_first_index(corpus: Path, model: str, *, tags: bool, workdir: Path) -> FirstIndexRun:
    """One cold `pixseek index CORPUS --json` in a subprocess; fresh data and cache directories."""
    data_dir, cache_dir = workdir / "data", workdir / "cache"
    shutil.rmtree(workdir, ignore_errors=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIXSEEK_")}
    env.update(
        {
            "PIXSEEK_DATA_DIR": str(data_dir),
            "PIXSEEK_CACHE_DIR": str(cache_dir),
            "PIXSEEK_MODEL": model,
            "PIXSEEK_TAGS": "true" if tags else "false",
            "HF_HUB_OFFLINE": "1",
        }
    )
    command = [str(Path(sys.executable).with_name("pixseek")), "index", str(corpus), "--json"]
    peak_pss = 0
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_pss
        while not done.wait(0.1):
            peak_pss = max(peak_pss, sum(_pss_kb(pid) for pid in _tree(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"pixseek index exited {process.returncode}: {output[-2000:]}")
    return FirstIndexRun(wall, usage.ru_maxrss / 1024, peak_pss / 1024, json.loads(output))


def _corpus(kind: str, count: int, folder: Path | None) -> Path:
    if kind == "wallpapers":
        from benchmarks.wallpaper_corpus import build_wallpaper_corpus

        root = folder or Path(tempfile.gettempdir()) / "pixseek-wallpaper-photos"
        build_wallpaper_corpus(root, count)
    else:
        from benchmarks.photo_corpus import build_photo_corpus

        root = folder or Path(tempfile.gettempdir()) / "pixseek-bench-photos"
        build_photo_corpus(root, count)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", choices=("wallpapers", "synthetic"), default="wallpapers")
    parser.add_argument(
        "--folder", type=Path, default=None, help="where the corpus is built (cached)"
    )
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--model", default="ViT-B-32-256/random")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per row, interleaved (the median is shown)"
    )
    parser.add_argument(
        "--rclip-seconds", type=float, default=None, help="a peer's wall time on the same corpus"
    )
    args = parser.parse_args()

    root = _corpus(args.corpus, args.count, args.folder)
    workdir = Path(tempfile.mkdtemp(prefix="pixseek-first-index-"))
    runs: dict[str, list[FirstIndexRun]] = {"defaults, cold caches (tags on)": [], "tags off": []}
    try:
        for _ in range(max(1, args.repeat)):
            for label, tags in (("defaults, cold caches (tags on)", True), ("tags off", False)):
                runs[label].append(
                    time_first_index(root, args.model, tags=tags, workdir=workdir / "run")
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[0]
    print(
        f"\nfirst `pixseek index` of {args.count} {args.corpus} photos, {args.model}, "
        f"{os.cpu_count()} cores, "
        f"load {load}, median of {args.repeat}"
    )
    header = [
        "run",
        "wall s",
        "images/s",
        "peak RSS MB",
        "peak PSS MB (tree)",
        "tagged after",
        "tags cost",
    ]
    if args.rclip_seconds:
        header.append("x rclip")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    off = statistics.median(run.wall_s for run in runs["tags off"])
    for label, measured in runs.items():
        wall = statistics.median(run.wall_s for run in measured)
        row = [
            label,
            f"{wall:.1f}",
            f"{measured[0].report['indexed'] / wall:.1f}",
            f"{max(run.peak_rss_mb for run in measured):.0f}",
            f"{max(run.peak_pss_mb for run in measured):.0f}",
            str(measured[0].report.get("tagged", 0)),
            f"{wall / off:.2f}",
        ]
        if args.rclip_seconds:
            row.append(f"{wall / args.rclip_seconds:.2f}")
        print(" | ".join(row))


if __name__ == "__main__":
    main()
