"""Tagging after embedding: the images the embedding batches could not tag (label embeddings
not cached yet, tags turned on later, a new vocabulary) are tagged from their stored vectors.

It runs after the FAISS save, so every image is searchable before tagging starts."""

from __future__ import annotations

from indexer.enrich.tags import tag_untagged
from indexer.stages.collection import CollectionEncoder
from indexer.stages.run import Run
from search.models.zero_shot_tags import load_vocabulary, tagger_identity

__all__ = ["tag_what_is_untagged"]


def _has_untagged(run: Run) -> bool:
    settings = run.settings
    if not settings.tags:
        return False
    vocabulary = load_vocabulary(settings.tag_vocabulary)
    identity = tagger_identity(run.collection.model_id, vocabulary)
    return bool(run.catalog.untagged_ids(run.collection.id, identity))


def tag_what_is_untagged(run: Run, encoder: CollectionEncoder) -> None:
    """Tag the collection's untagged images (loading the encoder only if there are some)."""
    if _has_untagged(run):
        run.report.tagged = tag_untagged(
            run.settings, run.catalog, run.store, encoder.get(), run.options.should_stop
        )
