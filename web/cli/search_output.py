"""How `pixseek search` prints an answer: a Rich table (or JSON with --json), the same for a
local search and one a server answered, since both arrive as the same models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from web.cli.common import print_json, stdout

if TYPE_CHECKING:
    from search.schemas import FacetsResponse
    from web.responses import SearchResponse

__all__ = ["print_facets", "print_search"]


def print_search(response: SearchResponse, *, as_json: bool, show_clip: bool) -> None:
    """The results; with a next page, the --cursor that fetches it."""
    if as_json:
        print_json(response.model_dump(mode="json"))
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", justify="right")
    table.add_column("path", overflow="fold")
    if show_clip:  # reranked: the score is the ITM probability, show the first stage's too
        table.add_column("clip", justify="right")
    show_taken = any(result.taken_at is not None for result in response.results)
    if show_taken:
        table.add_column("taken")
    for rank, result in enumerate(response.results, 1):
        row = [str(rank), f"{result.score:.4f}", str(result.id), result.path]
        if show_clip:
            row.append(f"{result.clip_score:.4f}")
        if show_taken:
            taken = result.taken_at
            row.append(taken.isoformat(sep=" ", timespec="minutes") if taken else "")
        table.add_row(*row)
    stdout.print(table)
    if response.cutoff_score is not None:
        stdout.print(f"Cut at score {response.cutoff_score:.4f}.", highlight=False)
    if response.next_cursor is not None:
        stdout.print(
            f"{len(response.results)} results (total {response.total}), next page: "
            f"--cursor {response.next_cursor}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def print_facets(facets: FacetsResponse, *, as_json: bool) -> None:
    """How many images match the filters, and how they split by collection, year, camera,
    tag and file type."""
    if as_json:
        print_json(facets.model_dump(mode="json"))
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("facet")
    table.add_column("value", overflow="fold")
    table.add_column("images", justify="right")
    groups = {
        "collection": facets.collections,
        "year": facets.years,
        "camera": facets.cameras,
        "tag": facets.tags,
        "file type": facets.file_types,
    }
    for name, counts in groups.items():
        for count in counts:
            table.add_row(name, count.value, str(count.count))
    stdout.print(f"{facets.total} images match.", highlight=False)
    if table.row_count:
        stdout.print(table)
