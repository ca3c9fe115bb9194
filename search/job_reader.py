"""Reading jobs as the API, the jobs page and the job event streams show them: each catalog row
as a `JobResponse` with its collection's failed images counted by kind of reason.

Counting failures reads every failed row of a collection, so a `JobReader` remembers each
collection's count and counts again only when one of its jobs shows a new state or failed
count. An event stream that polls twice a second keeps one reader, and costs one query for the
job rows per poll plus a count when a failure was recorded; a plain request uses a fresh one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from search.catalog import Catalog, JobInfo
from search.images.failures import failure_kind
from search.job_schemas import JobResponse

__all__ = ["JobReader"]

_Fingerprint = tuple[tuple[int, str, int], ...]


class JobReader:
    """Jobs of one catalog as responses; counts are kept between calls (see the module)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._counted: dict[str, tuple[_Fingerprint, dict[str, int]]] = {}

    def job(self, job_id: int) -> JobResponse:
        """One job (`NotFoundError` for an unknown id)."""
        return self.responses([self.catalog.get_job(job_id)])[0]

    def recent(self, limit: int) -> list[JobResponse]:
        """The newest `limit` jobs, newest first."""
        return self.responses(self.catalog.list_jobs(limit))

    def responses(self, jobs: Sequence[JobInfo]) -> list[JobResponse]:
        """`jobs` as responses, counting each collection's failures at most once."""
        by_collection: dict[str, list[tuple[int, str, int]]] = {}
        for job in jobs:
            if job.collection:
                by_collection.setdefault(job.collection, []).append((job.id, job.state, job.failed))
        counts = {name: self._failures(name, tuple(seen)) for name, seen in by_collection.items()}
        return [
            JobResponse.from_info(job, counts.get(job.collection) if job.collection else None)
            for job in jobs
        ]

    def _failures(self, collection: str, fingerprint: _Fingerprint) -> dict[str, int]:
        known = self._counted.get(collection)
        if known is not None and known[0] == fingerprint:
            return known[1]
        info = self.catalog.get_collection(collection)
        reasons = self.catalog.failures(info.id) if info is not None else []
        counted = dict(Counter(failure_kind(reason) for _, reason in reasons).most_common())
        self._counted[collection] = (fingerprint, counted)
        return counted
