"""Registering pixseek's own open_clip architectures (JSON files in `search/models/configs/`)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["MODEL_CONFIG_DIR", "register_pixseek_configs"]

MODEL_CONFIG_DIR = files("search.models").joinpath("configs")


@cache
def register_pixseek_configs() -> None:
    """Make `pixseek-*` architectures known to open_clip (once per process)."""
    import open_clip

    open_clip.add_model_config(str(MODEL_CONFIG_DIR))
