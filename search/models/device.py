"""Choosing the torch device and precision: CUDA fp16 when present, else CPU fp32."""

from __future__ import annotations

from search.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(requested: str = "auto") -> str:
    """The torch device for `requested`: `auto` is CUDA when torch sees one, else the CPU."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"PIXSEEK_DEVICE / --device is {requested!r} but torch sees no CUDA device. "
            "Use --device cpu, or install a CUDA build of torch."
        )
    if requested != "cpu" and not requested.startswith("cuda"):
        raise ConfigError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N.")
    return requested
