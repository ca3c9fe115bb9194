"""The tagging stage: zero-shot tags for embedded images, computed from their stored vectors.

Tags never hold up embedding. While images are embedded, each batch is tagged on the spot only
if the label embeddings are already at hand (memory or the per-machine cache); otherwise the
images are stored untagged and become searchable at once, and this stage tags them when the
embedding is done: it computes the label embeddings once (cached for every later run and data
directory), then reads the vectors back from the vector store, newest segment first, and tags
them in committed batches. Resumable like captions: the catalog records which tagger wrote
each row's tags (`tags_model`), so a run killed or cancelled here, a run with tags turned off,
or a new vocabulary leaves rows that the next `pixseek index` tags, and only those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from search.catalog import Catalog
from search.models import Encoder
from search.models.zero_shot_tags import (
    ZeroShotTagger,
    load_vocabulary,
    tagger_identity,
    templates_for,
)
from search.settings import Settings
from search.storage.collection_store import CollectionStore

__all__ = ["TAG_COMMIT_ROWS", "build_tagger", "tag_untagged"]

logger = logging.getLogger(__name__)

TAG_COMMIT_ROWS = 2048  # rows per catalog transaction while tagging


def build_tagger(settings: Settings, encoder: Encoder, *, compute: bool) -> ZeroShotTagger | None:
    """The collection's tagger, or None when tags are off or (`compute=False`) its label
    embeddings are not cached yet."""
    if not settings.tags:
        return None
    vocabulary = load_vocabulary(settings.tag_vocabulary) if settings.tag_vocabulary else None
    try:
        return ZeroShotTagger(
            encoder,
            vocabulary,
            templates=templates_for(settings.tag_templates, encoder.device),
            cache_dir=settings.cache_dir / "label-embeddings",
            compute=compute,
        )
    except LookupError:
        return None


def tag_untagged(
    settings: Settings,
    catalog: Catalog,
    store: CollectionStore,
    encoder: Encoder,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Tag every embedded image of the store's collection that the current tagger has not
    tagged; returns how many were tagged."""
    if not settings.tags:
        return 0
    identity = tagger_identity(encoder.model_id, load_vocabulary(settings.tag_vocabulary))
    waiting = set(catalog.untagged_ids(store.collection.id, identity))
    if not waiting:
        return 0
    tagger = build_tagger(settings, encoder, compute=True)
    assert tagger is not None, "tags are on, so there is a tagger"
    assert tagger.identity == identity, "the tagger of this vocabulary and model"
    logger.info("Tagging %d images of collection %r.", len(waiting), store.collection.name)
    tagged = 0
    for ids, vectors in store.vectors.iter_segments(newest_first=True):
        mask = np.fromiter((i in waiting for i in ids.tolist()), dtype=bool, count=ids.size)
        if not mask.any():
            continue
        wanted_ids, wanted = ids[mask], vectors[mask]
        waiting.difference_update(wanted_ids.tolist())
        for start in range(0, wanted_ids.size, TAG_COMMIT_ROWS):
            chunk = wanted_ids[start : start + TAG_COMMIT_ROWS].tolist()
            tags = tagger.tag(
                wanted[start : start + TAG_COMMIT_ROWS], threshold=settings.tag_threshold
            )
            catalog.set_tags(dict(zip(chunk, tags, strict=False)), tagger.identity)
            tagged += len(chunk)
            if should_stop is not None and should_stop():
                return tagged
        if not waiting:
            break
    return tagged
