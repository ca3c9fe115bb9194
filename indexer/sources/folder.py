"""Folders, walked recursively: skips hidden and system folders (`.git`, `@eaDir`,
`$RECYCLE.BIN`, ...), goes by extension (case-insensitive), never follows a symbolic link to a
folder unless asked, and when asked never loops (each real folder is visited once). Without
following, a linked file is indexed only when it resolves inside the root. Only regular files
are yielded: a folder named `x.jpg` is walked, and a FIFO or device named like an image is
skipped (reading it could block forever)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from indexer.records import FoundFile, UnchangedCheck
from indexer.sources.sidecars import Sidecars, found_file, sidecar_suffix, sidecars_beside
from search.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "SYSTEM_FOLDERS", "is_image_name", "iter_image_files"]

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
    }
)
SYSTEM_FOLDERS = frozenset(
    {
        "@eaDir",
        "$RECYCLE.BIN",
        "System Volume Information",
        "lost+found",
        "__MACOSX",
        "node_modules",
    }
)


def is_image_name(name: str) -> bool:
    """True for a file name with an image extension (any case); contents are not looked at."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _skip_folder(name: str) -> bool:
    return name.startswith(".") or name in SYSTEM_FOLDERS


def _links_outside(entry: os.DirEntry[str], inside: str, follow_symlinks: bool) -> bool:
    """True for a link, not followed, that resolves outside the collection: not ours to read."""
    return (
        entry.is_symlink()
        and not follow_symlinks
        and not os.path.realpath(entry.path).startswith(inside)
    )


def _folder_sidecars(
    entries: list[os.DirEntry[str]], inside: str, follow_symlinks: bool
) -> dict[str, Sidecars]:
    """{stem: sidecars} for the sidecar files among one folder's entries."""
    by_stem: dict[str, Sidecars] = {}
    for entry in entries:
        suffix = sidecar_suffix(entry.name)
        if suffix is None:
            continue
        try:
            if _links_outside(entry, inside, follow_symlinks):
                continue
        except OSError:
            continue
        by_stem.setdefault(os.path.splitext(entry.name)[0], {}).setdefault(suffix, entry.path)
    return by_stem


class _Walk:
    """One walk of a folder tree: real folders visited once each, links judged against the
    resolved root."""

    def __init__(self, root: Path, follow_symlinks: bool, is_unchanged: UnchangedCheck | None):
        self.follow_symlinks = follow_symlinks
        self.is_unchanged = is_unchanged
        self.inside = os.path.join(os.path.realpath(root), "")  # links resolve: compare resolved
        self.seen: set[tuple[int, int]] = set()

    def entries(self, folder: Path) -> list[os.DirEntry[str]] | None:
        """The folder's entries sorted by name; None when visited already or unreadable."""
        try:
            folder_stat = folder.stat()
            if (folder_stat.st_dev, folder_stat.st_ino) in self.seen:
                return None
            self.seen.add((folder_stat.st_dev, folder_stat.st_ino))
            return sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return None  # unreadable folder: nothing to index inside it

    def is_subfolder(self, entry: os.DirEntry[str]) -> bool:
        return entry.is_dir(follow_symlinks=self.follow_symlinks)

    def image_stat(self, entry: os.DirEntry[str]) -> os.stat_result | None:
        """The stat of an image file this walk indexes; None for anything else."""
        if not is_image_name(entry.name) or _links_outside(
            entry, self.inside, self.follow_symlinks
        ):
            return None
        return entry.stat() if entry.is_file() else None

    def files(self, folder: Path, subfolders: list[Path]) -> Iterator[FoundFile]:
        """The images directly in `folder`; its subfolders to walk are appended to `subfolders`."""
        entries = self.entries(folder)
        if entries is None:
            return
        try:
            sidecars = _folder_sidecars(entries, self.inside, self.follow_symlinks)
        except OSError:
            return
        for entry in entries:
            try:
                if self.is_subfolder(entry):
                    if not _skip_folder(entry.name):
                        subfolders.append(Path(entry.path))
                    continue
                file_stat = self.image_stat(entry)
            except OSError:
                continue
            if file_stat is not None:
                own = sidecars.get(os.path.splitext(entry.name)[0], {})
                yield found_file(
                    Path(entry.path), file_stat.st_size, file_stat.st_mtime, own, self.is_unchanged
                )


def iter_image_files(
    root: Path, *, follow_symlinks: bool = False, is_unchanged: UnchangedCheck | None = None
) -> Iterator[FoundFile]:
    """Every image file under `root` (or `root` itself when it is a file), sorted per folder,
    with its sidecar caption and metadata (not read when `is_unchanged` says so)."""
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise InputError(f"{root} does not exist. Give a folder of images or an image file.")
    if root.is_file():
        root_stat = root.stat()
        yield found_file(
            root, root_stat.st_size, root_stat.st_mtime, sidecars_beside(root), is_unchanged
        )
        return
    walk = _Walk(root, follow_symlinks, is_unchanged)
    stack = [root]
    while stack:
        subfolders: list[Path] = []
        yield from walk.files(stack.pop(), subfolders)
        stack.extend(reversed(subfolders))
