"""Reconcile: what a scan means for the catalog.

Fast path: a file whose (path, size, mtime) the catalog already holds is unchanged and is not
read at all. A new path becomes a `NewImage`, a known path with another size or mtime a
`ChangedImage` (embedded again); rows the scan did not see and whose source it covers have
vanished and are pruned.
"""

from __future__ import annotations

from collections.abc import Iterable

from indexer.records import FoundFile, Reconciliation, UnchangedCheck
from indexer.sources import PruneScope
from search.catalog import ChangedImage, KnownImage, NewImage
from search.catalog.schema import ImageStatus
from search.images.paths import path_key

__all__ = ["has_waiting", "reconcile", "unchanged_check", "vanished"]

Known = dict[str, KnownImage]
"""The collection's rows by path key (`Catalog.image_states`)."""


def unchanged_check(known: Known) -> UnchangedCheck:
    """The scan's question "does the catalog hold this item unchanged?", answered from `known`."""

    def is_unchanged(stored: str, size: int, mtime: float) -> bool:
        row = known.get(path_key(stored))
        return row is not None and row.size == size and row.mtime == mtime

    return is_unchanged


def reconcile(found: Iterable[FoundFile], known: Known) -> Reconciliation:
    """Sort scanned files into new, changed and unchanged; a file found twice counts once."""
    result = Reconciliation()
    for item in found:
        stored = item.stored_path
        key = path_key(stored)
        if key in result.seen_keys:
            continue
        result.seen_keys.add(key)
        row = known.get(key)
        if row is None:
            result.new.append(
                NewImage(
                    path=stored,
                    path_key=key,
                    size=item.size,
                    mtime=item.mtime,
                    caption=item.caption,
                    metadata=item.metadata,
                )
            )
        elif row.size != item.size or row.mtime != item.mtime:
            result.changed.append(ChangedImage(row.id, item.size, item.mtime))
        elif row.status != ImageStatus.PENDING:
            result.unchanged += 1
    return result


def has_waiting(found: Reconciliation, known: Known) -> bool:
    """True when a file the scan saw is still `pending` (a run stopped before embedding it)."""
    return any(known[key].status == ImageStatus.PENDING for key in found.seen_keys if key in known)


def vanished(known: Known, seen: set[str], scope: PruneScope) -> list[int]:
    """Ids of catalog rows this scan did not see and whose source it covers."""
    return [row.id for key, row in known.items() if key not in seen and scope.covers(row.path)]
