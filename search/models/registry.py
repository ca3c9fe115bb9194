"""Loading models by SPEC, once per process, for every family: encoders, rerankers, captioners.

A loaded model is kept and shared in one cache, keyed by its family, exact identity and device
(and, for encoders, the CPU precision, which changes the weights' dtype), like Immich's model
cache. One lock guards it, so concurrent requests never load the same weights twice.

`register_encoder` / `register_reranker` / `register_captioner` add a ready-made model under a
name, which from then on is a SPEC of that family (`search.models.specs`): `load_*` hands it
out as it is, on whatever device it lives. An extension point (a domain-specific matcher, a
test's oracle) that needs no monkeypatching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar, cast

from search.errors import ModelError
from search.models.captioners.blip2_captioner import Blip2Captioner
from search.models.captioners.blip_captioner import BlipCaptioner
from search.models.captioners.captioner import Captioner
from search.models.device import resolve_device
from search.models.encoders.encoder import Encoder
from search.models.hf_checkpoints import model_and_processor
from search.models.rerankers.blip2_itm_reranker import Blip2ItmReranker
from search.models.rerankers.blip_itm_reranker import BlipItmReranker
from search.models.rerankers.reranker import Reranker
from search.models.specs import (
    EncoderSpec,
    Family,
    GenerativeSpec,
    add_registered_name,
    forget_registered_names,
    parse_encoder_spec,
    parse_generative_spec,
    unknown_spec_message,
)

__all__ = [
    "clear_model_cache",
    "load_captioner",
    "load_encoder",
    "load_reranker",
    "register_captioner",
    "register_encoder",
    "register_reranker",
]

ModelT = TypeVar("ModelT")
# (family, model identity, device, CPU precision); registered models: ("", "") for both
CacheKey = tuple[Family, str, str, str]

_lock = threading.Lock()
_models: dict[CacheKey, object] = {}


def _registered_key(family: Family, name: str) -> CacheKey:
    return (family, f"registered:{name}", "", "")


def _register(family: Family, name: str, model: object, model_id: str) -> None:
    with _lock:
        add_registered_name(family, name, model_id)
        _models[_registered_key(family, name)] = model


def _registered(family: Family, name: str) -> object:
    with _lock:
        model = _models.get(_registered_key(family, name))
    if model is None:  # the cache was cleared after the name was parsed
        raise ModelError(unknown_spec_message(family, name))
    return model


def _load_once(key: CacheKey, build: Callable[[], ModelT]) -> ModelT:
    """The model cached under `key`, built (once, under the lock) on first use."""
    with _lock:
        if key not in _models:
            _models[key] = build()
        return cast(ModelT, _models[key])


def register_encoder(name: str, encoder: Encoder) -> None:
    """Make `encoder` available as `--model NAME` in this process."""
    _register("encoder", name, encoder, encoder.model_id)


def register_reranker(name: str, reranker: Reranker) -> None:
    """Make `reranker` available as `--reranker NAME` in this process."""
    _register("reranker", name, reranker, reranker.model_id)


def register_captioner(name: str, captioner: Captioner) -> None:
    """Make `captioner` available as `--captioner NAME` in this process."""
    _register("captioner", name, captioner, captioner.model_id)


def load_encoder(
    spec: str | EncoderSpec, device: str = "auto", cpu_precision: str = "auto"
) -> Encoder:
    """The encoder for `spec` on `device`, loading it on first use. `cpu_precision` (auto,
    fp32, bf16; `search.models.cpu_inference`) applies on the CPU only."""
    resolved = spec if isinstance(spec, EncoderSpec) else parse_encoder_spec(spec)
    if resolved.source == "registered":
        return cast(Encoder, _registered("encoder", resolved.spec))
    # open_clip, torch and torchvision load here, on the first encoder, not with the registry
    from search.models.encoders.open_clip_encoder import OpenClipEncoder

    chosen = resolve_device(device)
    key: CacheKey = ("encoder", resolved.model_id, chosen, cpu_precision if chosen == "cpu" else "")
    return _load_once(
        key, lambda: OpenClipEncoder(resolved, device=chosen, cpu_precision=cpu_precision)
    )


def _new_reranker(spec: GenerativeSpec, device: str) -> Reranker:
    model, processor = model_and_processor(spec, "reranker", device)
    if spec.architecture == "blip2":
        return Blip2ItmReranker(model, processor, model_id=spec.model_id)
    return BlipItmReranker(model, processor, model_id=spec.model_id)


def load_reranker(spec: str | GenerativeSpec, device: str = "auto") -> Reranker:
    """The reranker for `spec` on `device` (auto, cpu, cuda, cuda:N), loading it on first use."""
    resolved = spec if isinstance(spec, GenerativeSpec) else parse_generative_spec(spec, "reranker")
    if resolved.source == "registered":
        return cast(Reranker, _registered("reranker", resolved.spec))
    chosen = resolve_device(device)
    return _load_once(
        ("reranker", resolved.model_id, chosen, ""), lambda: _new_reranker(resolved, chosen)
    )


def _new_captioner(spec: GenerativeSpec, device: str) -> Captioner:
    model, processor = model_and_processor(spec, "captioner", device)
    if spec.architecture == "blip2":
        return Blip2Captioner(model, processor, model_id=spec.model_id)
    answerer = spec.answerer
    if answerer is None:
        return BlipCaptioner(model, processor, model_id=spec.model_id)
    return BlipCaptioner(
        model,
        processor,
        model_id=spec.model_id,
        load_answerer=lambda: model_and_processor(answerer, "answerer", device),
        answerer_id=answerer.spec,
    )


def load_captioner(spec: str | GenerativeSpec, device: str = "auto") -> Captioner:
    """The captioner for `spec` on `device` (auto, cpu, cuda, cuda:N), loading it on first use.

    A BLIP v1 captioner's VQA model is loaded later, on its first `ask`.
    """
    if isinstance(spec, GenerativeSpec):
        resolved = spec
    else:
        resolved = parse_generative_spec(spec, "captioner")
    if resolved.source == "registered":
        return cast(Captioner, _registered("captioner", resolved.spec))
    chosen = resolve_device(device)
    return _load_once(
        ("captioner", resolved.model_id, chosen, ""), lambda: _new_captioner(resolved, chosen)
    )


def clear_model_cache() -> None:
    """Forget every loaded and every registered model, of every family (tests; freeing memory)."""
    with _lock:
        _models.clear()
        forget_registered_names()
