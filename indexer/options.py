"""What one indexing run is asked to do, besides the paths: `IndexOptions`.

Settings (`search.settings.Settings`) say how this machine indexes (batch size, decode workers,
where JPEGs are decoded, tags on or off); these options say what this one run does. They are
kept apart so a job, the CLI, `pixseek eval` and the demo can each describe a run in one value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IndexOptions", "ProgressCallback", "StopCheck"]

ProgressCallback = Callable[[int, int, int], None]  # (done, total, failed) of the images to embed
StopCheck = Callable[[], bool]  # True: stop at the next batch boundary (the run is `cancelled`)


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """One run's choices. `save_every=None` takes `Settings.index_save_seconds`; `job_id` binds
    the run to its job row (and lets it fail jobs a dead writer left `running`)."""

    collection: str = "default"
    model_spec: str | None = None  # encoder SPEC of a new collection; must match an existing one
    from_list: Path | None = None  # also index the files listed here, one per line
    prune: bool = True  # remove rows of files no longer under the scanned folders and shards
    follow_symlinks: bool = False
    progress: ProgressCallback | None = None
    should_stop: StopCheck | None = None
    save_every: float | None = None  # seconds between FAISS saves while embedding
    job_id: int | None = None

    def stop_requested(self) -> bool:
        return self.should_stop is not None and self.should_stop()
