"""The one SPEC grammar: how `--model`, `--reranker` and `--captioner` strings name weights.

Forms every family accepts, tried in this order:

- a name given to `register_encoder` / `register_reranker` / `register_captioner` in this
  process (`search.models.registry`): the model registered under it, as it is
- a preset name from `presets.json` (`default`, `quality`, `cpu`, `multilingual`,
  `multilingual-siglip`, `tiny-test`): its `encoder`, `reranker` or `captioner` entry. The
  multilingual presets name an encoder only (BLIP and BLIP-2 read English), so asking one
  for a reranker or captioner says so. For rerankers and captioners `tiny-test` works even
  before presets.json has one (BLIP-2 tiny-test).
- `local-dir:PATH`: a folder of weights (encoders: `open_clip_config.json` and weights;
  rerankers and captioners: what transformers' `save_pretrained` writes, model + processor)
- `hf-hub:ORG/REPO`: a model on the Hugging Face hub (or in its local cache)

Encoders (`--model`) also take:

- `MODEL/PRETRAINED`: an open_clip architecture and one of its pretrained tags
- `MODEL/path/to/checkpoint.pt`: an architecture and a local weights file
- `MODEL/random`: seeded random weights (benchmarks and tests only: results mean nothing)

Rerankers and captioners also take:

- `blip2-tiny-test`, `blip-tiny-test`: seeded random toy BLIP-2 / BLIP models built in-process
  (tests; they never touch the network or the Hugging Face cache; their outputs mean nothing)
- `ORG/REPO`: a transformers checkpoint from the Hugging Face cache (`HF_HOME`), downloaded
  first unless `HF_HUB_OFFLINE` is set
- captioners only, `CAPTION_SPEC+VQA_SPEC`: a BLIP v1 captioning model plus the BLIP VQA model
  that answers `ask`; the known Salesforce captioning repos get their VQA partner by default.

A reranker's or captioner's model class follows the checkpoint's `config.json` `model_type`
(`blip-2` or `blip`) when it is on disk, else the name (`blip2`/`blip-2` in it means BLIP-2).
Parsing pins the exact weights (`model_id`), so an index records what it was built with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from search.errors import ModelError
from search.models.encoders.open_clip_configs import register_pixseek_configs
from search.models.fingerprints import file_fingerprint, folder_fingerprint

__all__ = [
    "Architecture",
    "EncoderSpec",
    "Family",
    "GenerativeFamily",
    "GenerativeSpec",
    "add_registered_name",
    "forget_registered_names",
    "list_presets",
    "parse_encoder_spec",
    "parse_generative_spec",
    "preset_spec",
    "spec_forms",
    "unknown_spec_message",
]

Family = Literal["encoder", "reranker", "captioner"]
GenerativeFamily = Literal["reranker", "captioner"]
Architecture = Literal["blip2", "blip"]
EncoderSource = Literal["registered", "tag", "file", "random", "local-dir", "hf-hub"]
GenerativeSource = Literal["registered", "tiny-test", "hf-hub", "local-dir"]

RANDOM_SEED = 0
TINY_TEST_NAMES: dict[str, Architecture] = {"blip2-tiny-test": "blip2", "blip-tiny-test": "blip"}
TINY_TEST_FALLBACK = "blip2-tiny-test"  # what `tiny-test` means until presets.json names one
KNOWN_VQA_PARTNERS = {
    "Salesforce/blip-image-captioning-base": "Salesforce/blip-vqa-base",
    "Salesforce/blip-image-captioning-large": "Salesforce/blip-vqa-capfilt-large",
}
_MODEL_TYPES: dict[str, Architecture] = {"blip-2": "blip2", "blip": "blip"}
_FLAGS: dict[Family, str] = {"encoder": "model", "reranker": "reranker", "captioner": "captioner"}
_EXAMPLES = {
    "reranker": "Salesforce/blip-itm-base-coco",
    "captioner": "Salesforce/blip-image-captioning-base",
}
# name -> the registered model's model_id, per family; written by search.models.registry
_registered: dict[tuple[Family, str], str] = {}


@dataclass(frozen=True)
class EncoderSpec:
    """A resolved encoder spec. `model_id` names the weights exactly (recorded in the index)."""

    spec: str
    source: EncoderSource
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
            return f"open_clip:{self.architecture}/file:{self.path}#{file_fingerprint(self.path)}"
        if self.source == "local-dir":
            assert self.path is not None
            return f"open_clip:local-dir:{self.path}#{folder_fingerprint(self.path)}"
        return f"open_clip:hf-hub:{self.pretrained}"


@dataclass(frozen=True)
class GenerativeSpec:
    """A resolved reranker/captioner spec. `model_id` names the weights exactly."""

    spec: str
    family: GenerativeFamily
    architecture: Architecture | None  # None: a registered model, whatever it is
    source: GenerativeSource
    location: str  # repo id, absolute folder, tiny-test name, or a registered model's model_id
    answerer: GenerativeSpec | None = None  # BLIP v1 captioners: the VQA model behind `ask`

    @property
    def weights_id(self) -> str:
        if self.source == "tiny-test":
            return "tiny-test/random-seed0"
        return self.location if self.source == "hf-hub" else f"local-dir:{self.location}"

    @property
    def model_id(self) -> str:
        if self.source == "registered":
            return self.location
        role = "itm" if self.family == "reranker" else "caption"
        answerer = f"+vqa:{self.answerer.weights_id}" if self.answerer else ""
        return f"{self.architecture}-{role}:{self.weights_id}{answerer}"


# -- presets and registered names ---------------------------------------------------------------


@cache
def _presets() -> dict[str, dict[str, str]]:
    presets: dict[str, dict[str, str]] = json.loads(
        files("search.models").joinpath("presets.json").read_text()
    )
    return presets


def list_presets() -> dict[str, dict[str, str]]:
    """The named presets (`presets.json`): name -> {family: SPEC}."""
    return dict(_presets())


def preset_spec(name: str, family: Family) -> str | None:
    """The SPEC a preset gives for a model family (`encoder`, `reranker`, `captioner`)."""
    preset = _presets().get(name)
    return None if preset is None else preset.get(family)


def add_registered_name(family: Family, name: str, model_id: str) -> None:
    """Make `name` a SPEC of `family` naming the registered model `model_id` (the registry
    calls this, under its lock, next to keeping the model itself)."""
    _registered[(family, name)] = model_id


def forget_registered_names() -> None:
    """Drop every name given to `register_*` (the registry's cache clearing calls this)."""
    _registered.clear()


def _registered_names(family: Family) -> list[str]:
    return [name for kind, name in _registered if kind == family]


# -- messages -----------------------------------------------------------------------------------


def spec_forms(family: Family) -> str:
    """The valid forms of a `family` SPEC, for messages that say what would have worked."""
    presets = f"a preset ({', '.join(_presets())})"
    names = _registered_names(family)
    registered = f", a registered name ({', '.join(names)})" if names else ""
    if family == "encoder":
        return (
            f"{presets}{registered}, MODEL/PRETRAINED (e.g. ViT-B-32/laion2b_s34b_b79k), "
            "MODEL/path/to/checkpoint, local-dir:PATH or hf-hub:ORG/REPO"
        )
    pair = ", CAPTION_SPEC+VQA_SPEC" if family == "captioner" else ""
    return (
        f"{presets}{registered}, blip2-tiny-test, blip-tiny-test, a Hugging Face repo id such as "
        f"{_EXAMPLES[family]} (or hf-hub:ORG/REPO), local-dir:PATH{pair}"
    )


def unknown_spec_message(family: Family, text: str) -> str:
    """What every family says about a SPEC that matches no form (nor any registered name)."""
    if not text:
        return f"Empty {_FLAGS[family]} spec. Use {spec_forms(family)}."
    hint = f" For a folder, write local-dir:{text}." if Path(text).expanduser().is_dir() else ""
    return f"Unknown {_FLAGS[family]} spec {text!r}.{hint} Use {spec_forms(family)}."


# -- encoders -----------------------------------------------------------------------------------


def parse_encoder_spec(spec: str) -> EncoderSpec:
    """Resolve SPEC (see module docstring) or raise `ModelError` saying which forms are valid."""
    text = spec.strip()
    if not text:
        raise ModelError(unknown_spec_message("encoder", text))
    registered = _registered.get(("encoder", text))
    if registered is not None:
        return EncoderSpec(text, "registered", None, None, None, model_id=registered)
    preset = preset_spec(text, "encoder")
    if preset is not None:
        resolved = parse_encoder_spec(preset)
        return EncoderSpec(
            text, resolved.source, resolved.architecture, resolved.pretrained, resolved.path
        )
    if text.startswith("local-dir:"):
        folder = Path(text[len("local-dir:") :]).expanduser().resolve()
        if not (folder / "open_clip_config.json").is_file():
            raise ModelError(
                f"--model {text}: {folder} has no open_clip_config.json. A local-dir model is a "
                "folder with open_clip_config.json and its weights (open_clip_model.safetensors "
                "or open_clip_pytorch_model.bin)."
            )
        return EncoderSpec(text, "local-dir", None, None, folder)
    if text.startswith("hf-hub:"):
        repo = text[len("hf-hub:") :]
        if repo.count("/") != 1:
            raise ModelError(f"--model {text}: expected hf-hub:ORG/REPO.")
        return EncoderSpec(text, "hf-hub", None, repo, None)
    if "/" not in text:
        raise ModelError(unknown_spec_message("encoder", text))
    return _parse_architecture_spec(text)


def _parse_architecture_spec(text: str) -> EncoderSpec:
    """`MODEL/PRETRAINED`, `MODEL/random` or `MODEL/path/to/checkpoint`."""
    architecture, rest = text.split("/", 1)
    import open_clip  # local: importing torch is slow and only needed once a model is named

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


# -- rerankers and captioners -------------------------------------------------------------------


def _config_architecture(config_file: Path, flag: str) -> Architecture:
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise ModelError(f"{flag}: cannot read {config_file}: {exc}.") from exc
    if model_type not in _MODEL_TYPES:
        raise ModelError(
            f"{flag}: {config_file} says model_type {model_type!r}; only BLIP-2 ('blip-2') and "
            "BLIP ('blip') checkpoints are supported."
        )
    return _MODEL_TYPES[model_type]


def _hub_architecture(repo: str, flag: str) -> Architecture:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "config.json")
    if isinstance(cached, str):
        return _config_architecture(Path(cached), flag)
    name = repo.lower()
    return "blip2" if "blip2" in name or "blip-2" in name else "blip"


def _is_repo_id(text: str) -> bool:
    return text.count("/") == 1 and not text.startswith(("/", ".", "~")) and all(text.split("/"))


def parse_generative_spec(spec: str, family: GenerativeFamily) -> GenerativeSpec:  # noqa: PLR0911 - one return per SPEC form
    """Resolve SPEC (see module docstring) for `family`, or raise `ModelError` listing the forms."""
    text = spec.strip()
    if not text:
        raise ModelError(unknown_spec_message(family, text))
    registered = _registered.get((family, text))
    if registered is not None:
        return GenerativeSpec(text, family, None, "registered", registered)
    preset = preset_spec(text, family)
    if preset is not None:
        return replace(parse_generative_spec(preset, family), spec=text)
    if text == "tiny-test":
        return replace(parse_generative_spec(TINY_TEST_FALLBACK, family), spec=text)
    if text in list_presets():
        raise ModelError(
            f"--{family} {text}: preset {text!r} names no {family} in presets.json. "
            f"Use {spec_forms(family)}."
        )
    if text in TINY_TEST_NAMES:
        parsed = GenerativeSpec(text, family, TINY_TEST_NAMES[text], "tiny-test", text)
        if family == "captioner" and parsed.architecture == "blip":  # with a tiny VQA model
            return replace(parsed, answerer=parsed)
        return parsed
    if family == "captioner" and "+" in text:
        return _parse_captioner_pair(text)
    return _parse_checkpoint_spec(text, family)


def _parse_checkpoint_spec(text: str, family: GenerativeFamily) -> GenerativeSpec:
    """`local-dir:PATH`, `ORG/REPO` or `hf-hub:ORG/REPO`."""
    flag = f"--{family} {text}"
    if text.startswith("local-dir:"):
        folder = Path(text[len("local-dir:") :]).expanduser().resolve()
        config = folder / "config.json"
        if not config.is_file():
            raise ModelError(
                f"{flag}: {folder} has no config.json. A local-dir {family} is a folder written "
                "by transformers' save_pretrained (config.json, model.safetensors and the "
                "processor files)."
            )
        architecture = _config_architecture(config, flag)
        return GenerativeSpec(text, family, architecture, "local-dir", str(folder))
    repo = text.removeprefix("hf-hub:")
    if not _is_repo_id(repo):
        raise ModelError(unknown_spec_message(family, text))
    parsed = GenerativeSpec(text, family, _hub_architecture(repo, flag), "hf-hub", repo)
    partner = KNOWN_VQA_PARTNERS.get(repo) if family == "captioner" else None
    if partner is None:
        return parsed
    return replace(parsed, answerer=GenerativeSpec(partner, family, "blip", "hf-hub", partner))


def _parse_captioner_pair(text: str) -> GenerativeSpec:
    caption_text, vqa_text = (part.strip() for part in text.split("+", 1))
    captioner = parse_generative_spec(caption_text, "captioner")
    answerer = parse_generative_spec(vqa_text, "captioner")
    if captioner.architecture != "blip" or answerer.architecture != "blip":
        raise ModelError(
            f"--captioner {text}: CAPTION_SPEC+VQA_SPEC pairs a BLIP v1 captioning model with a "
            "BLIP v1 VQA model (e.g. Salesforce/blip-image-captioning-base+Salesforce/"
            "blip-vqa-base); BLIP-2 captioners answer questions themselves and take no '+'."
        )
    return replace(captioner, spec=text, answerer=replace(answerer, answerer=None))
