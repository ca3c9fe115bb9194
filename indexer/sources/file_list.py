"""File lists (`--from-list FILE`): files named one per line, relative paths relative to the
list, `#` comments and blank lines skipped; a listed `.tar` file is read as a WebDataset shard.
A name that is missing or not a regular file is skipped (lists are often made elsewhere)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from indexer.records import FoundFile, UnchangedCheck
from indexer.sources.shards import is_shard_path, iter_shard
from indexer.sources.sidecars import found_file, sidecars_beside
from search.errors import InputError

__all__ = ["iter_file_list"]


def _listed_paths(list_file: Path) -> Iterator[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read the file list {list_file}: {exc.strerror}.") from exc
    for line in lines:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        path = Path(name)
        yield path if path.is_absolute() else list_file.parent / path


def iter_file_list(
    list_file: Path, *, is_unchanged: UnchangedCheck | None = None
) -> Iterator[FoundFile]:
    """Files named one per line in `list_file` (relative paths are relative to the list), with
    their sidecars; a listed `.tar` file is read as a WebDataset shard."""
    for path in _listed_paths(list_file):
        try:
            file_stat = path.stat()
        except OSError:
            continue
        if not stat.S_ISREG(file_stat.st_mode):
            continue
        absolute = Path(os.path.abspath(path))
        if is_shard_path(absolute):
            yield from iter_shard(absolute, is_unchanged=is_unchanged)
        else:
            yield found_file(
                absolute,
                file_stat.st_size,
                file_stat.st_mtime,
                sidecars_beside(absolute),
                is_unchanged,
            )
