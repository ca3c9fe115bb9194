"""Progress bars on stderr for the long commands (stdout stays clean for `--json`)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from web.cli.common import stderr

if TYPE_CHECKING:
    from indexer.enrich.captions import CaptionReport
    from search.catalog import Catalog
    from search.settings import Settings

__all__ = ["embedding_progress", "run_captioning"]


class _EmbeddingBar(Progress):
    """The embed stage's bar, shown from the start (scanning a large folder and loading the
    model take a while). A run that fails before the indexer reports anything (weights
    missing, a path that does not exist) takes the empty "0/?" bar away with it, so its error
    message stands alone."""

    reported = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_type is None or self.reported:
            super().__exit__(exc_type, exc_val, exc_tb)
            return
        self.live.transient = True  # a terminal's bar is erased; a pipe never gets one
        self.live.stop()  # not Progress.stop, which ends a pipe's output with an empty line


def embedding_progress(transient: bool) -> tuple[Progress, Callable[[int, int, int], None]]:
    """A bar for the embed stage and the callback the indexer reports to (done, total, failed);
    `transient` (with --json) clears the bar when it ends."""
    progress = _EmbeddingBar(
        TextColumn("[bold]Embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
    )
    task = progress.add_task("embed", total=None, rate="")

    def on_progress(done: int, total: int, _failed: int) -> None:
        progress.reported = True
        progress.update(task, completed=done, total=total)
        speed = progress.tasks[task].speed
        progress.update(task, rate=f"{speed:.1f} img/s" if speed else "")

    return progress, on_progress


def run_captioning(
    settings: Settings, catalog: Catalog, collection: str | None, batch_size: int, transient: bool
) -> CaptionReport:
    """Caption the images that have none, with a bar (`pixseek caption`, `index --captions`)."""
    from indexer.enrich.captions import caption_images

    progress = Progress(
        TextColumn("[bold]Captioning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=transient,
    )
    task = progress.add_task("caption", total=None)
    with progress:
        return caption_images(
            settings,
            catalog,
            collection=collection,
            batch_size=batch_size,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
