"""Model families (one Protocol each) and the registry that turns a SPEC string into a model.

The names below are resolved on first use (PEP 562 `__getattr__`), not when the package is
imported: Python runs this `__init__` before any submodule (`search.models.specs`,
`search.models.device`), and commands that only read the catalog (`pixseek stats`, `jobs`) must
not pay for torch, transformers and open_clip, which the model implementations import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def __getattr__(name: str) -> object:
    """Import the module that defines `name` now that someone asks for it."""
    if name == "Encoder":
        from search.models.encoders.encoder import Encoder

        return Encoder
    if name == "Captioner":
        from search.models.captioners.captioner import Captioner

        return Captioner
    if name == "Reranker":
        from search.models.rerankers.reranker import Reranker

        return Reranker
    if name in __all__:
        from search.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'search.models' has no attribute {name!r}")
