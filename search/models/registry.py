"""Loading models by SPEC, once per process: a loaded model is kept and shared, keyed by its
exact identity and device (like Immich's model cache), under a lock so concurrent requests
never load the same weights twice."""

from __future__ import annotations

import threading

from search.models.device import resolve_device
from search.models.encoder import Encoder
from search.models.model_spec import EncoderSpec, parse_encoder_spec

__all__ = ["clear_model_cache", "load_encoder", "resolve_encoder_spec"]

_lock = threading.Lock()
_encoders: dict[tuple[str, str, str], Encoder] = {}


def resolve_encoder_spec(spec: str) -> EncoderSpec:
    return parse_encoder_spec(spec)


def load_encoder(spec: str | EncoderSpec, device: str = "auto", cpu_precision: str = "auto") -> Encoder:
    """The encoder for `spec` on `device`, loading it on first use. `cpu_precision` (auto,
    fp32, bf16; `search.models.cpu_inference`) applies on the CPU only."""
    from search.models.open_clip_encoder import OpenClipEncoder

    resolved = spec if isinstance(spec, EncoderSpec) else parse_encoder_spec(spec)
    chosen = resolve_device(device)
    key = (resolved.model_id, chosen, cpu_precision if chosen == "cpu" else "")
    with _lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = OpenClipEncoder(resolved, device=chosen, cpu_precision=cpu_precision)
            _encoders[key] = encoder
        return encoder


def clear_model_cache() -> None:
    with _lock:
        _encoders.clear()
