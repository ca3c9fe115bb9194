"""The PATH arguments of `pixseek index` as given on the command line: existing paths and shard
patterns expanded, every image under them, and which catalog rows a scan of them may prune."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.records import FoundFile, UnchangedCheck
from indexer.sources.folder import iter_image_files
from indexer.sources.shards import is_shard_path, iter_shard
from search.errors import InputError
from search.images.paths import encode_path
from search.images.source import archive_member_path, split_archive_path

__all__ = ["PruneScope", "expand_inputs", "iter_sources", "source_roots_for_prune"]


def _expand_pattern(text: str) -> list[str]:
    """webdataset's expansion of a shard pattern: `{000..009}` and `{a,b}` braces, `${VAR}`
    from WDS_VAR, several patterns joined by `::`."""
    # Imported here, not at the top: webdataset imports torch, and plain paths do not need it.
    from webdataset.shardlists import expand_urls

    return list(expand_urls(text))


def _is_pattern(text: str) -> bool:
    return "{" in text or "${" in text or "::" in text


def expand_inputs(paths: Iterable[Path | str]) -> list[Path]:
    """The absolute paths that PATH arguments name: an existing path as it is; a brace pattern
    (`shards-{000..009}.tar`) expanded. Raises `InputError` naming what does not exist."""
    expanded: list[Path] = []
    for given in paths:
        text = os.fspath(given)
        names = [text] if os.path.lexists(text) or not _is_pattern(text) else _expand_pattern(text)
        for name in names:
            path = Path(os.path.abspath(name))
            if not path.exists():
                origin = "" if name == text else f" (from the pattern {text})"
                raise InputError(
                    f"{path}{origin} does not exist. Give folders, image files or WebDataset .tar "
                    "shards (brace patterns such as data/shards-{000..009}.tar) to index."
                )
            expanded.append(path)
    return expanded


def iter_sources(
    paths: Iterable[Path | str],
    *,
    follow_symlinks: bool = False,
    is_unchanged: UnchangedCheck | None = None,
) -> Iterator[FoundFile]:
    """Every image under the PATH arguments: folders, image files and `.tar` shards (or shard
    patterns). All arguments are checked before the first item is yielded."""
    for root in expand_inputs(paths):
        if is_shard_path(root):
            yield from iter_shard(root, is_unchanged=is_unchanged)
        else:
            yield from iter_image_files(
                root, follow_symlinks=follow_symlinks, is_unchanged=is_unchanged
            )


def source_roots_for_prune(paths: Iterable[Path | str]) -> list[str]:
    """Stored-path prefixes under which a row not seen by a scan of `paths` has vanished: a
    folder gives `folder/`, a shard `shard#`; a single image file gives none."""
    prefixes: list[str] = []
    for root in expand_inputs(paths):
        if is_shard_path(root):
            prefixes.append(archive_member_path(root, ""))
        elif root.is_dir():
            prefixes.append(encode_path(root).rstrip("/") + "/")
    return prefixes


class PruneScope:
    """Which unseen catalog rows a scan of `paths` may delete. A folder scan does not open the
    shards inside it, so members of a shard under a scanned folder are pruned by it only when
    the shard itself is gone; scanning the shard prunes its vanished members."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.prefixes = tuple(source_roots_for_prune(paths))
        self._shard_prefixes = tuple(p for p in self.prefixes if p.endswith("#"))
        self._shard_exists: dict[Path, bool] = {}

    def covers(self, stored: str) -> bool:
        """True when the row at `stored`, not seen by this scan, should be removed."""
        if not stored.startswith(self.prefixes):
            return False
        parts = split_archive_path(stored)
        if parts is None or stored.startswith(self._shard_prefixes):
            return True
        shard = parts[0]
        if shard not in self._shard_exists:
            self._shard_exists[shard] = os.path.isfile(shard)
        return not self._shard_exists[shard]
