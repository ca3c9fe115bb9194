"""An open_clip model's tokenizer, with a Hugging Face tokenizer read from its cached files.

open_clip hands a model's `hf_tokenizer_name` (e.g. `xlm-roberta-base`,
`timm/ViT-B-16-SigLIP-i18n-256`) to transformers' `AutoTokenizer` as a repo id. transformers
then also asks the repo for a `config.json`; the SigLIP repos have none, and with
`HF_HUB_OFFLINE=1` a file that is absent from the cache and was never recorded as absent on the
hub (a cache filled with `hf download` records nothing) fails the load. Reading the tokenizer
from the cached snapshot folder instead needs only the files that are there, makes no request
at all, and builds the same tokenizer with the same settings open_clip would use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.models.encoders.open_clip_hub import TOKENIZER_FILES, text_tower_config
from search.models.hub import cached_hub_file
from search.models.specs import EncoderSpec

__all__ = ["cached_tokenizer_folder", "load_open_clip_tokenizer"]


def cached_tokenizer_folder(spec: EncoderSpec) -> Path | None:
    """The cached snapshot folder holding `spec`'s Hugging Face tokenizer, or None when the
    model has no hub tokenizer (or a `local-dir:` one) or it is not cached yet."""
    if spec.source == "local-dir":  # open_clip reads the tokenizer from the folder itself
        return None
    repo = text_tower_config(spec).get("hf_tokenizer_name")
    if not isinstance(repo, str) or not repo or Path(repo).expanduser().exists():
        return None
    cached = cached_hub_file(repo, TOKENIZER_FILES)
    return None if cached is None else Path(cached).parent


def load_open_clip_tokenizer(spec: EncoderSpec, name: str) -> Any:
    """The tokenizer open_clip's `get_tokenizer(name)` gives, its HF files read from the cache
    when they are there (see the module docstring)."""
    import open_clip
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer

    folder = cached_tokenizer_folder(spec)
    if folder is None:
        return open_clip.get_tokenizer(name)
    text_cfg = text_tower_config(spec)
    return HFTokenizer(
        str(folder),
        context_length=text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH),
        tokenizer_mode=text_cfg.get("tokenizer_mode"),
        **text_cfg.get("tokenizer_kwargs", {}),
    )
