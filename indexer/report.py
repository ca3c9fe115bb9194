"""What one indexing run did: `IndexReport`, filled in stage by stage and returned by
`indexer.pipeline.index_paths` (the CLI prints it, jobs store its counts and failures)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from search.catalog.records import FailedImage
from search.images.failures import failure_kind

__all__ = ["MAX_FAILURES_KEPT", "IndexReport"]

MAX_FAILURES_KEPT = 100  # (path, reason) pairs a report lists; the counts cover every failure


@dataclass
class IndexReport:
    """What one run did. `seen` = `indexed` + `unchanged` + `failed` (files found this run)."""

    collection: str
    seen: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    reused: int = 0
    tagged: int = 0  # images tagged after embedding (those the embedding batches could not tag)
    metadata_backfilled: int = 0  # older rows given taken time, camera, file type (no re-embed)
    seconds: float = 0.0
    cancelled: bool = False
    jpeg_decode: str | None = None  # where JPEGs were decoded (workers, device); None: none were
    failure_reasons: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), the first 100

    @property
    def rate(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def add_failures(self, failed: Sequence[FailedImage], shown_path: Callable[[int], str]) -> None:
        """Count failed images by kind of reason, listing the first ones by `shown_path(id)`."""
        self.failed += len(failed)
        self.failure_reasons.update(failure_kind(reason) for _, reason in failed)
        room = MAX_FAILURES_KEPT - len(self.failures)
        if failed and room > 0:
            listed = failed[:room]
            self.failures += [(shown_path(image_id), reason) for image_id, reason in listed]

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "seen": self.seen,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "removed": self.removed,
            "reused": self.reused,
            "tagged": self.tagged,
            "metadata_backfilled": self.metadata_backfilled,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 2),
            "cancelled": self.cancelled,
            "jpeg_decode": self.jpeg_decode,
            "failure_reasons": dict(self.failure_reasons.most_common()),
            # which files: the first MAX_FAILURES_KEPT; `pixseek failures` lists them all
            "failed_files": [{"path": path, "reason": reason} for path, reason in self.failures],
            "failed_files_truncated": self.failed > len(self.failures),
        }
