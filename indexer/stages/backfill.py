"""Backfill: the taken time, camera and file type of images embedded before pixseek read them
(catalogs older than revision 0004), without decoding or embedding anything again.

A re-index that finds such a file unchanged reads just its header: Pillow's open is lazy and
parses EXIF and the format before any pixel, so this costs a small read per file. The reads
run on this thread, one after the other: reading silences Pillow's warnings with
`warnings.catch_warnings`, which is not thread-safe (threads interleaving it can leave a
filter installed for the whole process). A file that cannot be read now keeps its NULLs and is
tried on the next run; the rows are written in batches, so a run stopped half-way keeps what
it read.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.stages.run import Run
from search.catalog.records import ImageMetadata, MetadataUpdate, UnreadMetadata
from search.images.metadata import metadata_of_bytes, metadata_of_file
from search.images.paths import decode_path
from search.images.source import is_archive_member, read_image_bytes

__all__ = ["backfill_metadata", "read_file_metadata"]

_BATCH = 500  # rows per catalog transaction


def read_file_metadata(stored_path: str) -> ImageMetadata | None:
    """The metadata of the file a catalog row names (plain file or shard member), or None when
    it cannot be read or opened now."""
    try:
        if is_archive_member(stored_path):
            return metadata_of_bytes(read_image_bytes(stored_path))
        return metadata_of_file(decode_path(stored_path))
    except Exception:  # noqa: BLE001 - optional metadata: an unreadable file is retried next run
        return None


def backfill_metadata(run: Run, seen_keys: set[str]) -> None:
    """Read and store the metadata of the collection's embedded rows that lack it, for the
    files this run's scan found (`Reconciliation.seen_keys`)."""
    unread = [
        row for row in run.catalog.unread_metadata(run.collection.id) if row.path_key in seen_keys
    ]
    if not unread:
        return
    for start in range(0, len(unread), _BATCH):
        if run.options.stop_requested():
            run.report.cancelled = True
            return
        _backfill_batch(run, unread[start : start + _BATCH])


def _backfill_batch(run: Run, rows: Sequence[UnreadMetadata]) -> None:
    read = [read_file_metadata(row.path) for row in rows]
    updates = [
        MetadataUpdate(row.id, metadata)
        for row, metadata in zip(rows, read, strict=True)
        if metadata is not None
    ]
    run.catalog.set_metadata(updates)
    run.report.metadata_backfilled += len(updates)
