"""`pixseek eval` (Recall@K through pixseek's own index and search) and `pixseek demo` (a tiny
CLIP trained offline on a synthetic world, indexed and searched)."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from web.cli.common import print_json, reports_errors, settings_from, stderr, stdout
from web.cli.serve import Host, Port, serve_settings

if TYPE_CHECKING:
    from indexer.quality.demo import DemoRun
    from indexer.quality.evaluation import EvalResult

__all__ = ["demo", "evaluate"]


def parse_ks(text: str) -> list[int]:
    """`--k 1,5,10` as sorted distinct positive integers."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise typer.BadParameter(
            f"--k {text!r}: expected comma-separated integers such as 1,5,10"
        ) from None
    if not ks or ks[0] < 1:
        raise typer.BadParameter("--k values must be positive integers")
    return ks


@reports_errors
def evaluate(
    ctx: typer.Context,
    dataset: Annotated[
        Path,
        typer.Argument(
            help='JSONL of {"image", "caption"} lines, or a '
            "Karpathy dataset_*.json (with --images)."
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Encoder SPEC to evaluate (default: the 'default' preset; env PIXSEEK_MODEL).",
            show_default=False,
        ),
    ] = None,
    k: Annotated[
        str, typer.Option("--k", help="Comma-separated K values for Recall@K.")
    ] = "1,5,10",
    images: Annotated[
        Path | None,
        typer.Option(
            help="Image folder of a Karpathy-style dataset file (default: none, for JSONL).",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of a Karpathy-style dataset file.")] = "test",
    mode: Annotated[
        list[str] | None,
        typer.Option(
            help="Search mode to measure; repeat it for several (default: vector).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure text->image and image->text Recall@K through pixseek's own index and search."""
    from indexer.quality.eval_datasets import load_eval_dataset
    from indexer.quality.evaluation import evaluate_retrieval

    ks = parse_ks(k)
    settings = settings_from(ctx)
    data = load_eval_dataset(dataset, images_dir=images, split=split)
    results = evaluate_retrieval(
        data,
        model_spec=model or settings.model,
        data_dir=settings.data_dir / "eval",
        ks=ks,
        modes=mode or ["vector"],
        device=settings.device,
        progress=None if as_json else (lambda message: stderr.print(f"[dim]{message}[/]")),
    )
    if as_json:
        print_json(
            results[0].as_json() if len(results) == 1 else {"modes": [r.as_json() for r in results]}
        )
        return
    title = (
        f"{data.name}: {len(data.images)} images, {len(data.captions)} captions "
        "(t2i = text->image, i2t = image->text, recall in %)"
    )
    _print_recall(title, ks, results)


def _print_recall(title: str, ks: list[int], results: list[EvalResult]) -> None:
    table = Table(title=title, header_style="bold")
    table.add_column("mode")
    for direction in ("t2i", "i2t"):
        for value in ks:
            table.add_column(f"{direction} R@{value}", justify="right")
    table.add_column("ms/query", justify="right")
    for result in results:
        table.add_row(
            result.mode,
            *[f"{100 * v:.2f}" for v in result.t2i.values()],
            *[f"{100 * v:.2f}" for v in result.i2t.values()],
            f"{result.ms_per_query:.1f}",
        )
    stdout.print(table)


@reports_errors
def demo(
    ctx: typer.Context,
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the world, the model and the demo index go.")
    ] = Path("pixseek-demo"),
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the demo index afterwards.")
    ] = True,
    host: Host = "127.0.0.1",
    port: Port = 8000,
) -> None:
    """Offline demo: train a tiny CLIP on a synthetic world, index its test split, search it."""
    from indexer.quality.demo import run_demo

    settings = settings_from(ctx)
    result = run_demo(
        folder, device=settings.device, progress=lambda m: stderr.print(f"[dim]{m}[/]")
    )
    report = result.report
    stdout.print(
        f"Indexed {report.indexed} new images ({report.unchanged} unchanged) of the "
        f"held-out split with model {result.model_spec}",
        highlight=False,
        soft_wrap=True,
    )
    for query, expected, response in result.examples:
        stdout.print(f"\n[bold]{query}[/]", highlight=False)
        for rank, hit in enumerate(response.results, 1):
            mark = "[green]<- the captioned image[/]" if hit.path == expected else ""
            stdout.print(
                f"  {rank}. {hit.score:.3f}  {hit.path} {mark}", highlight=False, soft_wrap=True
            )
    for line in _next_steps(result, host, port):
        stdout.print(line, highlight=False, soft_wrap=True, markup=False)
    if serve_after:
        serve_settings(result.settings, host, port)  # it says where, once it listens


def _shell_path(path: Path) -> str:
    """`path` as one types it here: relative to the working directory when inside it, quoted
    for the shell when it needs to be."""
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shlex.quote(shown)


def _pixseek_program() -> tuple[str, str]:
    """How to call this pixseek from the user's shell, and a note when it is not on PATH:
    `make demo` runs .venv/bin/pixseek without activating the virtual environment, and a
    newcomer typing `pixseek` afterwards would be told the command does not exist."""
    script = Path(sys.executable).parent / "pixseek"
    on_path = shutil.which("pixseek")
    if not script.is_file() or (on_path and Path(on_path).resolve() == script.resolve()):
        return "pixseek", ""
    program = _shell_path(script)
    activate = script.parent / "activate"
    if not activate.is_file():
        return program, f"pixseek is {program}"
    return program, (
        f"pixseek lives in {_shell_path(script.parent)}; `source {_shell_path(activate)}` puts "
        "it on PATH"
    )


def _next_steps(result: DemoRun, host: str, port: int) -> list[str]:
    """The exact commands that search the demo's index afterwards, every mode, and serve it."""
    program, note = _pixseek_program()
    base = f"{program} --data-dir {_shell_path(result.settings.data_dir)}"
    caption = shlex.quote(result.examples[0][0] if result.examples else "a red circle")
    serve = f"{base} serve" + (f" --host {host}" if host != "127.0.0.1" else "")
    serve += f" --port {port}" if port != 8000 else ""
    listing = _shell_path(result.world_dir / "test.jsonl")
    model = _shell_path(result.world_dir.parent / "model")
    return [
        "",
        "Search the demo from the command line" + (f" ({note}):" if note else ":"),
        f"  {base} search {caption}",
        f"  {base} search {caption} --mode hybrid    # CLIP and the captions",
        f"  {base} search 'circles on the left' --mode text    # the captions only",
        f"  {base} search 'a red shape' --tag red    # tags: colours, patterns, positions",
        f"  {serve}    # the search page at http://{host}:{port}/",
        f"Evaluate it: {program} eval {listing} --model local-dir:{model}",
    ]
