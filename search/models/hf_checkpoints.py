"""transformers checkpoints for rerankers and captioners: the model and processor a parsed
`GenerativeSpec` names, from the Hugging Face cache, a `save_pretrained` folder or the tiny
in-process builders, on a device and in that device's inference dtype.

Weights are fp32 on CPU and bf16 (fp16 where bf16 is unsupported) on CUDA. A checkpoint made
for another task loads "fine" in transformers, with the head it lacks left random; that is
refused here, by the weights each class must find.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from search.errors import ModelError
from search.models.hub import missing_weights_message, require_hub_files
from search.models.specs import Architecture, GenerativeSpec, spec_forms
from search.models.tiny_test_models import (
    build_tiny_blip2_captioning,
    build_tiny_blip2_itm,
    build_tiny_blip_captioning,
    build_tiny_blip_itm,
    build_tiny_blip_vqa,
)

if TYPE_CHECKING:
    import torch

__all__ = ["Role", "inference_dtype", "model_and_processor"]

Role = Literal["reranker", "captioner", "answerer"]  # answerer: a BLIP v1 captioner's VQA model

# (role, architecture) -> the transformers class, and the prefix of weights its checkpoints must
# provide: a checkpoint made for another task loads "fine", with that head left random
_CLASSES: dict[tuple[Role, Architecture], tuple[str, str]] = {
    ("reranker", "blip2"): ("Blip2ForImageTextRetrieval", "itm_head."),
    ("reranker", "blip"): ("BlipForImageTextRetrieval", "itm_head."),
    ("captioner", "blip2"): ("Blip2ForConditionalGeneration", "language_projection."),
    ("captioner", "blip"): ("BlipForConditionalGeneration", "text_decoder."),
    ("answerer", "blip"): ("BlipForQuestionAnswering", "text_encoder."),
}
_CONFIG_FILE = "config.json"  # every transformers checkpoint has one; its absence means a download
_TINY_BUILDERS: dict[tuple[Role, Architecture], Callable[[], tuple[Any, Any]]] = {
    ("reranker", "blip2"): build_tiny_blip2_itm,
    ("reranker", "blip"): build_tiny_blip_itm,
    ("captioner", "blip2"): build_tiny_blip2_captioning,
    ("captioner", "blip"): build_tiny_blip_captioning,
    ("answerer", "blip"): build_tiny_blip_vqa,
}


def inference_dtype(device: str) -> torch.dtype:
    """bf16 on CUDA where supported, else fp16; fp32 on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _architecture(spec: GenerativeSpec) -> Architecture:
    if spec.architecture is None:  # a registered model: the registry hands it out as it is
        raise ModelError(f"--{spec.family} {spec.spec}: a registered model has no checkpoint.")
    return spec.architecture


def _hub_what(spec: GenerativeSpec, role: Role, class_name: str) -> tuple[str, str]:
    """How the missing-weights message names `spec`'s weights, and how this family points at
    weights on disk instead."""
    local = f"--{spec.family} {'CAPTION_SPEC+' if role == 'answerer' else ''}local-dir:PATH"
    what = f"--{spec.family} {spec.spec}: weights for {class_name} from Hugging Face repo"
    return (
        f"{what} {spec.location}",
        f"save the model and processor with save_pretrained into a folder and pass {local}",
    )


def _load_failure(spec: GenerativeSpec, role: Role, class_name: str, cause: OSError) -> str:
    """Why an unreadable folder, or weights neither cached nor downloadable, stopped the load."""
    if spec.source == "local-dir":
        return (
            f"--{spec.family} {spec.spec}: could not load {class_name} from {spec.location}: "
            f"{cause}. The folder must hold what transformers' save_pretrained writes for the "
            "model and its processor."
        )
    what, local_fix = _hub_what(spec, role, class_name)
    return missing_weights_message(what, cause, local_fix=local_fix)


def _check_loaded(
    spec: GenerativeSpec,
    class_name: str,
    required_prefix: str,
    info: dict[str, Any],
    processor: Any,
) -> None:
    """Refuse a checkpoint that lacks the class's head, or comes without a usable processor."""
    flag = f"--{spec.family} {spec.spec}"
    missing = sorted(key for key in info.get("missing_keys", ()) if key.startswith(required_prefix))
    if missing:
        more = ", ..." if len(missing) > 3 else ""
        raise ModelError(
            f"{flag}: {spec.location} is not a {class_name} checkpoint: it lacks {len(missing)} of "
            f"its weights ({', '.join(missing[:3])}{more}), which would be random. "
            f"Use {spec_forms(spec.family)}."
        )
    if not (hasattr(processor, "image_processor") and hasattr(processor, "tokenizer")):
        raise ModelError(
            f"{flag}: {spec.location} has no image processor + tokenizer pair (AutoProcessor "
            f"gave {type(processor).__name__}); save the processor next to the model."
        )


def _load_pretrained(spec: GenerativeSpec, role: Role, device: str) -> tuple[Any, Any]:
    """Model and processor for `spec` from the HF cache or a local folder, on `device`."""
    class_name, required_prefix = _CLASSES[(role, _architecture(spec))]
    if spec.source == "hf-hub":  # fail at once (before importing transformers) when neither
        what, local_fix = _hub_what(spec, role, class_name)  # cached nor downloadable
        require_hub_files(spec.location, [[_CONFIG_FILE]], what=what, local_fix=local_fix)
    import transformers

    try:
        model, info = getattr(transformers, class_name).from_pretrained(
            spec.location, dtype=inference_dtype(device), output_loading_info=True
        )
        auto_processor: Any = transformers.AutoProcessor  # its from_pretrained is unannotated
        processor = auto_processor.from_pretrained(spec.location)
    except OSError as exc:
        raise ModelError(_load_failure(spec, role, class_name, exc)) from exc
    except Exception as exc:
        flag = f"--{spec.family} {spec.spec}"
        raise ModelError(f"{flag}: could not load {class_name}: {exc}") from exc
    _check_loaded(spec, class_name, required_prefix, info, processor)
    return model.to(device).eval(), processor


def _build_tiny(spec: GenerativeSpec, role: Role, device: str) -> tuple[Any, Any]:
    model, processor = _TINY_BUILDERS[(role, _architecture(spec))]()
    return model.to(device=device, dtype=inference_dtype(device)), processor


def model_and_processor(spec: GenerativeSpec, role: Role, device: str) -> tuple[Any, Any]:
    """The transformers model for `spec` in `role`, on `device`, and its processor."""
    if spec.source == "tiny-test":
        return _build_tiny(spec, role, device)
    return _load_pretrained(spec, role, device)
