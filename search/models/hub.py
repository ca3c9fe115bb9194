"""The Hugging Face cache as a user with missing weights needs to see it: where it is, whether
downloads are switched off, and the one message every model family gives when weights are
neither cached nor downloadable (so the advice reads the same for `--model`, `--reranker` and
`--captioner`)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["hub_cache_dirs", "hub_offline", "missing_weights_message"]

_FALSE = ("", "0", "false", "False")


def hub_cache_dirs() -> list[str]:
    """Where the hub cache is: huggingface_hub's own setting (read once, at its import) and,
    when the environment now says otherwise, the folder the environment names."""
    from huggingface_hub import constants

    folders = [str(constants.HF_HUB_CACHE)]
    if os.environ.get("HF_HUB_CACHE"):
        folders.append(os.environ["HF_HUB_CACHE"])
    elif os.environ.get("HF_HOME"):
        folders.append(str(Path(os.environ["HF_HOME"]) / "hub"))
    return list(dict.fromkeys(folders))


def hub_offline() -> bool:
    """Whether downloads are off, by huggingface_hub's setting or the current environment."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "") not in _FALSE


def missing_weights_message(
    what: str, cause: BaseException, *, local_fix: str, after: str = ""
) -> str:
    """One sentence-per-fix message: `what` (e.g. "Weights for model 'default' (Hugging Face
    repo X)") is not cached and could not be fetched; how to fix it, ending with `local_fix`
    (how this family points at weights on disk); then `after`, if any."""
    reason = "HF_HUB_OFFLINE is set, so nothing is downloaded"
    if not hub_offline():
        reason = f"download failed: {cause}"
    message = (
        f"{what} are not in the Hugging Face cache ({' or '.join(hub_cache_dirs())}) and could "
        f"not be fetched ({reason}). Fix one of: run once with internet access (HF_HUB_OFFLINE "
        "unset) to fill the cache; copy a filled cache into HF_HOME; or "
        f"{local_fix}."
    )
    return f"{message} {after}" if after else message
