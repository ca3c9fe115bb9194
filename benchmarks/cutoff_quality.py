"""cutoff=auto against the best flat min_score, on the synthetic world where relevance is exact.

Draws a fresh collection of world images, embeds it with the tiny CLIP trained on the seed-0
world, and ranks ~600 attribute queries ("a red shape", "a blue circle on a striped
background", ...) over all of it. The flat threshold is the one with the best mean F1 on the
train half of the queries; both cutoffs are reported on both halves, per query kind. The
held-out rows are the result (see indexer.quality.cutoff_evaluation).

    python -m benchmarks.cutoff_quality [--cache DIR] [--fraction F]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from indexer.quality.cutoff_evaluation import CutoffReport, evaluate_cutoffs
from indexer.quality.tiny_clip_training import ensure_world_and_model


def print_report(report: CutoffReport) -> None:
    print(f"\nbest flat threshold on the train queries: min_score={report.threshold:.3f}")
    print("split | queries | kind | cutoff | precision | recall | F1 | empty, relevant in top 5")
    print("--- | --- | --- | --- | --- | --- | --- | ---")
    for row in report.rows:
        q = row.quality
        print(
            f"{row.split} | {row.queries} | {row.kind} | {row.method} | {q.precision:.3f}"
            f" | {q.recall:.3f} | {q.f1:.3f} | {'yes' if q.empty_with_relevant_top5 else 'no'}"
        )
    auto, flat = report.held_out("auto"), report.held_out("global")
    print(
        f"\nheld-out mean F1: auto {auto.f1:.3f}, flat {flat.f1:.3f}, gap {auto.f1 - flat.f1:+.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_cache = os.environ.get("PIXSEEK_TEST_CACHE") or (
        Path(tempfile.gettempdir()) / "pixseek-world-cache"
    )
    parser.add_argument("--cache", type=Path, default=Path(default_cache))
    parser.add_argument(
        "--fraction", type=float, default=None, help="auto's tunable (default: its own)"
    )
    args = parser.parse_args()
    _, model_dir = ensure_world_and_model(args.cache, progress=print)
    started = time.perf_counter()
    report = evaluate_cutoffs(args.cache, model_dir, fraction=args.fraction)
    print_report(report)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
