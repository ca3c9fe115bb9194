"""The flags of `pixseek search`, and the `SearchRequest` they make.

Each `SearchOptions` field (search.schemas) has one flag of the same name (`date_from` is
`--date-from`), declared here with a help text for the terminal; `request_from_context` turns
whatever click parsed into the request by name, so a flag needs no code of its own beyond its
declaration. tests/test_cli_search_options.py fails when a `SearchOptions` field has no flag, or
a flag's choices differ from the field's.

The values are checked by `SearchRequest` (the one place the limits live), not here: a bad one
is the same sentence in the CLI and the API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

if TYPE_CHECKING:
    from search.schemas import SearchRequest

__all__ = [
    "DEFAULT_K",
    "AnyTag",
    "Camera",
    "Collection",
    "Cursor",
    "Cutoff",
    "DateFrom",
    "DateTo",
    "Dedupe",
    "FileType",
    "Folder",
    "HasCaption",
    "ImageId",
    "Images",
    "K",
    "Limit",
    "MaxHeight",
    "MaxMegapixels",
    "MaxWidth",
    "MinHeight",
    "MinMegapixels",
    "MinScore",
    "MinWidth",
    "Mode",
    "Model",
    "Orientation",
    "Query",
    "Rerank",
    "RerankK",
    "Reranker",
    "Sort",
    "Tag",
    "request_from_context",
]

DEFAULT_K = 10  # a terminal shows fewer results than a page


def _int(help_text: str) -> Any:
    return typer.Option(help=help_text, metavar="<int>", show_default=False)


def _float(help_text: str) -> Any:
    return typer.Option(help=help_text, metavar="<float>", show_default=False)


def _text(help_text: str, metavar: str = "<str>") -> Any:
    return typer.Option(help=help_text, metavar=metavar, show_default=False)


# -- what to look for ---------------------------------------------------------------------------
Query = Annotated[
    str | None,
    typer.Argument(
        help="What to look for, in plain words. Query arithmetic: terms joined by ' + ' and "
        "' - ', each optionally weighted 'W:', and id:N for a catalog image, e.g. "
        "'beach + 2:sunset - people'.",
        metavar="QUERY",
        show_default=False,
    ),
]
Images = Annotated[
    list[Path] | None,
    _text(
        "An example image file: alone, search by it; with QUERY or other --image files, each "
        "is one more +1 term of the query (repeatable).",
        "<path>",
    ),
]
ImageId = Annotated[int | None, _int("Find images like this catalog image (its id).")]

# -- how many, in which order ------------------------------------------------------------------
K = Annotated[
    int | None,
    _int(
        f"How many results in all (default: {DEFAULT_K}; with --min-score or --cutoff, every "
        "result above the cut)."
    ),
]
Limit = Annotated[
    int | None,
    _int(
        f"Results per page (default: all of --k, or {DEFAULT_K} with --min-score or --cutoff); "
        "the next page is printed as a --cursor to pass."
    ),
]
Cursor = Annotated[
    str | None, _text("The next page of the same search: the cursor the previous page printed.")
]
Sort = Annotated[
    Literal["relevance", "date_desc", "date_asc"],
    typer.Option(
        help="relevance (best first), or the results by taken date: date_desc (newest first) or "
        "date_asc."
    ),
]
MinScore = Annotated[
    float | None,
    _float("Keep only results whose CLIP cosine similarity is at least this (-1 to 1)."),
]
Cutoff = Annotated[
    Literal["auto"] | None,
    _text(
        "auto: keep the results that stand out from the collection's background for this query "
        "(a per-query cutoff).",
        "<auto>",
    ),
]

# -- how to search -----------------------------------------------------------------------------
Collection = Annotated[str | None, _text("Search only this collection (default: all).")]
Model = Annotated[
    str | None,
    _text("Query encoder SPEC; it must match the collection's own encoder, which is the default."),
]
Mode = Annotated[
    Literal["vector", "text", "hybrid"],
    typer.Option(
        help="vector (CLIP), text (captions, tags, file names) or hybrid (reciprocal-rank "
        "fusion of both)."
    ),
]
Dedupe = Annotated[bool, typer.Option(help="Collapse near-duplicate images into their best hit.")]
Rerank = Annotated[
    bool,
    typer.Option(
        help="Reorder the top candidates with the BLIP/BLIP-2 image-text matching model of "
        "--reranker."
    ),
]
RerankK = Annotated[
    int | None,
    _int("How many candidates to rerank (default: 128 on CUDA, 16 on CPU; env PIXSEEK_RERANK_K)."),
]
Reranker = Annotated[
    str | None,
    _text(
        "Reranker SPEC: a preset, a repo id or local-dir:PATH (default: the 'default' preset; "
        "env PIXSEEK_RERANKER). Searches locally: a server reranks with its own."
    ),
]

# -- exact metadata filters --------------------------------------------------------------------
Folder = Annotated[
    str | None,
    _text("Only images under this folder (as paths are shown in results), at any depth."),
]
DateFrom = Annotated[
    str | None,
    _text(
        "Only images taken on or after this day (ISO date, e.g. 2024-05-31): EXIF "
        "DateTimeOriginal, else the file's modification time.",
        "<date>",
    ),
]
DateTo = Annotated[
    str | None, _text("Only images taken on or before this day (ISO date, inclusive).", "<date>")
]
Camera = Annotated[
    str | None,
    _text("Only images whose EXIF camera make or model contains this text (any case)."),
]
Tag = Annotated[
    list[str] | None,
    _text("Only images with this zero-shot tag (repeatable: all of them)."),
]
AnyTag = Annotated[
    list[str] | None,
    _text("Only images with at least one of these zero-shot tags (repeatable)."),
]
MinWidth = Annotated[int | None, _int("Only images at least this many pixels wide.")]
MaxWidth = Annotated[int | None, _int("Only images at most this many pixels wide.")]
MinHeight = Annotated[int | None, _int("Only images at least this many pixels high.")]
MaxHeight = Annotated[int | None, _int("Only images at most this many pixels high.")]
MinMegapixels = Annotated[float | None, _float("Only images of at least this many megapixels.")]
MaxMegapixels = Annotated[float | None, _float("Only images of at most this many megapixels.")]
Orientation = Annotated[
    Literal["landscape", "portrait", "square"] | None,
    _text("Only landscape, portrait or square images (after EXIF rotation).", "<orientation>"),
]
FileType = Annotated[
    list[str] | None,
    _text(
        "Only this file type: jpeg, png, webp, gif, tiff, bmp or heif, as sniffed from the "
        "content (repeatable: any of them).",
        "<type>",
    ),
]
HasCaption = Annotated[
    bool | None,
    typer.Option(
        "--has-caption/--no-caption",
        help="Only images with a caption, or only those without one (default: both).",
        show_default=False,
    ),
]


def request_from_context(ctx: typer.Context) -> SearchRequest:
    """The `SearchRequest` of the parsed flags: each parameter named like a `SearchOptions`
    field and given on the command line is that field.

    Only given fields are set (`model_fields_set`: a default stays the engine's to choose), so
    a server receives exactly the options the user gave. Without --min-score or --cutoff, k
    defaults to `DEFAULT_K`; with one of them, the cut decides how many (pages of
    `DEFAULT_K`)."""
    from search.schemas import SearchOptions, parse_search_request

    values = {
        name: value
        for name, value in ctx.params.items()
        if name in SearchOptions.model_fields and _given(ctx, name) and value not in (None, [])
    }
    if isinstance(values.get("folder"), str) and values["folder"].strip():
        # results show absolute paths, and the filter matches them: `--folder .` means here
        values["folder"] = os.path.abspath(os.path.expanduser(values["folder"]))
    if "min_score" in values or "cutoff" in values:
        values.setdefault("limit", DEFAULT_K)
    else:
        values.setdefault("k", DEFAULT_K)
    return parse_search_request(**values)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the parameter came from the command line (or the environment), not a default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"
