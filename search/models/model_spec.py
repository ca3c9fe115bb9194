"""Parsing `--model SPEC` strings into an exact, loadable description of the weights.

Accepted forms (the same for every model family):

- a preset name from `presets.json`: `default`, `quality`, `cpu`, `tiny-test`
- `MODEL/PRETRAINED`: an open_clip architecture and one of its pretrained tags
- `MODEL/path/to/checkpoint.pt`: an architecture and a local weights file
- `MODEL/random`: seeded random weights (benchmarks and tests only: results mean nothing)
- `local-dir:PATH`: a folder with `open_clip_config.json` and weights
- `hf-hub:ORG/REPO`: an open_clip model on the Hugging Face hub (or in its local cache)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from search.errors import ModelError

__all__ = ["EncoderSpec", "list_presets", "parse_encoder_spec", "preset_spec"]

Source = Literal["tag", "file", "random", "local-dir", "hf-hub"]
RANDOM_SEED = 0


@dataclass(frozen=True)
class EncoderSpec:
    """A resolved encoder spec. `model_id` names the weights exactly (recorded in the index)."""

    spec: str
    source: Source
    architecture: str | None
    pretrained: str | None
    path: Path | None
    model_id: str = ""

    def __post_init__(self) -> None:
        # Pinned at parse time: the weights a collection was built with are those seen now.
        if not self.model_id:
            object.__setattr__(self, "model_id", self._identity())

    def _identity(self) -> str:
        if self.source == "tag":
            return f"open_clip:{self.architecture}/{self.pretrained}"
        if self.source == "random":
            return f"open_clip:{self.architecture}/random-seed{RANDOM_SEED}"
        if self.source == "file":
            assert self.path is not None
            return f"open_clip:{self.architecture}/file:{self.path}#{_fingerprint(self.path)}"
        if self.source == "local-dir":
            assert self.path is not None
            return f"open_clip:local-dir:{self.path}#{_local_dir_fingerprint(self.path)}"
        return f"open_clip:hf-hub:{self.pretrained}"


@cache
def _presets() -> dict[str, dict[str, str]]:
    return json.loads(files("search.models").joinpath("presets.json").read_text())


def list_presets() -> dict[str, dict[str, str]]:
    return dict(_presets())


def preset_spec(name: str, family: str) -> str | None:
    """The SPEC a preset gives for a model family (`encoder`, `reranker`, `captioner`)."""
    preset = _presets().get(name)
    return None if preset is None else preset.get(family)


def _fingerprint(path: Path) -> str:
    """Cheap identity of a weights file: size plus hashes of its first and last MiB."""
    stat = path.stat()
    digest = hashlib.blake2b(str(stat.st_size).encode(), digest_size=8)
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if stat.st_size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


def _local_dir_fingerprint(folder: Path) -> str:
    weights = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    digest = hashlib.blake2b(digest_size=8)
    for path in weights:
        digest.update(path.name.encode())
        digest.update(_fingerprint(path).encode())
    return digest.hexdigest()


def parse_encoder_spec(spec: str) -> EncoderSpec:
    """Resolve SPEC (see module docstring) or raise `ModelError` saying which forms are valid."""
    text = spec.strip()
    if not text:
        raise ModelError("Empty model spec. Use a preset (default, quality, cpu, tiny-test) or MODEL/PRETRAINED.")
    preset = preset_spec(text, "encoder")
    if preset is not None:
        resolved = parse_encoder_spec(preset)
        return EncoderSpec(text, resolved.source, resolved.architecture, resolved.pretrained, resolved.path)
    if text.startswith("local-dir:"):
        folder = Path(text[len("local-dir:") :]).expanduser().resolve()
        if not (folder / "open_clip_config.json").is_file():
            raise ModelError(
                f"--model {text}: {folder} has no open_clip_config.json. A local-dir model is a folder "
                "with open_clip_config.json and its weights (open_clip_model.safetensors or "
                "open_clip_pytorch_model.bin)."
            )
        return EncoderSpec(text, "local-dir", None, None, folder)
    if text.startswith("hf-hub:"):
        repo = text[len("hf-hub:") :]
        if repo.count("/") != 1:
            raise ModelError(f"--model {text}: expected hf-hub:ORG/REPO.")
        return EncoderSpec(text, "hf-hub", None, repo, None)
    if "/" not in text:
        raise ModelError(
            f"Unknown model spec {text!r}. Use a preset ({', '.join(_presets())}), MODEL/PRETRAINED "
            "(e.g. ViT-B-32/laion2b_s34b_b79k), MODEL/path/to/checkpoint, local-dir:PATH or hf-hub:ORG/REPO."
        )
    architecture, rest = text.split("/", 1)
    import open_clip  # local: importing torch is slow and only needed once a model is named

    from search.models.open_clip_configs import register_pixseek_configs

    register_pixseek_configs()
    if architecture not in open_clip.list_models():
        raise ModelError(
            f"--model {text}: {architecture!r} is not an open_clip architecture. "
            "See `python -c 'import open_clip; print(open_clip.list_models())'`."
        )
    if rest == "random":
        return EncoderSpec(text, "random", architecture, None, None)
    tags = open_clip.list_pretrained_tags_by_model(architecture)
    if rest in tags:
        return EncoderSpec(text, "tag", architecture, rest, None)
    candidate = Path(rest).expanduser()
    if candidate.is_file():
        return EncoderSpec(text, "file", architecture, None, candidate.resolve())
    raise ModelError(
        f"--model {text}: {rest!r} is neither a pretrained tag of {architecture} nor an existing "
        f"checkpoint file. Tags for {architecture}: {', '.join(tags) or 'none'}."
    )
