"""The on-disk vectors and FAISS index of one collection, kept in agreement with the catalog.

Invariant (what crash safety means here): the FAISS ids equal the catalog's `embedded` ids, and
each of those ids has a durable vector in the vector store. The catalog marks a row `embedded`
only after its vector is durable, so the index can always be rebuilt or caught up from the
vector store; `sync_index` does that, and the indexer saves the result atomically with a new
generation number recorded in the catalog.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np

from search.catalog import Catalog, CollectionInfo
from search.errors import CatalogError, IndexLockedError
from search.settings import Settings
from search.storage.faiss_index import DEFAULT_FACTORY, VectorIndex
from search.storage.storage_errors import storage_error
from search.storage.vector_store import VectorStore

__all__ = ["CollectionStore", "WriterLock"]

log = logging.getLogger(__name__)


class WriterLock:
    """One writer per collection: a POSIX record lock (`fcntl.lockf`) on `writer.lock`.

    Why a record lock and not `flock`: a `flock` belongs to the open file description, which a
    `fork()` shares with the child. DataLoader decode workers are forked from the indexer, so
    with `flock` every worker held the lock too, and a worker orphaned by a SIGKILL of the
    indexer kept the collection locked for good. A record lock belongs to the process that took
    it: the kernel never hands it to a forked child (whatever forks it: DataLoader, a library,
    `subprocess`), and drops it the instant that process dies. The descriptor is opened
    `O_CLOEXEC` as well, so no executed program even inherits the file.

    Two record-lock rules shape the rest. Locks of one process never conflict with each other,
    so a registry of the paths this process holds refuses a second writer in the same process
    (an API job and an in-process CLI call). Closing *any* descriptor of the file releases the
    process's lock, so this class is the only code that opens the file, and `holder()` answers
    from the registry, without opening it, for a lock this process holds.

    The file names the holder's PID while it is held and is emptied on release. A PID left in a
    free lock means its holder died; the next writer takes over and logs it.
    """

    _held: ClassVar[set[str]] = set()  # real paths of the lock files this process holds
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        key = self._key()
        with self._registry_lock:
            if key in self._held:
                raise self._locked_error(os.getpid())
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise storage_error(exc, self.path) from exc
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise storage_error(exc, self.path) from exc
                raise self._locked_error(holder) from exc
            previous = _read_pid(fd)
            if previous is not None and previous != os.getpid():
                state = (
                    "still running, but no longer holding it" if _pid_alive(previous) else "gone"
                )
                log.warning(
                    "Taking over the writer lock of collection %r (%s): it was left by process %d, "
                    "which is %s.",
                    self.collection,
                    self.path,
                    previous,
                    state,
                )
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            except OSError as exc:
                os.close(fd)
                raise storage_error(exc, self.path) from exc
            self._fd = fd
            self._held.add(key)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        with self._registry_lock:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # a PID in a free lock file means "its holder died"
            os.close(self._fd)  # releases the record lock
            self._fd = None
            self._held.discard(self._key())

    def holder(self) -> int | None:
        """PID of the process writing this collection now (this one included), or None."""
        with self._registry_lock:
            if self._key() in self._held:
                return os.getpid()
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            try:
                # A shared lock conflicts with the writer's exclusive one and needs no write
                # access (works on a read-only data directory). Held for an instant only.
                fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return _read_pid(fd) or -1
            finally:
                os.close(fd)  # also releases the probe's lock when it got one
            return None

    def left_by(self) -> int | None:
        """The PID named in the lock file while nobody holds it: a writer that died."""
        if self.holder() is not None:
            return None
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _key(self) -> str:
        return os.path.realpath(self.path)

    def _locked_error(self, holder: int | None) -> IndexLockedError:
        if holder == os.getpid():
            who = "by this process (another job or command in it)"
        else:
            who = (
                f"by another process (process {holder})"
                if holder and holder > 0
                else "by another process"
            )
        return IndexLockedError(
            f"Collection {self.collection!r} is being indexed {who} (lock {self.path}). Wait for "
            "it to finish (pixseek jobs shows its progress) or stop it; a lock left by a process "
            "that died is taken over automatically."
        )


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class CollectionStore:
    """Vector store + FAISS index files of one collection."""

    def __init__(self, settings: Settings, catalog: Catalog, collection: CollectionInfo) -> None:
        self.catalog = catalog
        self.collection = collection
        self.folder = settings.collection_dir(collection.id)
        self.vectors = VectorStore(self.folder / "vectors", collection.dim)
        self.index_path = self.folder / "index.faiss"

    def writer_lock(self) -> WriterLock:
        return WriterLock(self.folder / "writer.lock", self.collection.name)

    def remove_temp_files(self) -> None:
        """Delete what writes interrupted by a crash left (vector segments and FAISS saves alike;
        never visible as real files). Only the writer-lock holder may call this."""
        self.vectors.remove_temp_files()
        if self.folder.is_dir():
            for entry in self.folder.glob(f".{self.index_path.name}.*.tmp"):
                entry.unlink(missing_ok=True)

    def load_index(self) -> VectorIndex:
        """The saved FAISS index, or an empty one when there is none or it is unreadable."""
        if self.index_path.exists():
            try:
                index = VectorIndex.load(self.index_path)
                if index.dim == self.collection.dim:
                    return index
            except CatalogError:
                pass
        return VectorIndex(self.collection.dim, DEFAULT_FACTORY)

    def index_is_current(self, index: VectorIndex) -> bool:
        build = self.catalog.index_build(self.collection.id)
        return build is not None and build.generation == index.generation

    def sync_index(
        self, index: VectorIndex, *, full: bool = False
    ) -> tuple[VectorIndex, list[int]]:
        """Make `index` hold exactly the catalog's embedded ids, from the vector store.

        `full=True` rebuilds from scratch (used after a crash, when a stale file may hold old
        vectors of re-embedded files). Returns the index and any embedded ids that have no
        durable vector (only possible if vector files were deleted by hand).
        """
        embedded = np.asarray(self.catalog.embedded_ids(self.collection.id), dtype=np.int64)
        if full:
            fresh = VectorIndex(self.collection.dim, index.factory, generation=index.generation)
            ids, vectors = self.vectors.latest(embedded)
            fresh.add(ids, vectors)
            return fresh, _id_list(np.setdiff1d(embedded, ids))
        have = index.ids()
        extra = np.setdiff1d(have, embedded)
        index.remove(extra)
        need = np.setdiff1d(embedded, have)
        missing: list[int] = []
        if need.size:
            ids, vectors = self.vectors.latest(need)
            index.add(ids, vectors)
            missing = _id_list(np.setdiff1d(need, ids))
        return index, missing

    def save_index(self, index: VectorIndex) -> None:
        """Atomically write the index as the next generation and record it in the catalog."""
        build = self.catalog.index_build(self.collection.id)
        generation = max(index.generation, build.generation if build else 0) + 1
        index.save(self.index_path, generation)
        self.catalog.record_index_build(
            self.collection.id,
            model_id=self.collection.model_id,
            dim=self.collection.dim,
            factory=index.factory,
            count=index.count,
            generation=generation,
        )


def _id_list(ids: np.ndarray) -> list[int]:
    return [int(image_id) for image_id in ids.tolist()]
