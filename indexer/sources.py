"""Finding the image files to index: folders (recursive) and file lists.

Skips hidden and system folders (`.git`, `@eaDir`, `$RECYCLE.BIN`, ...), goes by extension
(case-insensitive), never follows a symbolic link to a folder unless asked, and when asked
never loops (each real folder is visited once). Without following, a linked file is indexed only
when it resolves inside the root. Only regular files are yielded: a folder named `x.jpg` is
walked, and a FIFO or device named like an image is skipped (reading it could block forever).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from search.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "FoundFile", "iter_file_list", "iter_image_files", "is_image_name"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
SYSTEM_FOLDERS = frozenset(
    {"@eaDir", "$RECYCLE.BIN", "System Volume Information", "lost+found", "__MACOSX", "node_modules"}
)


@dataclass(frozen=True)
class FoundFile:
    path: Path
    size: int
    mtime: float


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _skip_folder(name: str) -> bool:
    return name.startswith(".") or name in SYSTEM_FOLDERS


def iter_image_files(root: Path, *, follow_symlinks: bool = False) -> Iterator[FoundFile]:
    """Every image file under `root` (or `root` itself when it is a file), sorted per folder."""
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise InputError(f"{root} does not exist. Give a folder of images or an image file.")
    if root.is_file():
        root_stat = root.stat()
        yield FoundFile(root, root_stat.st_size, root_stat.st_mtime)
        return
    inside = os.path.join(os.path.realpath(root), "")  # links resolve, so compare resolved paths
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            folder_stat = folder.stat()
            if (folder_stat.st_dev, folder_stat.st_ino) in seen:
                continue
            seen.add((folder_stat.st_dev, folder_stat.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:
            continue  # unreadable folder: nothing to index inside it
        subfolders = []
        for entry in reversed(entries):
            try:
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    if not _skip_folder(entry.name):
                        subfolders.append(Path(entry.path))
                    continue
                if not is_image_name(entry.name):
                    continue
                if entry.is_symlink() and not follow_symlinks:
                    target = os.path.realpath(entry.path)
                    if not target.startswith(inside):
                        continue  # a link out of the collection: not ours to index
                if not entry.is_file():
                    continue
                file_stat = entry.stat()
            except OSError:
                continue
            yield FoundFile(Path(entry.path), file_stat.st_size, file_stat.st_mtime)
        stack.extend(reversed(subfolders))


def iter_file_list(list_file: Path) -> Iterator[FoundFile]:
    """Files named one per line in `list_file` (relative paths are relative to the list)."""
    try:
        lines = list_file.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read the file list {list_file}: {exc.strerror}.") from exc
    for line in lines:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        path = Path(name)
        if not path.is_absolute():
            path = list_file.parent / path
        try:
            file_stat = path.stat()
        except OSError:
            continue
        if stat.S_ISREG(file_stat.st_mode):
            yield FoundFile(Path(os.path.abspath(path)), file_stat.st_size, file_stat.st_mtime)


def iter_sources(paths: Iterable[Path], *, follow_symlinks: bool = False) -> Iterator[FoundFile]:
    for path in paths:
        yield from iter_image_files(path, follow_symlinks=follow_symlinks)
