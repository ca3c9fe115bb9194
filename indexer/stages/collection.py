"""Opening the collection a run writes to, and its encoder.

A new collection takes the encoder of `--model` (or the configured default) and records its
model id and dimension; an existing one keeps its own, and a `--model` naming another model is
refused, since vectors of two encoders cannot be compared. The encoder is loaded only when a
stage needs it: a re-index that finds nothing to embed or tag never loads a model.
"""

from __future__ import annotations

from search.catalog import Catalog, CollectionInfo
from search.errors import ModelMismatchError
from search.models import Encoder, load_encoder
from search.models.specs import parse_encoder_spec
from search.settings import Settings

__all__ = ["CollectionEncoder", "open_collection"]


def open_collection(
    settings: Settings, catalog: Catalog, name: str, model_spec: str | None
) -> tuple[CollectionInfo, Encoder | None]:
    """The collection `name` (created when new, with its encoder, which is then returned too)."""
    collection = catalog.get_collection(name)
    if collection is None:
        spec = model_spec or settings.model
        encoder = load_encoder(spec, settings.device, settings.cpu_precision)
        created = catalog.create_collection(
            name, model_spec=spec, model_id=encoder.model_id, dim=encoder.dim
        )
        return created, encoder
    if model_spec is not None:
        wanted = parse_encoder_spec(model_spec).model_id
        if wanted != collection.model_id:
            raise ModelMismatchError(
                f"Collection {name!r} was indexed with {collection.model_id}; --model {model_spec} "
                f"is {wanted}. Mixing encoders would make scores meaningless: index into another "
                "collection (--collection NEW_NAME) or drop --model to use the collection's own."
            )
    return collection, None


class CollectionEncoder:
    """The collection's encoder, loaded on first use (or the one `open_collection` loaded)."""

    def __init__(
        self, settings: Settings, collection: CollectionInfo, loaded: Encoder | None = None
    ) -> None:
        self.settings = settings
        self.collection = collection
        self._encoder = loaded

    def get(self) -> Encoder:
        if self._encoder is None:
            self._encoder = _load(self.settings, self.collection)
        return self._encoder


def _load(settings: Settings, collection: CollectionInfo) -> Encoder:
    encoder = load_encoder(collection.model_spec, settings.device, settings.cpu_precision)
    if encoder.model_id != collection.model_id:
        raise ModelMismatchError(
            f"Collection {collection.name!r} was indexed with {collection.model_id}, but its model "
            f"spec {collection.model_spec!r} now loads {encoder.model_id} (the weights changed). "
            "Index into a new collection to use the new weights."
        )
    return encoder
