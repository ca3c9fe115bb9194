"""The durable vector store: append-only float16 segments keyed by image id.

It is the source of truth for embeddings; the FAISS index is derived from it and can always be
rebuilt or caught up. Each `append` writes one new segment file atomically (temp, fsync,
rename), so a segment either exists whole or not at all. A later segment overrides an earlier
one for the same id (a re-embedded, modified file). Stale vectors of deleted images stay until
`compact` rewrites the store keeping only the ids asked for.

Segment layout (little endian): magic b"PXVS", u32 version, u32 dim, u64 count,
int64 ids[count], float16 vectors[count, dim].
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from search.errors import CatalogError
from search.storage.atomic_files import atomic_write_bytes

__all__ = ["VectorStore"]

_MAGIC = b"PXVS"
_HEADER = struct.Struct("<4sIIQ")
_VERSION = 1
_SEGMENT = re.compile(r"^seg-(\d{10})\.pxvs$")


class VectorStore:
    """Append-only store of (id, float16 vector) pairs under one folder."""

    def __init__(self, folder: Path, dim: int) -> None:
        self.folder = folder
        self.dim = dim  # the folder is made by the first append: readers build stores per query

    def _segments(self) -> list[tuple[int, Path]]:
        found: list[tuple[int, Path]] = []
        if not self.folder.is_dir():
            return found
        for entry in self.folder.iterdir():
            match = _SEGMENT.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Durably store `vectors` (n x dim) for `ids` (n). Returns only once on disk."""
        ids = np.ascontiguousarray(ids, dtype="<i8")
        vectors = np.ascontiguousarray(vectors, dtype="<f2")
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or vectors.shape[0] != ids.shape[0]:
            raise ValueError(f"expected ({ids.shape[0]}, {self.dim}) vectors, got {vectors.shape}")
        if ids.size == 0:
            return
        segments = self._segments()
        number = segments[-1][0] + 1 if segments else 1
        header = _HEADER.pack(_MAGIC, _VERSION, self.dim, ids.shape[0])
        atomic_write_bytes(
            self.folder / f"seg-{number:010d}.pxvs", [header, ids.tobytes(), vectors.tobytes()]
        )

    def _read_segment(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        data = path.read_bytes()
        if len(data) < _HEADER.size:
            raise CatalogError(f"Vector segment {path} is truncated; run: pixseek index --rebuild")
        magic, version, dim, count = _HEADER.unpack_from(data)
        expected = _HEADER.size + count * 8 + count * dim * 2
        if magic != _MAGIC or version != _VERSION or dim != self.dim or len(data) != expected:
            raise CatalogError(
                f"Vector segment {path} is damaged or of another model "
                f"(dim {dim}, expected {self.dim})."
            )
        ids = np.frombuffer(data, dtype="<i8", count=count, offset=_HEADER.size)
        vectors = np.frombuffer(
            data, dtype="<f2", count=count * dim, offset=_HEADER.size + count * 8
        )
        return ids, vectors.reshape(count, dim)

    def stored_count(self) -> int:
        """Vectors on disk, superseded ones included (reads only the segment headers)."""
        total = 0
        for _, path in self._segments():
            with path.open("rb") as handle:
                header = handle.read(_HEADER.size)
            if len(header) == _HEADER.size:
                total += _HEADER.unpack(header)[3]
        return total

    def iter_segments(
        self, *, newest_first: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float16 vectors) of each segment, oldest first (or newest first: then the first
        vector seen for an id is its current one)."""
        segments = self._segments()
        for _, path in reversed(segments) if newest_first else segments:
            yield self._read_segment(path)

    def latest(self, wanted: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The newest vector of each id (restricted to `wanted` when given), as float32."""
        wanted_set = None if wanted is None else np.fromiter(wanted, dtype=np.int64)
        by_id: dict[int, np.ndarray] = {}
        for segment_ids, segment_vectors in self.iter_segments():
            ids, vectors = segment_ids, segment_vectors
            if wanted_set is not None:
                mask = np.isin(ids, wanted_set)
                ids, vectors = ids[mask], vectors[mask]
            for i, image_id in enumerate(ids.tolist()):
                by_id[image_id] = vectors[i]
        if not by_id:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        out_ids = np.fromiter(by_id.keys(), dtype=np.int64, count=len(by_id))
        out_vectors = np.stack(list(by_id.values())).astype(np.float32)
        return out_ids, out_vectors

    def remove_temp_files(self) -> None:
        """Delete leftovers of appends that a crash interrupted (never visible as segments)."""
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            if entry.name.startswith(".seg-") and entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)

    def compact(self, keep: Iterable[int]) -> None:
        """Rewrite the store as one segment with only the newest vector of each id in `keep`."""
        ids, vectors = self.latest(keep)
        old = self._segments()
        if ids.size:
            self.append(ids, vectors)
        for _, path in old:
            path.unlink()
