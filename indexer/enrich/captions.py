"""Enrichment stages that run after embedding: captions written by a captioning model.

Resumable like embedding: only images without a caption are taken, each batch is committed on
its own, so an interrupted run continues where it stopped. Captions are stored with the id of
the model that wrote them and feed the full-text index (mode=text/hybrid).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from search.catalog import Catalog
from search.images.decode import DecodeFailure, decode_stored
from search.models.registry import load_captioner
from search.settings import Settings

__all__ = ["CaptionReport", "caption_images"]

CAPTION_DRAFT_SIZE = 384


@dataclass
class CaptionReport:
    """What one captioning run did (printed by `pixseek caption`, added to an index summary)."""

    captioned: int = 0
    unreadable: int = 0
    seconds: float = 0.0
    model_id: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "captioned": self.captioned,
            "unreadable": self.unreadable,
            "seconds": round(self.seconds, 3),
            "rate": round(self.captioned / self.seconds, 3) if self.seconds else 0.0,
            "model_id": self.model_id,
        }


def caption_images(
    settings: Settings,
    catalog: Catalog,
    *,
    collection: str | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CaptionReport:
    """Caption every embedded image of `collection` (or all collections) that has no caption."""
    started = time.monotonic()
    infos = [catalog.require_collection(collection)] if collection else catalog.list_collections()
    ids = [info.id for info in infos]
    captioner = load_captioner(settings.captioner, settings.device)
    report = CaptionReport(model_id=captioner.model_id)
    total = sum(catalog.count_uncaptioned(i) for i in ids)
    skipped: set[int] = set()
    while True:
        batch = [
            r
            for r in catalog.images_without_caption(ids, batch_size + len(skipped))
            if r.id not in skipped
        ]
        batch = batch[:batch_size]
        if not batch:
            break
        images, readable = [], []
        for record in batch:
            try:
                images.append(decode_stored(record.path, draft_size=CAPTION_DRAFT_SIZE).image)
                readable.append(record)
            except DecodeFailure:
                skipped.add(record.id)  # gone since indexing; the next index run prunes it
                report.unreadable += 1
        captions = captioner.caption(images) if images else []
        for record, text in zip(readable, captions, strict=False):
            catalog.set_enrichment(record.id, caption=text, caption_model=captioner.model_id)
            report.captioned += 1
        if progress:
            progress(report.captioned + report.unreadable, total)
        if should_stop is not None and should_stop():
            break
    report.seconds = time.monotonic() - started
    return report
