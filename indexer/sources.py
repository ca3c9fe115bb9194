"""Finding the images to index: folders (recursive), file lists and WebDataset tar shards, each
with the caption and JSON metadata that sit beside it.

Folders: skips hidden and system folders (`.git`, `@eaDir`, `$RECYCLE.BIN`, ...), goes by
extension (case-insensitive), never follows a symbolic link to a folder unless asked, and when
asked never loops (each real folder is visited once). Without following, a linked file is indexed
only when it resolves inside the root. Only regular files are yielded: a folder named `x.jpg` is
walked, and a FIFO or device named like an image is skipped (reading it could block forever).

Shards: a PATH that names an uncompressed `.tar` file, or a brace pattern such as
`data/shards-{000..009}.tar` (expanded by webdataset's own shard-list expansion), is read as a
WebDataset shard. Members are grouped into samples by the WebDataset convention (key = member
path up to the first dot of the basename, webdataset's `base_plus_ext`); each sample with an
image member is one item, stored as `<shard>#<member>` (`search.images.source`). A scan reads
the tar headers and the small sidecar members only, never image data, so re-scanning a large
unchanged dataset costs one pass over its headers.

Sidecars: `x.txt` (a caption) and `x.json` (metadata, and a caption from its "caption" or
"text" field) beside `x.jpg` in a folder, or in the same sample of a shard, become the item's
initial caption and metadata. They are read only for items the caller does not already hold
unchanged (`is_unchanged`), so an unchanged shard is never read beyond its headers.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import InputError
from search.images.source import archive_member_path, split_archive_path
from search.images.paths import encode_path

__all__ = [
    "CAPTION_MAX_CHARS",
    "IMAGE_EXTENSIONS",
    "METADATA_MAX_BYTES",
    "SHARD_IMAGE_EXTENSIONS",
    "FoundFile",
    "PruneScope",
    "UnchangedCheck",
    "expand_inputs",
    "is_image_name",
    "is_shard_path",
    "iter_file_list",
    "iter_image_files",
    "iter_shard",
    "iter_sources",
    "parse_sidecars",
    "source_roots_for_prune",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
SHARD_IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"})
SYSTEM_FOLDERS = frozenset(
    {"@eaDir", "$RECYCLE.BIN", "System Volume Information", "lost+found", "__MACOSX", "node_modules"}
)
CAPTION_MAX_CHARS = 2000
METADATA_MAX_BYTES = 64 * 1024  # a larger .json sidecar is ignored (not read)
_CAPTION_READ_BYTES = 64 * 1024  # enough UTF-8 for CAPTION_MAX_CHARS after stripping
_SIDECAR_SUFFIXES = ("txt", "json")

UnchangedCheck = Callable[[str, int, float], bool]
"""(stored path, size, mtime) -> True when the catalog already holds that item unchanged."""


@dataclass(frozen=True)
class FoundFile:
    """One image found by a scan. For a shard member, `path` is the shard, `member` the member
    name, `size` the member's size and `mtime` the shard's."""

    path: Path
    size: int
    mtime: float
    member: str | None = None
    caption: str | None = None
    metadata: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def stored_path(self) -> str:
        """The catalog form of this item's location (`search.images.paths` / `search.images.source`)."""
        if self.member is None:
            return encode_path(self.path)
        return archive_member_path(self.path, self.member)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_shard_path(path: Path | str) -> bool:
    """True for a regular file whose name ends in `.tar` (any case)."""
    return os.fspath(path).lower().endswith(".tar") and os.path.isfile(path)


def _skip_folder(name: str) -> bool:
    return name.startswith(".") or name in SYSTEM_FOLDERS


# --- sidecars ---------------------------------------------------------------------------------


def _clean_text(text: str) -> str:
    return text.replace("\x00", "")  # PostgreSQL text cannot hold NUL


def _clean_json(value: Any) -> Any:
    """`value` with NUL removed from strings and keys (PostgreSQL JSON refuses them)."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def _caption_from(text: str | None) -> str | None:
    if text is None:
        return None
    caption = _clean_text(text).strip()[:CAPTION_MAX_CHARS].strip()
    return caption or None


def _parse_json_object(data: bytes) -> dict[str, Any] | None:
    """The JSON object in `data`, or None when it is not one (NaN/Infinity become null)."""
    try:
        value = json.loads(data.decode("utf-8", "replace"), parse_constant=lambda _name: None)
        return _clean_json(value) if isinstance(value, dict) else None
    except (ValueError, RecursionError):
        return None


def parse_sidecars(txt: bytes | None, json_bytes: bytes | None) -> tuple[str | None, dict[str, Any] | None]:
    """(caption, metadata) from the bytes of a `.txt` and a `.json` sidecar (either may be None).

    The `.txt` wins as caption; else the JSON's "caption" or "text" string field. Invalid or
    oversized JSON (over METADATA_MAX_BYTES) gives no metadata; it never fails the image."""
    caption = _caption_from(txt[:_CAPTION_READ_BYTES].decode("utf-8", "replace")) if txt is not None else None
    metadata = None
    if json_bytes is not None and len(json_bytes) <= METADATA_MAX_BYTES:
        metadata = _parse_json_object(json_bytes)
    if caption is None and metadata is not None:
        for name in ("caption", "text"):
            if isinstance(metadata.get(name), str) and (caption := _caption_from(metadata[name])):
                break
    return caption, metadata


def _read_small_file(path: str, limit: int) -> bytes | None:
    """Up to `limit` + 1 bytes of a regular file, or None (missing, unreadable, FIFO, ...)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _file_sidecars(sidecars: dict[str, str]) -> tuple[str | None, dict[str, Any] | None]:
    """(caption, metadata) from sidecar files: {"txt": path, "json": path}, either optional."""
    txt = _read_small_file(sidecars["txt"], _CAPTION_READ_BYTES) if "txt" in sidecars else None
    json_bytes = _read_small_file(sidecars["json"], METADATA_MAX_BYTES) if "json" in sidecars else None
    return parse_sidecars(txt, json_bytes)


def _sidecar_suffix(name: str) -> str | None:
    suffix = os.path.splitext(name)[1][1:].lower()
    return suffix if suffix in _SIDECAR_SUFFIXES else None


def _sidecars_beside(path: Path) -> dict[str, str]:
    """Sidecar files of one image named on its own (`x.jpg` -> `x.txt`, `x.JSON`, ...)."""
    found: dict[str, str] = {}
    stem = os.path.join(path.parent, os.path.splitext(path.name)[0])
    for suffix in _SIDECAR_SUFFIXES:
        for spelled in (suffix, suffix.upper()):
            if os.path.isfile(f"{stem}.{spelled}"):
                found[suffix] = f"{stem}.{spelled}"
                break
    return found


def _found_file(
    path: Path, size: int, mtime: float, sidecars: dict[str, str], is_unchanged: UnchangedCheck | None
) -> FoundFile:
    if not sidecars or (is_unchanged is not None and is_unchanged(encode_path(path), size, mtime)):
        return FoundFile(path, size, mtime)
    caption, metadata = _file_sidecars(sidecars)
    return FoundFile(path, size, mtime, caption=caption, metadata=metadata)


# --- folders and file lists -------------------------------------------------------------------


def _folder_sidecars(entries: list[os.DirEntry[str]], inside: str, follow_symlinks: bool) -> dict[str, dict[str, str]]:
    """{stem: {"txt"|"json": path}} for the sidecar files among one folder's entries."""
    by_stem: dict[str, dict[str, str]] = {}
    for entry in entries:
        suffix = _sidecar_suffix(entry.name)
        if suffix is None:
            continue
        try:
            if entry.is_symlink() and not follow_symlinks and not os.path.realpath(entry.path).startswith(inside):
                continue  # a link out of the collection: not ours to read
        except OSError:
            continue
        by_stem.setdefault(os.path.splitext(entry.name)[0], {}).setdefault(suffix, entry.path)
    return by_stem


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
        yield _found_file(root, root_stat.st_size, root_stat.st_mtime, _sidecars_beside(root), is_unchanged)
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
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
            sidecars = _folder_sidecars(entries, inside, follow_symlinks)
        except OSError:
            continue  # unreadable folder: nothing to index inside it
        subfolders = []
        for entry in entries:
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
            own = sidecars.get(os.path.splitext(entry.name)[0], {})
            yield _found_file(Path(entry.path), file_stat.st_size, file_stat.st_mtime, own, is_unchanged)
        stack.extend(reversed(subfolders))


def iter_file_list(list_file: Path, *, is_unchanged: UnchangedCheck | None = None) -> Iterator[FoundFile]:
    """Files named one per line in `list_file` (relative paths are relative to the list), with
    their sidecars; a listed `.tar` file is read as a WebDataset shard."""
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
        if not stat.S_ISREG(file_stat.st_mode):
            continue
        path = Path(os.path.abspath(path))
        if is_shard_path(path):
            yield from iter_shard(path, is_unchanged=is_unchanged)
        else:
            yield _found_file(path, file_stat.st_size, file_stat.st_mtime, _sidecars_beside(path), is_unchanged)


# --- WebDataset shards ------------------------------------------------------------------------


_WEBDATASET_META = re.compile(r"__[^/]*__($|/)")  # webdataset's own `skip_meta` default


def _samples(tar: tarfile.TarFile) -> Iterator[dict[str, tarfile.TarInfo]]:
    """Samples by the WebDataset convention: consecutive regular members with the same key
    (`base_plus_ext`), as {lower-case extension: member}, the first of a repeat kept. Members
    without an extension, hidden names and `__meta__` files belong to no sample."""
    from webdataset.tariterators import base_plus_ext  # imports torch: only when shards are read

    current_key: str | None = None
    sample: dict[str, tarfile.TarInfo] = {}
    for info in tar:
        if not info.isreg() or _WEBDATASET_META.match(info.name):
            continue
        key, extension = base_plus_ext(info.name)
        if key is None or extension is None:
            continue
        if key != current_key:
            if sample:
                yield sample
            current_key, sample = key, {}
        sample.setdefault(extension.lower(), info)
    if sample:
        yield sample


def _image_member(sample: dict[str, tarfile.TarInfo]) -> tarfile.TarInfo | None:
    """The sample's image: an exact image extension (`jpg`) first, else one ending like one
    (`seg.png`)."""
    for extension, info in sample.items():
        if extension in SHARD_IMAGE_EXTENSIONS:
            return info
    for extension, info in sample.items():
        if extension.rsplit(".", 1)[-1] in SHARD_IMAGE_EXTENSIONS:
            return info
    return None


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo | None, limit: int) -> bytes | None:
    if info is None or info.size > limit:
        return None
    handle = tar.extractfile(info)
    return handle.read() if handle is not None else None


def _shard_sidecars(tar: tarfile.TarFile, sample: dict[str, tarfile.TarInfo]) -> tuple[str | None, dict[str, Any] | None]:
    txt = _member_bytes(tar, sample.get("txt"), _CAPTION_READ_BYTES)
    if txt is None and "txt" in sample:  # a huge caption file: its beginning is enough
        handle = tar.extractfile(sample["txt"])
        txt = handle.read(_CAPTION_READ_BYTES) if handle is not None else None
    return parse_sidecars(txt, _member_bytes(tar, sample.get("json"), METADATA_MAX_BYTES))


def iter_shard(shard: Path, *, is_unchanged: UnchangedCheck | None = None) -> Iterator[FoundFile]:
    """One item per sample with an image in the uncompressed tar `shard`; reads headers and
    the sidecars of items `is_unchanged` does not claim, never image data."""
    shard = Path(os.path.abspath(shard))
    try:
        mtime = shard.stat().st_mtime
        # Unbuffered: each header read fetches its 512-byte block, not the image data after it.
        with open(shard, "rb", buffering=0) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
            for sample in _samples(tar):
                image = _image_member(sample)
                if image is None:
                    continue
                found = FoundFile(shard, image.size, mtime, member=image.name)
                if is_unchanged is None or not is_unchanged(found.stored_path, image.size, mtime):
                    caption, metadata = _shard_sidecars(tar, sample)
                    found = FoundFile(shard, image.size, mtime, image.name, caption, metadata)
                yield found
    except (tarfile.TarError, OSError) as exc:
        raise InputError(
            f"Cannot read the WebDataset shard {shard}: {exc}. Shards must be uncompressed .tar files; "
            "re-create or re-download this one, or leave it out of the PATH arguments."
        ) from exc


# --- inputs as given on the command line ------------------------------------------------------


def _expand_pattern(text: str) -> list[str]:
    """webdataset's expansion of a shard pattern: `{000..009}` and `{a,b}` braces, `${VAR}`
    from WDS_VAR, several patterns joined by `::`."""
    from webdataset.shardlists import expand_urls  # imports torch: only for patterns

    return list(expand_urls(text))


def expand_inputs(paths: Iterable[Path | str]) -> list[Path]:
    """The absolute paths that PATH arguments name: an existing path as it is; a brace pattern
    (`shards-{000..009}.tar`) expanded. Raises `InputError` naming what does not exist."""
    expanded: list[Path] = []
    for given in paths:
        text = os.fspath(given)
        if os.path.lexists(text) or not ("{" in text or "${" in text or "::" in text):
            names = [text]
        else:
            names = _expand_pattern(text)
        for name in names:
            path = Path(os.path.abspath(name))
            if not path.exists():
                origin = "" if name == text else f" (from the pattern {text})"
                raise InputError(
                    f"{path}{origin} does not exist. Give folders, image files or WebDataset .tar shards "
                    "(brace patterns such as data/shards-{000..009}.tar) to index."
                )
            expanded.append(path)
    return expanded


def iter_sources(
    paths: Iterable[Path | str], *, follow_symlinks: bool = False, is_unchanged: UnchangedCheck | None = None
) -> Iterator[FoundFile]:
    """Every image under the PATH arguments: folders, image files and `.tar` shards (or shard
    patterns). All arguments are checked before the first item is yielded."""
    for root in expand_inputs(paths):
        if is_shard_path(root):
            yield from iter_shard(root, is_unchanged=is_unchanged)
        else:
            yield from iter_image_files(root, follow_symlinks=follow_symlinks, is_unchanged=is_unchanged)


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
