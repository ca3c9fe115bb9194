"""Model families (one Protocol each) and the registry that turns a SPEC string into a model."""

from __future__ import annotations

from search.models.captioners.captioner import Captioner
from search.models.encoders.encoder import Encoder
from search.models.registry import (
    clear_model_cache,
    load_captioner,
    load_encoder,
    load_reranker,
    register_captioner,
    register_encoder,
    register_reranker,
)
from search.models.rerankers.reranker import Reranker

__all__ = [
    "Captioner",
    "Encoder",
    "Reranker",
    "clear_model_cache",
    "load_captioner",
    "load_encoder",
    "load_reranker",
    "register_captioner",
    "register_encoder",
    "register_reranker",
]
