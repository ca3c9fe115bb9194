"""The `pixseek` command line. Each command parses its flags, builds `Settings`, calls one
function in `indexer` or `search`, and prints the result (a Rich table, or JSON with --json).
Errors meant for users (`PixseekError`) are caught once, here, and printed as one sentence."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from search.errors import PixseekError
from search.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="pixseek",
    help="Index folders of photos with CLIP and search them by text or by example image.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Manage the catalog database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

stdout = Console()
stderr = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _reports_errors(func: F) -> F:
    """Turn `PixseekError` into a one-line message on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PixseekError as exc:
            stderr.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("[yellow]Interrupted.[/] Run the same command again to resume.")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _global_options(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory [env: PIXSEEK_DATA_DIR].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Catalog database URL [env: PIXSEEK_DATABASE_URL]; default SQLite.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N [env: PIXSEEK_DEVICE].")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show library log messages.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, stream=sys.stderr)
    if not verbose:  # a writer lock taken over from a dead process is said, not hidden
        logging.getLogger("search.storage.collection_store").setLevel(logging.WARNING)
        # psycopg sets its own logger to WARNING; its notes on a dropped connection would come
        # on top of the one sentence that says what happened and what to do (-v shows them)
        logging.getLogger("psycopg").setLevel(logging.ERROR)
    overrides = {"data_dir": data_dir, "database_url": database_url, "device": device}
    ctx.obj = {key: value for key, value in overrides.items() if value is not None}


def _settings(ctx: typer.Context, **overrides: Any) -> Settings:
    values = dict(ctx.obj or {})
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return Settings(**values)
    except Exception as exc:  # pydantic ValidationError: name the setting and the bad value
        raise typer.BadParameter(str(exc)) from exc


def _open_catalog(settings: Settings):  # type: ignore[no-untyped-def]
    from search.catalog import open_catalog

    url = settings.resolved_database_url()
    return open_catalog(url, upgrade=url.startswith("sqlite"))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


@app.command()
@_reports_errors
def index(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Folders (searched recursively) or image files.")] = None,
    collection: Annotated[str, typer.Option(help="Collection to index into (created on first use).")] = "default",
    model: Annotated[
        str | None,
        typer.Option(help="Encoder SPEC for a new collection: preset, MODEL/PRETRAINED, local-dir:PATH, ... "
                     "[env: PIXSEEK_MODEL]"),
    ] = None,
    from_list: Annotated[Path | None, typer.Option(help="Also index the files listed in this file, one per line.")] = None,
    prune: Annotated[bool, typer.Option(help="Remove catalog entries of files no longer under PATH.")] = True,
    follow_symlinks: Annotated[bool, typer.Option(help="Follow symbolic links to folders.")] = False,
    batch_size: Annotated[int | None, typer.Option(help="Images per encoder batch [env: PIXSEEK_BATCH_SIZE].")] = None,
    workers: Annotated[int | None, typer.Option(help="Decode worker processes; 0 decodes in-process.")] = None,
    jpeg_decode: Annotated[
        str | None,
        typer.Option(help="Where JPEGs are decoded: auto (GPU when the model runs on CUDA), workers (CPU "
                     "processes), device (the model's device) [env: PIXSEEK_JPEG_DECODE]."),
    ] = None,
    captions: Annotated[bool, typer.Option("--captions", help="Then caption images that have no caption "
                                           "[PIXSEEK_CAPTIONER].")] = False,
    tags: Annotated[bool | None, typer.Option("--tags/--no-tags", help="Zero-shot tags at index time "
                                              "[env: PIXSEEK_TAGS, default on].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
) -> None:
    """Index images: find, decode, embed and store them; re-running only embeds what changed."""
    from indexer.jobs import job_args, run_index_job
    from search.catalog.schema import JobState

    if not paths and from_list is None:
        raise typer.BadParameter("give at least one PATH or --from-list FILE")
    settings = _settings(ctx, batch_size=batch_size, workers=workers, tags=tags, jpeg_decode=jpeg_decode)
    catalog = _open_catalog(settings)
    progress = Progress(
        TextColumn("[bold]Embedding"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=stderr,
        transient=as_json,
    )
    task = progress.add_task("embed", total=None, rate="")

    def on_progress(done: int, total: int, _failed: int) -> None:
        progress.update(task, completed=done, total=total)
        speed = progress.tasks[task].speed
        progress.update(task, rate=f"{speed:.1f} img/s" if speed else "")

    try:
        job_id = catalog.create_job("index", job_args(paths or [], collection, model, from_list),
                                    state=JobState.RUNNING)
        with progress:
            report = run_index_job(
                settings, catalog, job_id, paths=paths or [], collection=collection, model_spec=model or None,
                from_list=from_list, prune=prune, follow_symlinks=follow_symlinks, progress=on_progress,
            )
        captioned = _run_captioning(settings, catalog, collection, 8, transient=as_json) if captions else None
    finally:
        catalog.close()
    if as_json:
        summary = report.as_json()
        if captioned is not None:
            summary["captions"] = captioned.as_json()
        _print_json(summary)
        return
    summary = Table(title=f"Collection {report.collection!r}", show_header=False)
    for label, value in (
        ("seen", report.seen), ("indexed", report.indexed), ("unchanged", report.unchanged),
        ("failed", report.failed), ("removed", report.removed),
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


@app.command()
@_reports_errors
def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="What to look for, in plain words.")] = None,
    image: Annotated[Path | None, typer.Option(help="Search by this example image instead of text.")] = None,
    k: Annotated[int, typer.Option(help="Number of results.")] = 10,
    collection: Annotated[str | None, typer.Option(help="Search only this collection (default: all).")] = None,
    model: Annotated[str | None, typer.Option(help="Query encoder SPEC; must match the index's encoder.")] = None,
    dedupe: Annotated[bool, typer.Option(help="Collapse near-duplicate images into their best hit.")] = False,
    mode: Annotated[str, typer.Option(help="vector (CLIP), text (captions, tags, file names) or hybrid "
                                      "(reciprocal-rank fusion of both).")] = "vector",
    rerank: Annotated[bool, typer.Option(help="Reorder the top candidates with the BLIP/BLIP-2 ITM model "
                                         "[env: PIXSEEK_RERANKER].")] = False,
    rerank_k: Annotated[int | None, typer.Option(help="How many candidates to rerank (default 128 on CUDA, "
                                                 "16 on CPU).")] = None,
    tag: Annotated[str | None, typer.Option(help="Only images tagged with this label.")] = None,
    reranker: Annotated[str | None, typer.Option(help="Reranker SPEC (preset, repo id, local-dir:PATH).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"results\": [...]} as JSON.")] = False,
) -> None:
    """Search by text (QUERY) or by an example image (--image)."""
    from search.query.engine import SearchEngine
    from search.errors import InputError

    if (query is None) == (image is None):
        raise typer.BadParameter("give either a QUERY or --image PATH (not both)")
    if image is not None and (rerank or mode != "vector"):
        raise typer.BadParameter("--rerank and --mode apply to text queries, not --image")
    settings = _settings(ctx, reranker=reranker)
    catalog = _open_catalog(settings)
    try:
        engine = SearchEngine(settings, catalog)
        if image is not None:
            try:
                data = image.read_bytes()
            except OSError as exc:
                raise InputError(f"Cannot read --image {image}: {exc.strerror or exc}.") from exc
            response = engine.search_image_bytes(data, k=k, collection=collection, source=str(image),
                                                 dedupe=dedupe, tag=tag)
        else:
            response = engine.search_text(query or "", k=k, collection=collection, model=model, dedupe=dedupe,
                                          mode=mode, rerank=rerank, rerank_k=rerank_k, tag=tag)
    finally:
        catalog.close()
    if as_json:
        _print_json(response.model_dump())
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", justify="right")
    table.add_column("path", overflow="fold")
    if rerank:
        table.add_column("clip", justify="right")
    for rank, result in enumerate(response.results, 1):
        extra = [f"{result.clip_score:.4f}"] if rerank else []
        table.add_row(str(rank), f"{result.score:.4f}", str(result.id), result.path, *extra)
    stdout.print(table)


@app.command()
@_reports_errors
def caption(
    ctx: typer.Context,
    collection: Annotated[str | None, typer.Option(help="Only this collection (default: all).")] = None,
    captioner: Annotated[str | None, typer.Option(help="Captioner SPEC: preset, repo id or local-dir:PATH "
                                                  "[env: PIXSEEK_CAPTIONER].")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per generation batch.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write captions for indexed images that have none (resumable)."""
    settings = _settings(ctx, captioner=captioner)
    catalog = _open_catalog(settings)
    try:
        report = _run_captioning(settings, catalog, collection, batch_size, transient=as_json)
    finally:
        catalog.close()
    if as_json:
        _print_json(report.as_json())
    else:
        stdout.print(f"Captioned {report.captioned} images with {report.model_id} in {report.seconds:.1f} s"
                     + (f" ({report.unreadable} unreadable)" if report.unreadable else ""), highlight=False)


def _run_captioning(settings: Settings, catalog: Any, collection: str | None, batch_size: int,
                    transient: bool) -> Any:
    from indexer.enrich.captions import caption_images

    progress = Progress(TextColumn("[bold]Captioning"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=stderr, transient=transient)
    task = progress.add_task("caption", total=None)
    with progress:
        return caption_images(settings, catalog, collection=collection, batch_size=batch_size,
                              progress=lambda done, total: progress.update(task, completed=done, total=total))


@app.command()
@_reports_errors
def ask(
    ctx: typer.Context,
    image_id: Annotated[int, typer.Argument(help="Catalog id of the image (see search results).")],
    question: Annotated[str, typer.Argument(help="The question, e.g. 'what colour is the car?'")],
    captioner: Annotated[str | None, typer.Option(help="Captioner/VQA SPEC [env: PIXSEEK_CAPTIONER].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"answer\": ...} as JSON.")] = False,
) -> None:
    """Ask a question about one image (BLIP-2 "Question: ... Answer:")."""
    from search.query.engine import SearchEngine

    settings = _settings(ctx, captioner=captioner)
    catalog = _open_catalog(settings)
    try:
        result = SearchEngine(settings, catalog).ask(image_id, question)
    finally:
        catalog.close()
    if as_json:
        _print_json(result.model_dump())
    else:
        stdout.print(result.answer, highlight=False)


@app.command()
@_reports_errors
def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Counts of images, vectors and the encoder for the data directory."""
    from search.query.engine import SearchEngine

    settings = _settings(ctx)
    catalog = _open_catalog(settings)
    try:
        result = SearchEngine(settings, catalog).stats()
    finally:
        catalog.close()
    if as_json:
        _print_json(result.model_dump())
        return
    table = Table(show_header=True, header_style="bold", title=str(settings.data_dir))
    for column in ("collection", "images", "embedded", "failed", "pending", "vectors", "model"):
        table.add_column(column)
    for c in result.collections:
        table.add_row(c.name, str(c.images), str(c.embedded), str(c.failed), str(c.pending),
                      str(c.index_vectors), c.model_id)
    stdout.print(table)


@app.command()
@_reports_errors
def dupes(
    ctx: typer.Context,
    threshold: Annotated[float, typer.Option(help="Cosine similarity at or above which images count as "
                                             "near-duplicates.")] = 0.95,
    collection: Annotated[str | None, typer.Option(help="Only this collection (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"groups\": [...]} as JSON.")] = False,
) -> None:
    """List groups of near-identical images (found with the FAISS index)."""
    from search.query.engine import SearchEngine

    settings = _settings(ctx)
    catalog = _open_catalog(settings)
    try:
        result = SearchEngine(settings, catalog).duplicates(threshold=threshold, collection=collection)
    finally:
        catalog.close()
    if as_json:
        _print_json(result.model_dump())
        return
    if not result.groups:
        stdout.print(f"No near-duplicates at similarity >= {threshold}.")
    for number, group in enumerate(result.groups, 1):
        stdout.print(f"[bold]Group {number}[/] ({len(group.ids)} images, similarity >= {group.similarity:.3f}, "
                     f"collection {group.collection})", highlight=False)
        for path in group.paths:
            stdout.print(f"  {path}", highlight=False, soft_wrap=True)


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise typer.BadParameter(f"--k {text!r}: expected comma-separated integers such as 1,5,10") from None
    if not ks or ks[0] < 1:
        raise typer.BadParameter("--k values must be positive integers")
    return ks


@app.command("eval")
@_reports_errors
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help="JSONL of {\"image\", \"caption\"} lines, or a Karpathy "
                                            "dataset_*.json (with --images).")],
    model: Annotated[str | None, typer.Option(help="Encoder SPEC to evaluate [env: PIXSEEK_MODEL].")] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated K values for Recall@K.")] = "1,5,10",
    images: Annotated[Path | None, typer.Option(help="Image folder of a Karpathy-style dataset file.")] = None,
    split: Annotated[str, typer.Option(help="Split of a Karpathy-style dataset file.")] = "test",
    mode: Annotated[list[str] | None, typer.Option(help="Search mode(s) to measure (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure text->image and image->text Recall@K through pixseek's own index and search."""
    from indexer.quality.eval_datasets import load_eval_dataset
    from indexer.quality.evaluation import evaluate_retrieval

    ks = _parse_ks(k)
    settings = _settings(ctx)
    data = load_eval_dataset(dataset, images_dir=images, split=split)
    results = evaluate_retrieval(
        data, model_spec=model or settings.model, data_dir=settings.data_dir / "eval", ks=ks,
        modes=mode or ["vector"], device=settings.device,
        progress=None if as_json else (lambda message: stderr.print(f"[dim]{message}[/]")),
    )
    if as_json:
        _print_json(results[0].as_json() if len(results) == 1 else {"modes": [r.as_json() for r in results]})
        return
    table = Table(title=f"{data.name}: {len(data.images)} images, {len(data.captions)} captions "
                  "(t2i = text->image, i2t = image->text, recall in %)", header_style="bold")
    table.add_column("mode")
    for direction in ("t2i", "i2t"):
        for value in ks:
            table.add_column(f"{direction} R@{value}", justify="right")
    table.add_column("ms/query", justify="right")
    for result in results:
        table.add_row(result.mode, *[f"{100 * v:.2f}" for v in result.t2i.values()],
                      *[f"{100 * v:.2f}" for v in result.i2t.values()], f"{result.ms_per_query:.1f}")
    stdout.print(table)


@app.command()
@_reports_errors
def demo(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Option("--dir", help="Where the world, the model and the demo index go.")] = Path(
        "pixseek-demo"),
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the demo index afterwards.")] = True,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Offline demo: train a tiny CLIP on a synthetic world, index its test split, search it."""
    from indexer.quality.demo import run_demo

    settings = _settings(ctx)
    result = run_demo(folder, device=settings.device, progress=lambda m: stderr.print(f"[dim]{m}[/]"))
    report = result.report
    stdout.print(f"Indexed {report.indexed} new images ({report.unchanged} unchanged) of the held-out split "
                 f"with model {result.model_spec}", highlight=False, soft_wrap=True)
    for query, expected, response in result.examples:
        stdout.print(f"\n[bold]{query}[/]", highlight=False)
        for rank, hit in enumerate(response.results, 1):
            mark = "[green]<- the captioned image[/]" if hit.path == expected else ""
            stdout.print(f"  {rank}. {hit.score:.3f}  {hit.path} {mark}", highlight=False, soft_wrap=True)
    stdout.print(f"\nEvaluate it: pixseek eval {result.world_dir / 'test.jsonl'} --model {result.model_spec}",
                 highlight=False, soft_wrap=True)
    if serve_after:
        import uvicorn

        from web.app import create_app

        stderr.print(f"Serving the demo at http://{host}:{port}/ (Ctrl+C to stop)")
        uvicorn.run(create_app(result.settings), host=host, port=port, log_level="warning")


@app.command()
@_reports_errors
def jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="Show the newest N jobs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
) -> None:
    """List indexing jobs (from the CLI and the API), newest first."""
    from search.job_schemas import JobResponse

    settings = _settings(ctx)
    catalog = _open_catalog(settings)
    try:
        listed = [JobResponse.from_info(job) for job in catalog.list_jobs(limit)]
    finally:
        catalog.close()
    if as_json:
        _print_json({"jobs": [job.model_dump(mode="json") for job in listed]})
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("id", "state", "collection", "done", "total", "failed", "img/s", "started", "error"):
        table.add_column(column)
    for job in listed:
        table.add_row(str(job.id), job.state, job.collection or "", str(job.done), str(job.total), str(job.failed),
                      f"{job.rate:.1f}" if job.rate else "", job.started_at.strftime("%Y-%m-%d %H:%M:%S")
                      if job.started_at else "", job.error or "")
    stdout.print(table)


@app.command()
@_reports_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the web page and the JSON API (docs at /docs)."""
    import uvicorn

    from web.app import create_app

    settings = _settings(ctx)
    application = create_app(settings)
    stderr.print(f"pixseek serving {settings.data_dir} at http://{host}:{port}/  (API docs: /docs)")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command()
@_reports_errors
def check(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory to check [env: PIXSEEK_DATA_DIR].")] = None,
    collection: Annotated[str | None, typer.Option(help="Check only this collection (default: all).")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed: rebuild the FAISS index, "
                                         "remove temp files, take over stale locks, re-queue lost vectors.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Verify that catalog, vector store and FAISS index agree; exit 1 while problems remain."""
    from search.storage.integrity import check_data_dir, require_catalog_exists

    settings = _settings(ctx, data_dir=data_dir)
    require_catalog_exists(settings)
    catalog = _open_catalog(settings)
    try:
        report = check_data_dir(settings, catalog, collection=collection, repair=repair)
    finally:
        catalog.close()
    if as_json:
        _print_json(report.as_json())
    else:
        table = Table(show_header=True, header_style="bold", title=report.data_dir)
        for column in ("collection", "images", "embedded", "failed", "pending", "vectors", "index"):
            table.add_column(column)
        for c in report.collections:
            table.add_row(c.name, str(c.images), str(c.embedded), str(c.failed), str(c.pending), str(c.vectors),
                          str(c.index_vectors))
        stdout.print(table)
        for c in report.collections:
            for finding in c.findings:
                _print_finding(finding, c.name)
        for finding in report.findings:
            _print_finding(finding, None)
        stdout.print("[green]OK:[/] catalog, vectors and index agree." if report.ok else
                     "[red]Problems remain[/]" + ("." if repair else "; pixseek check --repair fixes what it can."))
    if not report.ok:
        raise typer.Exit(1)


def _print_finding(finding: Any, collection: str | None) -> None:
    mark = "[green]repaired[/]" if finding.repaired else "[red]problem[/]" if finding.problem else "[dim]note[/]"
    where = f"{collection}: " if collection else ""
    stdout.print(f"{mark} {where}{finding.message}", highlight=False, soft_wrap=True)


@db_app.command("upgrade")
@_reports_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Bring the catalog schema to the newest revision (safe to run any time)."""
    from search.catalog import open_catalog

    settings = _settings(ctx)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    catalog.close()
    stdout.print("Catalog schema is up to date.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
