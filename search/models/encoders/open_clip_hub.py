"""Which Hugging Face repos an open_clip encoder SPEC loads files from, so that a missing one is
reported at once, by name, before open_clip or transformers touch the hub.

A plain CLIP needs one repo: its weights (a pretrained tag's `hf_hub` entry, or the `hf-hub:`
repo itself). A model whose text tower comes from transformers needs more, from repos named in
its open_clip config's `text_cfg`: `hf_model_name` (the tower's `config.json`, read by
`AutoConfig` even when the weights come from the CLIP checkpoint; e.g. `xlm-roberta-base` for
`xlm-roberta-base-ViT-B-32`) and `hf_tokenizer_name` (`AutoTokenizer`'s files; e.g.
`timm/ViT-B-16-SigLIP-i18n-256`, the weights repo itself). A `local-dir:` model keeps its
tokenizer in its folder, but still names its text tower's config repo.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.models.hub import cached_hub_file, missing_hub_repos
from search.models.specs import EncoderSpec

__all__ = [
    "TOKENIZER_FILES",
    "HubNeed",
    "describe_hub_needs",
    "hub_needs",
    "missing_hub_needs",
    "text_tower_config",
]

# Any of these in a repo's cache means its tokenizer was fetched (which one a tokenizer has
# differs by family: tokenizer.json for fast tokenizers, a sentencepiece model, BPE/WordPiece
# vocabularies); transformers says precisely what else is missing if the load still fails.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.json",
    "vocab.txt",
)
_TEXT_CONFIG_FILES = ("config.json",)
_OPEN_CLIP_CONFIG = "open_clip_config.json"


@dataclass(frozen=True)
class HubNeed:
    """Files one repo must provide: `roles` say what for (weights, tokenizer, text-tower
    config), `files` are groups of alternative names, one of each group needed."""

    repo: str
    roles: tuple[str, ...]
    files: tuple[tuple[str, ...], ...]


def _weights_need(spec: EncoderSpec) -> tuple[str, list[tuple[str, ...]]] | None:
    """The repo the weights come from and the files needed there (open_clip takes a
    .safetensors copy over the .bin), or None when they come from elsewhere."""
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    if spec.source == "hf-hub" and spec.pretrained:
        return spec.pretrained, [(HF_CONFIG_NAME,), (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)]
    if spec.source != "tag":
        return None
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.architecture or "", spec.pretrained or "")
    repo, filename = os.path.split(str(cfg.get("hf_hub", "")))
    if not repo:
        return None
    filename = filename or HF_WEIGHTS_NAME
    names = [filename]
    if filename == HF_WEIGHTS_NAME:
        names.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return repo, [tuple(names)]


def _read_model_cfg(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # open_clip reports an unreadable config itself, with its own words
    model_cfg = config.get("model_cfg", {}) if isinstance(config, dict) else {}
    return model_cfg if isinstance(model_cfg, dict) else {}


def text_tower_config(spec: EncoderSpec) -> dict[str, Any]:
    """The `text_cfg` of `spec`'s open_clip config, as far as it can be read without a
    download: the built-in or registered architecture, a `local-dir:` folder's
    open_clip_config.json, or an `hf-hub:` repo's once it is cached. Empty when unknown."""
    model_cfg: dict[str, Any] = {}
    if spec.architecture:
        import open_clip

        model_cfg = open_clip.get_model_config(spec.architecture) or {}
    elif spec.source == "local-dir" and spec.path is not None:
        model_cfg = _read_model_cfg(spec.path / _OPEN_CLIP_CONFIG)
    elif spec.source == "hf-hub" and spec.pretrained:
        cached = cached_hub_file(spec.pretrained, [_OPEN_CLIP_CONFIG])
        if cached is not None:
            model_cfg = _read_model_cfg(Path(cached))
    text_cfg = model_cfg.get("text_cfg", {})
    return text_cfg if isinstance(text_cfg, dict) else {}


def _hub_repo(name: object) -> str | None:
    """`name` when it names a hub repo, None for nothing or a folder on disk."""
    if not isinstance(name, str) or not name or Path(name).expanduser().exists():
        return None
    return name


def hub_needs(spec: EncoderSpec) -> list[HubNeed]:
    """Every hub repo `spec` loads files from, each once, weights first."""
    wanted: dict[str, tuple[list[str], list[tuple[str, ...]]]] = {}

    def add(repo: str | None, role: str, files: list[tuple[str, ...]]) -> None:
        if repo is None:
            return
        roles, groups = wanted.setdefault(repo, ([], []))
        roles.append(role)
        groups.extend(group for group in files if group not in groups)

    weights = _weights_need(spec)
    if weights is not None:
        add(weights[0], "weights", weights[1])
    text_cfg = text_tower_config(spec)
    add(_hub_repo(text_cfg.get("hf_model_name")), "text-tower config", [_TEXT_CONFIG_FILES])
    if spec.source != "local-dir":  # open_clip reads a local-dir model's tokenizer from it
        add(_hub_repo(text_cfg.get("hf_tokenizer_name")), "tokenizer", [TOKENIZER_FILES])
    return [HubNeed(repo, tuple(roles), tuple(groups)) for repo, (roles, groups) in wanted.items()]


def missing_hub_needs(needs: list[HubNeed]) -> list[HubNeed]:
    """The needs whose files are not all in the hub cache (reads the disk only)."""
    missing = set(missing_hub_repos([(need.repo, need.files) for need in needs]))
    return [need for need in needs if need.repo in missing]


def describe_hub_needs(spec: EncoderSpec, needs: list[HubNeed]) -> str:
    """How the missing-weights message names what `spec` lacks: "Weights for model 'default'
    (Hugging Face repo R)" when that is all, otherwise each repo with what it is for."""
    if not needs:
        return f"Weights for model {spec.spec!r}"
    if len(needs) == 1 and needs[0].roles == ("weights",):
        return f"Weights for model {spec.spec!r} (Hugging Face repo {needs[0].repo})"
    parts = "; ".join(
        f"Hugging Face repo {need.repo}: {' and '.join(need.roles)}" for need in needs
    )
    return f"Files for model {spec.spec!r} ({parts})"
