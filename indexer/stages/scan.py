"""Scan: every image file the run's inputs name (folders, files, shards, `--from-list`).

The scan asks `is_unchanged` before reading an item's sidecars, so files the catalog holds
unchanged cost a `stat` (or a tar header) and nothing more."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.options import IndexOptions
from indexer.records import FoundFile, UnchangedCheck
from indexer.sources import iter_file_list, iter_sources

__all__ = ["scan"]


def scan(
    roots: Iterable[Path], options: IndexOptions, is_unchanged: UnchangedCheck
) -> Iterator[FoundFile]:
    """The files under `roots` (already expanded), then those of `options.from_list`."""
    yield from iter_sources(
        roots, follow_symlinks=options.follow_symlinks, is_unchanged=is_unchanged
    )
    if options.from_list is not None:
        yield from iter_file_list(options.from_list, is_unchanged=is_unchanged)
