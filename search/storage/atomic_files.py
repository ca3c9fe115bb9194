"""Writing files so that a crash at any instant leaves either the old file or the new one.

temp file in the same folder -> write -> fsync -> rename over the target -> fsync the folder.

This is the one seam through which vector segments, FAISS indexes, thumbnails and caches reach
the disk, so a failed write is translated here, once: a full disk raises `DiskFullError`
("disk full at PATH"), a read-only or forbidden folder `StorageError`
(`search.storage.storage_errors`); the temp file is removed and the old target is left as it
was. Tests inject faults at `_write_and_sync`, the point where the bytes go out.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, NoReturn

from search.storage.storage_errors import storage_error

__all__ = ["atomic_write_bytes", "fsync_dir"]


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_and_sync(handle: BinaryIO, target: Path, chunks: list[bytes]) -> None:
    """Write `chunks` (destined for `target`) to the open temp file and force them to disk."""
    handle.writelines(chunks)
    handle.flush()
    os.fsync(handle.fileno())


def atomic_write_bytes(target: Path, chunks: bytes | list[bytes]) -> None:
    """Replace `target` with `chunks` atomically and durably; see the module docstring."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        _raise_translated(exc, target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_and_sync(handle, target, [chunks] if isinstance(chunks, bytes) else chunks)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            _raise_translated(exc, target)
        raise
    fsync_dir(target.parent)


def _raise_translated(exc: OSError, path: Path) -> NoReturn:
    translated = storage_error(exc, path)
    if translated is exc:
        raise exc
    raise translated from exc
