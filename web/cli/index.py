"""`pixseek index` (a run is a job in the catalog, like the API's) and `pixseek jobs`.

The options are listed in three groups, in this order: what to index, speed, captions and tags.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from web.cli.common import open_catalog_for, print_json, reports_errors, settings_from, stdout

if TYPE_CHECKING:
    from indexer.enrich.captions import CaptionReport
    from indexer.pipeline import IndexReport
    from search.settings import Settings

__all__ = ["index", "jobs"]

Paths = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Folders (searched recursively) or image files to index.",
        metavar="PATH",
        show_default=False,
    ),
]
Collection = Annotated[
    str, typer.Option(help="Collection to index into; it is created on first use.")
]
Model = Annotated[
    str | None,
    typer.Option(
        help="Encoder SPEC for a new collection: a preset, MODEL/PRETRAINED, local-dir:PATH, ... "
        "(default: the 'default' preset; env PIXSEEK_MODEL). An existing collection keeps its own.",
        show_default=False,
    ),
]
FromList = Annotated[
    Path | None,
    typer.Option(
        help="Also index the files listed in this file, one per line.", show_default=False
    ),
]
Prune = Annotated[
    bool, typer.Option(help="Remove the catalog entries of files no longer under a PATH.")
]
FollowSymlinks = Annotated[bool, typer.Option(help="Follow symbolic links to folders.")]
BatchSize = Annotated[
    int | None,
    typer.Option(
        help="Images per encoder batch (default: 32; env PIXSEEK_BATCH_SIZE).",
        show_default=False,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        help="Decode worker processes; 0 decodes in this process (default: one per CPU core; "
        "env PIXSEEK_WORKERS).",
        show_default=False,
    ),
]
JpegDecode = Annotated[
    str | None,
    typer.Option(
        help="Where JPEGs are decoded: workers (CPU processes), device (the model's device) or "
        "auto, which is device when the model runs on CUDA, else workers (default: auto; env "
        "PIXSEEK_JPEG_DECODE).",
        show_default=False,
    ),
]
Captions = Annotated[
    bool,
    typer.Option(
        "--captions",
        help="Then caption the images that have no caption, with the captioner of "
        "PIXSEEK_CAPTIONER (default: the 'default' preset).",
    ),
]
Tags = Annotated[
    bool | None,
    typer.Option(
        "--tags/--no-tags",
        help="Tag images zero-shot while indexing (default: --tags; env PIXSEEK_TAGS).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class IndexRun:
    """What one `pixseek index` indexes, and how (the settings say with what)."""

    paths: list[Path]
    collection: str
    model: str | None
    from_list: Path | None
    prune: bool
    follow_symlinks: bool
    captions: bool

    def job_args(self) -> dict[str, Any]:
        """The job's arguments as the catalog records them (`pixseek jobs` shows them)."""
        from indexer.jobs import job_args

        return job_args(self.paths, self.collection, self.model, self.from_list)


@reports_errors
def index(
    ctx: typer.Context,
    paths: Paths = None,
    collection: Collection = "default",
    model: Model = None,
    from_list: FromList = None,
    prune: Prune = True,
    follow_symlinks: FollowSymlinks = False,
    batch_size: BatchSize = None,
    workers: Workers = None,
    jpeg_decode: JpegDecode = None,
    captions: Captions = False,
    tags: Tags = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON summary object, with the files that failed and why."
        ),
    ] = False,
) -> None:
    """Index folders of images; a re-run embeds only what changed.

    Finds the images under each PATH, decodes, embeds and stores them, and tags them.
    """
    if not paths and from_list is None:
        raise typer.BadParameter(
            "neither a PATH nor --from-list FILE was given: give at least one of them"
        )
    settings = settings_from(
        ctx, batch_size=batch_size, workers=workers, tags=tags, jpeg_decode=jpeg_decode
    )
    run = IndexRun(
        paths or [], collection, model or None, from_list, prune, follow_symlinks, captions
    )
    report, captioned = _index(settings, run, transient=as_json)
    if as_json:
        summary = report.as_json()
        if captioned is not None:
            summary["captions"] = captioned.as_json()
        print_json(summary)
    else:
        _print_report(report)


def _index(
    settings: Settings, run: IndexRun, transient: bool
) -> tuple[IndexReport, CaptionReport | None]:
    """Run `run` as a job of its own, then caption if asked."""
    from indexer.jobs import run_index_job
    from search.catalog.schema import JobState
    from web.cli.progress import embedding_progress, run_captioning

    catalog = open_catalog_for(settings)
    try:
        job_id = catalog.create_job("index", run.job_args(), state=JobState.RUNNING)
        progress, on_progress = embedding_progress(transient)
        with progress:
            report = run_index_job(
                settings,
                catalog,
                job_id,
                paths=run.paths,
                collection=run.collection,
                model_spec=run.model,
                from_list=run.from_list,
                prune=run.prune,
                follow_symlinks=run.follow_symlinks,
                progress=on_progress,
            )
        captioned = (
            run_captioning(settings, catalog, run.collection, 8, transient=transient)
            if run.captions
            else None
        )
    finally:
        catalog.close()
    return report, captioned


def _print_report(report: IndexReport) -> None:
    summary = Table(title=f"Collection {report.collection!r}", show_header=False)
    for label, value in (
        ("seen", report.seen),
        ("indexed", report.indexed),
        ("unchanged", report.unchanged),
        ("failed", report.failed),
        ("removed", report.removed),
        ("time", f"{report.seconds:.1f} s ({report.rate:.1f} img/s)"),
    ):
        summary.add_row(label, str(value))
    stdout.print(summary)
    if report.failure_reasons:
        reasons = Table(title="Failures by reason", show_header=True)
        reasons.add_column("reason")
        reasons.add_column("files", justify="right")
        for reason, count in report.failure_reasons.most_common():
            reasons.add_row(reason, str(count))
        stdout.print(reasons)
        stdout.print(
            f"pixseek failures --collection {shlex.quote(report.collection)} lists the files "
            "and their reasons.",
            highlight=False,
            soft_wrap=True,
        )


@reports_errors
def jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many of the newest jobs to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
) -> None:
    """List indexing jobs (from the CLI and the API), newest first."""
    from search.job_schemas import JobResponse

    catalog = open_catalog_for(settings_from(ctx))
    try:
        listed = [JobResponse.from_info(job) for job in catalog.list_jobs(limit)]
    finally:
        catalog.close()
    if as_json:
        print_json({"jobs": [job.model_dump(mode="json") for job in listed]})
        return
    table = Table(show_header=True, header_style="bold")
    for column in (
        "id",
        "state",
        "collection",
        "done",
        "total",
        "failed",
        "img/s",
        "started",
        "error",
    ):
        table.add_column(column)
    for job in listed:
        started = job.started_at.strftime("%Y-%m-%d %H:%M:%S") if job.started_at else ""
        table.add_row(
            str(job.id),
            job.state,
            job.collection or "",
            str(job.done),
            str(job.total),
            str(job.failed),
            f"{job.rate:.1f}" if job.rate else "",
            started,
            job.error or "",
        )
    stdout.print(table)
