"""What a failed write under the data directory means for the person running pixseek.

Every file pixseek writes goes through one seam (`search.storage.atomic_files`, plus the writer lock
and the SQLite catalog), and each turns an `OSError` into a sentence here: a full disk says
"disk full at PATH" and that re-running after freeing space resumes without losing anything; a
read-only or forbidden folder names the folder and the flag that moves the data elsewhere.
Other errors (a bad path, an I/O error of a failing disk) stay plain `OSError`s.
"""

from __future__ import annotations

import errno
from pathlib import Path

from search.errors import DiskFullError, StorageError

__all__ = ["disk_full_error", "read_only_error", "storage_error"]

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def disk_full_error(path: Path | str, code: int | None = errno.ENOSPC) -> DiskFullError:
    """The error for a disk that filled up while writing `path`, saying how to resume."""
    return DiskFullError(
        f"disk full at {path}: the write stopped there and everything finished before it is kept. "
        "Free space on that disk (or move the data with --data-dir / PIXSEEK_DATA_DIR), then run "
        "the same command again to resume.",
        errno=code,
        filename=str(path),
    )


def read_only_error(path: Path | str, code: int | None = errno.EROFS) -> StorageError:
    """The error for a `path` that cannot be written (read-only or not ours), with the fix."""
    why = "is on a read-only file system" if code == errno.EROFS else "is not writable by this user"
    return StorageError(
        f"Cannot write {path}: it {why}. Make the data directory writable, or choose another "
        "with --data-dir / PIXSEEK_DATA_DIR.",
        errno=code,
        filename=str(path),
    )


def storage_error(exc: OSError, path: Path | str) -> OSError:
    """The user-facing error for `exc`, raised while writing `path`; `exc` itself when it is
    neither a full disk nor a read-only or forbidden location (or already translated)."""
    if isinstance(exc, StorageError):
        return exc
    if exc.errno in _DISK_FULL:
        return disk_full_error(path, exc.errno)
    if exc.errno in _READ_ONLY:
        return read_only_error(exc.filename or path, exc.errno)
    return exc
