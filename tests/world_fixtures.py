"""pytest plugin: the synthetic world and the tiny CLIP trained on it, built once and kept.

Training takes about two minutes of CPU, so the result outlives the test session: it is cached
under ``$PIXSEEK_TEST_CACHE`` or else ``<repo>/.pytest_cache/pixseek-world``, in a folder named
after ``WORLD_VERSION``, ``TRAINER_VERSION`` and the seed, so a change to the generator or the
trainer trains afresh instead of testing a stale model. Register it in ``conftest.py`` with
``pytest_plugins = ["tests.world_fixtures"]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.quality.tiny_clip_training import ensure_world_and_model

__all__ = ["WORLD_SEED", "trained_world", "world_cache_dir"]

WORLD_SEED = 0
REPO_ROOT = Path(__file__).resolve().parents[1]


def world_cache_dir() -> Path:
    """Where trained worlds are kept between sessions: ``$PIXSEEK_TEST_CACHE`` if set."""
    configured = os.environ.get("PIXSEEK_TEST_CACHE")
    return Path(configured) if configured else REPO_ROOT / ".pytest_cache" / "pixseek-world"


@pytest.fixture(scope="session")
def trained_world() -> tuple[Path, Path]:
    """``(world_dir, model_dir)``: the seed-0 world and the tiny CLIP trained on its train split.

    Load the model with ``open_clip.create_model_and_transforms("local-dir:" + str(model_dir))``;
    ``world_dir / "test.jsonl"`` lists the held-out (image, caption) pairs.
    """
    return ensure_world_and_model(world_cache_dir(), seed=WORLD_SEED)
