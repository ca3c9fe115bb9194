"""Files leave the server only from inside the folder they were indexed from.

`GET /api/images/{id}/file` serves the path the catalog holds, never one from the request. But
the disk can change after indexing: a folder inside the photo root replaced by a symlink to
`/etc`, or a photo replaced by a link to `~/.ssh/id_rsa`, would make the catalog path point
outside. So before a file is served its *resolved* real path must lie inside the resolved real
path of a root its collection was indexed from (the `paths` of the collection's indexing jobs,
which the catalog records for every CLI and API run). An image with no recorded root (a file
list, a catalog older than jobs) is served only when its path has no symlink at all.

The roots are read from the job rows and kept for a few seconds; a path that is not inside the
cached roots is checked once more against fresh ones (a job may have just started)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from search.catalog import Catalog
from search.errors import ForbiddenError

__all__ = ["CollectionRoots", "is_inside"]

_JOBS_SCANNED = 100_000
_FRESH_SECONDS = 5.0


def is_inside(real_path: str, real_root: str) -> bool:
    """`real_path` is `real_root` or lies below it (both already resolved)."""
    return real_path == real_root or real_path.startswith(real_root.rstrip(os.sep) + os.sep)


class CollectionRoots:
    """The resolved folders each collection was indexed from, read from the catalog's jobs."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._roots: dict[str, set[str]] = {}
        self._read_at = -1e9
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        roots: dict[str, set[str]] = {}
        for job in self.catalog.list_jobs(_JOBS_SCANNED):
            paths = (job.args or {}).get("paths")
            name = job.collection or (job.args or {}).get("collection")
            if not name or not isinstance(paths, list):
                continue
            roots.setdefault(str(name), set()).update(
                os.path.realpath(str(p)) for p in paths if isinstance(p, str)
            )
        self._roots, self._read_at = roots, time.monotonic()

    def roots(self, collection: str, *, fresh: bool = False) -> set[str]:
        with self._lock:
            if fresh or time.monotonic() - self._read_at > _FRESH_SECONDS:
                self._refresh()
            return set(self._roots.get(collection, ()))

    def check(self, path: Path, collection: str, image_id: int) -> None:
        """Raise `ForbiddenError` unless `path` resolves inside a root of `collection`."""
        real = os.path.realpath(path)
        roots: set[str] = set()
        for fresh in (False, True):
            roots = self.roots(collection, fresh=fresh)
            if any(is_inside(real, root) for root in roots):
                return
        if not roots and real == os.path.abspath(path):
            return  # no recorded root: served only when no symlink is on the way
        raise ForbiddenError(
            f"The file of image {image_id} now resolves outside the folder collection "
            f"{collection!r} was indexed from (a symlink points out of it); it is not served. "
            "Replace the link with the file, or index the folder it points to."
        )
