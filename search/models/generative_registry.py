"""Rerankers and captioners by SPEC, loaded once per process and shared.

Accepted `--reranker SPEC` / `--captioner SPEC` forms:

- a preset name (`default`, `quality`, `cpu`, `tiny-test`): its `reranker` / `captioner` entry
  in `presets.json`. `tiny-test` works even before presets.json has one (BLIP-2 tiny-test).
- `blip2-tiny-test`, `blip-tiny-test`: seeded random toy BLIP-2 / BLIP models built in-process
  (tests; they never touch the network or the Hugging Face cache; their outputs mean nothing)
- `ORG/REPO` or `hf-hub:ORG/REPO`: a transformers checkpoint from the Hugging Face cache
  (`HF_HOME`), downloaded first unless `HF_HUB_OFFLINE` is set
- `local-dir:PATH`: a folder written by transformers' `save_pretrained` (model + processor)
- captioners only, `CAPTION_SPEC+VQA_SPEC`: a BLIP v1 captioning model plus the BLIP VQA model
  that answers `ask`; the known Salesforce captioning repos get their VQA partner by default.

The model class follows the checkpoint's `config.json` `model_type` (`blip-2` or `blip`) when it
is on disk, else the name (`blip2`/`blip-2` in it means BLIP-2). Loaded models are kept per
(model id, device) under one lock, so concurrent requests never load the same weights twice.
Weights are fp32 on CPU and bf16 (fp16 where bf16 is unsupported) on CUDA.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from search.errors import ModelError
from search.models.captioner import Captioner
from search.models.device import resolve_device
from search.models.model_spec import list_presets, preset_spec
from search.models.reranker import Reranker

if TYPE_CHECKING:
    import torch

__all__ = [
    "GenerativeSpec",
    "clear_generative_model_cache",
    "inference_dtype",
    "load_captioner",
    "load_reranker",
    "parse_generative_spec",
    "register_reranker",
]

Family = Literal["reranker", "captioner"]
Role = Literal["reranker", "captioner", "answerer"]  # answerer: a BLIP v1 captioner's VQA model
Architecture = Literal["blip2", "blip"]
Source = Literal["tiny-test", "hf-hub", "local-dir"]

TINY_TEST_NAMES: dict[str, Architecture] = {"blip2-tiny-test": "blip2", "blip-tiny-test": "blip"}
TINY_TEST_FALLBACK = "blip2-tiny-test"  # what `tiny-test` means until presets.json names one
KNOWN_VQA_PARTNERS = {
    "Salesforce/blip-image-captioning-base": "Salesforce/blip-vqa-base",
    "Salesforce/blip-image-captioning-large": "Salesforce/blip-vqa-capfilt-large",
}
_MODEL_TYPES: dict[str, Architecture] = {"blip-2": "blip2", "blip": "blip"}
# (role, architecture) -> the transformers class, and the prefix of weights its checkpoints must
# provide: a checkpoint made for another task loads "fine", with that head left random
_CLASSES: dict[tuple[Role, Architecture], tuple[str, str]] = {
    ("reranker", "blip2"): ("Blip2ForImageTextRetrieval", "itm_head."),
    ("reranker", "blip"): ("BlipForImageTextRetrieval", "itm_head."),
    ("captioner", "blip2"): ("Blip2ForConditionalGeneration", "language_projection."),
    ("captioner", "blip"): ("BlipForConditionalGeneration", "text_decoder."),
    ("answerer", "blip"): ("BlipForQuestionAnswering", "text_encoder."),
}
_EXAMPLES = {
    "reranker": "Salesforce/blip-itm-base-coco",
    "captioner": "Salesforce/blip-image-captioning-base",
}


@dataclass(frozen=True)
class GenerativeSpec:
    """A resolved reranker/captioner spec. `model_id` names the weights exactly."""

    spec: str
    family: Family
    architecture: Architecture
    source: Source
    location: str  # repo id, absolute folder path, or the tiny-test name
    answerer: GenerativeSpec | None = None  # BLIP v1 captioners: the VQA model behind `ask`

    @property
    def weights_id(self) -> str:
        if self.source == "tiny-test":
            return "tiny-test/random-seed0"
        return self.location if self.source == "hf-hub" else f"local-dir:{self.location}"

    @property
    def model_id(self) -> str:
        role = "itm" if self.family == "reranker" else "caption"
        answerer = f"+vqa:{self.answerer.weights_id}" if self.answerer else ""
        return f"{self.architecture}-{role}:{self.weights_id}{answerer}"


def _forms(family: Family) -> str:
    pair = ", CAPTION_SPEC+VQA_SPEC" if family == "captioner" else ""
    return (
        f"a preset ({', '.join(list_presets())}), blip2-tiny-test, blip-tiny-test, a Hugging "
        f"Face repo id such as {_EXAMPLES[family]} (or hf-hub:ORG/REPO), local-dir:PATH{pair}"
    )


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


def parse_generative_spec(spec: str, family: Family) -> GenerativeSpec:
    """Resolve SPEC (see module docstring) for `family`, or raise `ModelError` listing the forms."""
    text = spec.strip()
    flag = f"--{family} {text}"
    if not text:
        raise ModelError(f"Empty {family} spec. Use {_forms(family)}.")
    preset = preset_spec(text, family)
    if preset is not None:
        return replace(parse_generative_spec(preset, family), spec=text)
    if text == "tiny-test":
        return replace(parse_generative_spec(TINY_TEST_FALLBACK, family), spec=text)
    if text in list_presets():
        raise ModelError(
            f"{flag}: preset {text!r} names no {family} in presets.json. Use {_forms(family)}."
        )
    if text in TINY_TEST_NAMES:
        parsed = GenerativeSpec(text, family, TINY_TEST_NAMES[text], "tiny-test", text)
        if family == "captioner" and parsed.architecture == "blip":  # with a tiny VQA model
            return replace(parsed, answerer=parsed)
        return parsed
    if family == "captioner" and "+" in text:
        return _parse_captioner_pair(text)
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
    if _is_repo_id(repo):
        parsed = GenerativeSpec(text, family, _hub_architecture(repo, flag), "hf-hub", repo)
        partner = KNOWN_VQA_PARTNERS.get(repo) if family == "captioner" else None
        if partner is None:
            return parsed
        return replace(parsed, answerer=GenerativeSpec(partner, family, "blip", "hf-hub", partner))
    hint = f" For a folder, write local-dir:{text}." if Path(text).expanduser().is_dir() else ""
    raise ModelError(f"Unknown {family} spec {text!r}.{hint} Use {_forms(family)}.")


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


def inference_dtype(device: str) -> torch.dtype:
    """bf16 on CUDA where supported, else fp16; fp32 on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _offline() -> bool:
    from huggingface_hub import constants

    from_environment = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    return bool(constants.HF_HUB_OFFLINE) or from_environment


def _missing_weights_message(
    spec: GenerativeSpec, role: Role, class_name: str, cause: BaseException
) -> str:
    from huggingface_hub import constants

    flag = f"--{spec.family} {spec.spec}"
    if spec.source == "local-dir":
        return (
            f"{flag}: could not load {class_name} from {spec.location}: {cause}. The folder must "
            "hold what transformers' save_pretrained writes for the model and its processor."
        )
    local = f"--{spec.family} {'CAPTION_SPEC+' if role == 'answerer' else ''}local-dir:PATH"
    reason = "HF_HUB_OFFLINE is set, so nothing is downloaded"
    if not _offline():
        reason = f"download failed: {cause}"
    return (
        f"{flag}: weights for {class_name} from Hugging Face repo {spec.location} are not in the "
        f"Hugging Face cache ({constants.HF_HUB_CACHE}) and could not be fetched ({reason}). "
        "Fix one of: run once with internet access (HF_HUB_OFFLINE unset) to fill the cache; "
        "copy a filled cache into HF_HOME; or save the model and processor with save_pretrained "
        f"into a folder and pass {local}."
    )


def _load_pretrained(spec: GenerativeSpec, role: Role, device: str) -> tuple[Any, Any]:
    """Model and processor for `spec` from the HF cache or a local folder, on `device`."""
    import transformers

    class_name, required_prefix = _CLASSES[(role, spec.architecture)]
    flag = f"--{spec.family} {spec.spec}"
    try:
        model, info = getattr(transformers, class_name).from_pretrained(
            spec.location, dtype=inference_dtype(device), output_loading_info=True
        )
        processor = transformers.AutoProcessor.from_pretrained(spec.location)
    except OSError as exc:
        raise ModelError(_missing_weights_message(spec, role, class_name, exc)) from exc
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for unusable folders
        raise ModelError(f"{flag}: could not load {class_name}: {exc}") from exc
    missing = sorted(key for key in info.get("missing_keys", ()) if key.startswith(required_prefix))
    if missing:
        more = ", ..." if len(missing) > 3 else ""
        raise ModelError(
            f"{flag}: {spec.location} is not a {class_name} checkpoint: it lacks {len(missing)} of "
            f"its weights ({', '.join(missing[:3])}{more}), which would be random. "
            f"Use {_forms(spec.family)}."
        )
    if not (hasattr(processor, "image_processor") and hasattr(processor, "tokenizer")):
        raise ModelError(
            f"{flag}: {spec.location} has no image processor + tokenizer pair (AutoProcessor "
            f"gave {type(processor).__name__}); save the processor next to the model."
        )
    return model.to(device).eval(), processor


def _build_tiny(spec: GenerativeSpec, role: Role, device: str) -> tuple[Any, Any]:
    from search.models import tiny_test_models as tiny

    builders: dict[tuple[Role, Architecture], Callable[[], tuple[Any, Any]]] = {
        ("reranker", "blip2"): tiny.build_tiny_blip2_itm,
        ("reranker", "blip"): tiny.build_tiny_blip_itm,
        ("captioner", "blip2"): tiny.build_tiny_blip2_captioning,
        ("captioner", "blip"): tiny.build_tiny_blip_captioning,
        ("answerer", "blip"): tiny.build_tiny_blip_vqa,
    }
    model, processor = builders[(role, spec.architecture)]()
    return model.to(device=device, dtype=inference_dtype(device)), processor


def _model_and_processor(spec: GenerativeSpec, role: Role, device: str) -> tuple[Any, Any]:
    if spec.source == "tiny-test":
        return _build_tiny(spec, role, device)
    return _load_pretrained(spec, role, device)


def _new_reranker(spec: GenerativeSpec, device: str) -> Reranker:
    model, processor = _model_and_processor(spec, "reranker", device)
    if spec.architecture == "blip2":
        from search.models.blip2_itm_reranker import Blip2ItmReranker

        return Blip2ItmReranker(model, processor, model_id=spec.model_id)
    from search.models.blip_itm_reranker import BlipItmReranker

    return BlipItmReranker(model, processor, model_id=spec.model_id)


def _new_captioner(spec: GenerativeSpec, device: str) -> Captioner:
    model, processor = _model_and_processor(spec, "captioner", device)
    if spec.architecture == "blip2":
        from search.models.blip2_captioner import Blip2Captioner

        return Blip2Captioner(model, processor, model_id=spec.model_id)
    from search.models.blip_captioner import BlipCaptioner

    answerer = spec.answerer
    return BlipCaptioner(
        model,
        processor,
        model_id=spec.model_id,
        load_answerer=None if answerer is None else (
            lambda: _model_and_processor(answerer, "answerer", device)
        ),
        answerer_id=None if answerer is None else answerer.spec,
    )


_lock = threading.Lock()
_rerankers: dict[tuple[str, str], Reranker] = {}
_captioners: dict[tuple[str, str], Captioner] = {}


_registered_rerankers: dict[str, Reranker] = {}


def register_reranker(name: str, reranker: Reranker) -> None:
    """Make a `Reranker` implementation available as `--reranker NAME` in this process (an
    extension point: e.g. a domain-specific matcher, or a test's oracle)."""
    with _lock:
        _registered_rerankers[name] = reranker


def _load_once(cache: dict[tuple[str, str], Any], spec: GenerativeSpec, device: str,
               build: Callable[[GenerativeSpec, str], Any]) -> Any:
    """The model in `cache` for `spec` on `device`, built (once, under the lock) on first use."""
    chosen = resolve_device(device)
    key = (spec.model_id, chosen)
    with _lock:
        if key not in cache:
            cache[key] = build(spec, chosen)
        return cache[key]


def load_reranker(spec: str | GenerativeSpec, device: str = "auto") -> Reranker:
    """The reranker for `spec` on `device` (auto, cpu, cuda, cuda:N), loading it on first use."""
    if isinstance(spec, str) and spec in _registered_rerankers:
        return _registered_rerankers[spec]
    resolved = spec if isinstance(spec, GenerativeSpec) else parse_generative_spec(spec, "reranker")
    return _load_once(_rerankers, resolved, device, _new_reranker)


def load_captioner(spec: str | GenerativeSpec, device: str = "auto") -> Captioner:
    """The captioner for `spec` on `device` (auto, cpu, cuda, cuda:N), loading it on first use.

    A BLIP v1 captioner's VQA model is loaded later, on its first `ask`.
    """
    resolved = spec if isinstance(spec, GenerativeSpec) else parse_generative_spec(spec, "captioner")
    return _load_once(_captioners, resolved, device, _new_captioner)


def clear_generative_model_cache() -> None:
    """Forget every loaded reranker and captioner (tests; freeing memory)."""
    with _lock:
        _rerankers.clear()
        _registered_rerankers.clear()
        _captioners.clear()
