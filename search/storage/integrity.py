"""`pixseek check`: verify, and with `repair=True` restore, the crash-safety invariant of a data
directory, collection by collection.

The invariant (see `search.storage.collection_store`): every image row is `embedded` or `failed`
(none left `pending` by an interrupted run); every `embedded` id has a durable vector in the vector
store; the saved FAISS index holds exactly the `embedded` ids, once each, and is the generation
the catalog records. Around it: no temp files left by interrupted writes, no writer lock naming
a process that died, no collection folder that the catalog does not know.

What `repair` does, always under the collection's writer lock (a collection being written is
reported and left alone): rebuilds the FAISS index from the vector store, sends `embedded` rows
without a vector back to `pending` (the next `pixseek index` embeds them), deletes temp files,
compacts vectors of images no longer in the catalog, and takes over a stale lock. It never
embeds (that is the indexer's job: `search` does not import it) and never deletes a collection
folder the catalog does not list: a wrong `--database-url` would make every folder look orphaned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search.catalog import Catalog, ChangedImage, CollectionInfo
from search.catalog.schema import ImageStatus
from search.errors import CatalogError, IndexLockedError, NotFoundError
from search.settings import Settings
from search.storage.collection_store import CollectionStore, WriterLock
from search.storage.faiss_index import VectorIndex

__all__ = [
    "CollectionCheck",
    "Finding",
    "IntegrityReport",
    "check_data_dir",
    "require_catalog_exists",
]


@dataclass
class Finding:
    """One thing `check` found. `problem`: the invariant is broken (a note is not);
    `repaired`: `repair=True` fixed it."""

    kind: str
    message: str
    count: int = 1
    problem: bool = True
    repaired: bool = False


@dataclass
class CollectionCheck:
    """What `check` found in one collection: row counts by state, vectors, and findings."""

    name: str
    id: int
    images: int = 0
    embedded: int = 0
    failed: int = 0
    pending: int = 0
    vectors: int = 0  # embedded ids that have a durable vector
    index_vectors: int = 0  # ids in the saved FAISS file
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: str, message: str, count: int = 1, *, problem: bool = True) -> Finding:
        finding = Finding(kind, message, count, problem)
        self.findings.append(finding)
        return finding


@dataclass
class IntegrityReport:
    """What `check` found in a data directory, collection by collection."""

    data_dir: str
    collections: list[CollectionCheck] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about the data directory itself

    def all_findings(self) -> Iterator[Finding]:
        yield from self.findings
        for collection in self.collections:
            yield from collection.findings

    @property
    def ok(self) -> bool:
        """True when no problem remains (found none, or repaired all)."""
        return not any(f.problem and not f.repaired for f in self.all_findings())

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "data_dir": self.data_dir,
            "collections": [asdict(c) for c in self.collections],
            "findings": [asdict(f) for f in self.findings],
        }


def check_data_dir(
    settings: Settings, catalog: Catalog, *, collection: str | None = None, repair: bool = False
) -> IntegrityReport:
    """Check (and with `repair`, fix) every collection of the catalog, or only `collection`."""
    report = IntegrityReport(data_dir=str(settings.data_dir))
    infos = [catalog.require_collection(collection)] if collection else catalog.list_collections()
    for info in infos:
        report.collections.append(_check_collection(settings, catalog, info, repair))
    if collection is None:
        _find_orphan_folders(settings, {info.id for info in infos}, report)
    return report


def _check_collection(
    settings: Settings, catalog: Catalog, info: CollectionInfo, repair: bool
) -> CollectionCheck:
    store = CollectionStore(settings, catalog, info)
    result = CollectionCheck(name=info.name, id=info.id)
    lock = store.writer_lock()
    holder = lock.holder()
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        result.add(
            "locked",
            f"being written by {who} ({lock.path}); its rows, vectors and index are in "
            "flux, so nothing was checked. Run pixseek check again when it has finished.",
        )
        return result
    stale_pid = lock.left_by()
    try:
        with _writer(lock, repair):
            if stale_pid is not None:
                finding = result.add(
                    "stale_lock",
                    f"the writer lock names process {stale_pid}, which no longer holds "
                    "it (it died while writing); the next writer takes it over",
                    problem=False,
                )
                finding.repaired = repair
            _check_temp_files(store, result, repair)
            _check_rows_vectors_and_index(store, catalog, result, repair)
    except IndexLockedError as exc:  # a writer started between the probe and the repair
        result.add("locked", f"{exc} Nothing was repaired.")
    return result


@contextmanager
def _writer(lock: WriterLock, repair: bool) -> Iterator[None]:
    with lock if repair else nullcontext():
        yield


def _check_temp_files(store: CollectionStore, result: CollectionCheck, repair: bool) -> None:
    leftovers = [
        p
        for folder in (store.folder, store.vectors.folder)
        if folder.is_dir()
        for p in folder.iterdir()
        if p.name.startswith(".") and p.name.endswith(".tmp")
    ]
    if not leftovers:
        return
    finding = result.add(
        "temp_files",
        f"{len(leftovers)} temp file(s) of interrupted writes, e.g. {leftovers[0]}",
        len(leftovers),
    )
    if repair:
        for path in leftovers:
            path.unlink(missing_ok=True)
        finding.repaired = True


def _check_rows_vectors_and_index(
    store: CollectionStore, catalog: Catalog, result: CollectionCheck, repair: bool
) -> None:
    info = store.collection
    counts = catalog.count_by_status(info.id)
    result.images = sum(counts.values())
    result.failed = counts.get(ImageStatus.FAILED, 0)
    embedded = np.asarray(sorted(catalog.embedded_ids(info.id)), dtype=np.int64)
    try:
        vector_ids, _ = store.vectors.latest()
    except CatalogError as exc:
        result.add(
            "damaged_vectors",
            f"{exc} The vector store cannot be verified; nothing else was checked.",
        )
        return
    missing = np.setdiff1d(embedded, vector_ids)
    if missing.size:
        finding = result.add(
            "missing_vectors",
            f"{missing.size} embedded image(s) have no durable vector "
            f"(e.g. id {int(missing[0])}): vector files were removed or damaged",
            int(missing.size),
        )
        if repair:
            catalog.mark_changed(
                [ChangedImage(int(image_id), -1, -1.0) for image_id in missing]
            )  # embedded again
            embedded = np.setdiff1d(embedded, missing)
            finding.repaired = True
            finding.message += "; marked pending"
    unused = (
        np.setdiff1d(vector_ids, embedded).size + store.vectors.stored_count() - vector_ids.size
    )
    if unused:
        finding = result.add(
            "unused_vectors",
            f"{unused} stored vector(s) are superseded or belong to images no "
            "longer embedded (space a compaction reclaims)",
            unused,
            problem=False,
        )
        if repair:
            store.vectors.compact(embedded.tolist())
            finding.repaired = True
    _check_index(store, catalog, embedded, result, repair)
    counts = catalog.count_by_status(info.id)
    result.embedded = counts.get(ImageStatus.EMBEDDED, 0)
    result.pending = counts.get(ImageStatus.PENDING, 0)
    result.vectors = int(np.intersect1d(embedded, vector_ids).size)
    if result.pending:
        result.add(
            "pending",
            f"{result.pending} image(s) still pending (an index run was interrupted, or repair "
            "marked them): run pixseek index on the same folders "
            f"(--collection {info.name}) to finish",
            result.pending,
        )


def _check_index(
    store: CollectionStore,
    catalog: Catalog,
    embedded: np.ndarray,
    result: CollectionCheck,
    repair: bool,
) -> None:
    problems: list[str] = []
    index: VectorIndex | None = None
    if not store.index_path.exists():
        if embedded.size:
            problems.append(f"the FAISS index {store.index_path} is missing")
    else:
        try:
            index = VectorIndex.load(store.index_path)
        except CatalogError as exc:
            problems.append(str(exc))
    if index is not None:
        ids = index.ids()
        result.index_vectors = int(ids.size)
        unique = np.unique(ids)
        if unique.size != ids.size:
            problems.append(f"{ids.size - unique.size} duplicate id(s) in the FAISS index")
        if not np.array_equal(unique, embedded):
            extra, absent = np.setdiff1d(unique, embedded).size, np.setdiff1d(embedded, unique).size
            problems.append(
                f"the FAISS index has {extra} id(s) the catalog does not list as embedded and "
                f"lacks {absent} that it does"
            )
        build = catalog.index_build(store.collection.id)
        if build is None or build.generation != index.generation:
            problems.append(
                f"the FAISS file is generation {index.generation}, the catalog records "
                f"{build.generation if build else 'none'} (a writer stopped before its final save)"
            )
    if not problems:
        return
    finding = result.add("index", "; ".join(problems), len(problems))
    if repair:
        fresh, _ = store.sync_index(VectorIndex(store.collection.dim), full=True)
        store.save_index(fresh)
        result.index_vectors = fresh.count
        finding.repaired = True
        finding.message += "; rebuilt from the vector store"


def _find_orphan_folders(settings: Settings, known_ids: set[int], report: IntegrityReport) -> None:
    root = settings.data_dir / "collections"
    if not root.is_dir():
        return
    orphans: list[Path] = [
        p
        for p in sorted(root.iterdir())
        if p.is_dir() and not (p.name.isdigit() and int(p.name) in known_ids)
    ]
    if orphans:
        report.findings.append(
            Finding(
                "orphan_folders",
                f"{len(orphans)} collection folder(s) that the catalog does not list, e.g. "
                f"{orphans[0]}: left by a deleted collection, or this is not the catalog they "
                "belong to (check --database-url). Remove them by hand once sure; repair never "
                "deletes them.",
                len(orphans),
                problem=False,
            )
        )


def require_catalog_exists(settings: Settings) -> None:
    """Refuse to check a data directory that has no SQLite catalog (instead of creating one)."""
    if settings.database_url is None and not (settings.data_dir / "catalog.db").exists():
        raise NotFoundError(
            f"No catalog in {settings.data_dir}: nothing has been indexed there. Point "
            "--data-dir / PIXSEEK_DATA_DIR (or --database-url) at the data to check."
        )
