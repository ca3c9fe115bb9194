"""Model families (one Protocol each) and the factory that turns a SPEC string into a model."""

from __future__ import annotations

from search.models.encoder import Encoder
from search.models.registry import load_encoder, resolve_encoder_spec

__all__ = ["Encoder", "load_encoder", "resolve_encoder_spec"]
