"""Keeping `image_tags` (one row per tag label of an image) in step with `images.tags`.

`images.tags` keeps the tagger's labels with their scores, as JSON, for display; `image_tags`
holds the same labels as rows, lower case, for the tag filters and tag facets
(`search.catalog.filters`, `search.catalog.facets`). The catalog calls `replace_image_tags`
in the same transaction wherever it writes `images.tags`; rows go with their image
(ON DELETE CASCADE).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from search.catalog.schema import ImageTag

__all__ = ["MAX_LABEL_CHARS", "normalise_label", "replace_image_tags", "tag_labels"]

MAX_LABEL_CHARS = 200  # the width of image_tags.label
_CHUNK = 500


def normalise_label(label: str) -> str:
    """A tag label as `image_tags` stores it and tag filters compare it: trimmed, lower case."""
    return label.strip().lower()[:MAX_LABEL_CHARS]


def tag_labels(tags: Iterable[Any] | None) -> set[str]:
    """The distinct labels of an `images.tags` value (`[{"label": ..., "score": ...}, ...]`)."""
    labels = set()
    for tag in tags or ():
        if isinstance(tag, dict) and isinstance(tag.get("label"), str):
            label = normalise_label(tag["label"])
            if label:
                labels.add(label)
    return labels


def replace_image_tags(session: Session, tags_by_id: Mapping[int, Iterable[Any] | None]) -> None:
    """Make the `image_tags` rows of these images the labels of their new `tags`."""
    ids = list(tags_by_id)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        session.execute(delete(ImageTag).where(ImageTag.image_id.in_(chunk)))
    rows = [
        {"image_id": image_id, "label": label}
        for image_id, tags in tags_by_id.items()
        for label in sorted(tag_labels(tags))
    ]
    if rows:
        session.execute(insert(ImageTag), rows)
