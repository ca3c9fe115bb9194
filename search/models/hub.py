"""The Hugging Face cache as a user with missing weights needs to see it: where it is, whether
downloads are switched off, whether the hub answers at all, and the one message every model
family gives when weights are neither cached nor downloadable (so the advice reads the same for
`--model`, `--reranker` and `--captioner`).

`require_hub_files` runs before a loader touches the hub (`missing_hub_repos` plus
`require_downloadable` where a model needs files from several repos, as open_clip models with a
transformers text tower do: weights from one repo, tokenizer and text config from another).
Left to themselves, huggingface_hub and open_clip spend about a minute on an offline machine
(five retries with backoff per file, two files per open_clip model) and print every retry
before they give up; the cache lookup and one short connect here say the same thing in a
second or two.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from search.errors import ModelError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "cached_hub_file",
    "hub_cache_dirs",
    "hub_offline",
    "hub_unreachable",
    "missing_hub_repos",
    "missing_weights_message",
    "require_downloadable",
    "require_hub_files",
]

# One connect, no retries: long enough for a slow network or proxy to accept a connection,
# short enough that an offline machine is told so at once.
CONNECT_TIMEOUT_S = 3.0

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


def cached_hub_file(repo: str, filenames: Sequence[str]) -> str | None:
    """The cached path of the first of `filenames` (alternatives, e.g. a .safetensors and a
    .bin of the same weights) that the hub cache holds for `repo`'s main revision, or None.
    Reads the disk only."""
    from huggingface_hub import try_to_load_from_cache

    for folder in hub_cache_dirs():
        for name in filenames:
            found = try_to_load_from_cache(repo, name, cache_dir=folder)
            if isinstance(found, str):  # not None (unknown) nor the "known absent" marker
                return found
    return None


def missing_hub_repos(needs: Sequence[tuple[str, Sequence[Sequence[str]]]]) -> list[str]:
    """The repos among `needs` (repo, groups of alternative file names) that lack a file of
    some group in the hub cache, in the order given. Reads the disk only."""
    return [
        repo
        for repo, groups in needs
        if not all(cached_hub_file(repo, names) is not None for names in groups)
    ]


def _connect_target(url: str) -> tuple[str, str, int]:
    """What a request to `url` connects to first: the proxy the environment names for it
    (HTTPS_PROXY, ALL_PROXY, ... unless NO_PROXY covers the host), else the host itself;
    as (description, host, port)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme) or urllib.request.getproxies().get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
        return f"the proxy {proxy} for {url}", proxy_parts.hostname or "", port
    return url, host, parts.port or (443 if parts.scheme == "https" else 80)


def hub_unreachable(url: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why the hub (`url`, default the configured HF_ENDPOINT) cannot be reached now, or None
    when a connection to it opens. One TCP connect with a timeout and no retries; a proxy
    from the environment is what gets connected to, as a download would."""
    if url is None:
        from huggingface_hub import constants

        url = constants.ENDPOINT
    where, host, port = _connect_target(url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:  # refused, no route, name not resolved, timed out
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"{where} cannot be reached: {reason}"


def missing_weights_message(
    what: str, cause: BaseException | str, *, local_fix: str, after: str = ""
) -> str:
    """One sentence-per-fix message: `what` (e.g. "Weights for model 'default' (Hugging Face
    repo X)") is not cached and could not be fetched (`cause`: an exception, or a sentence
    such as `hub_unreachable` gives; unless downloads are off); how
    to fix it, ending with `local_fix` (how this family points at weights on disk); then
    `after`, if any."""
    reason = "HF_HUB_OFFLINE is set, so nothing is downloaded"
    if not hub_offline():
        reason = cause if isinstance(cause, str) else f"download failed: {cause}"
    message = (
        f"{what} are not in the Hugging Face cache ({' or '.join(hub_cache_dirs())}) and could "
        f"not be fetched ({reason}). Fix one of: run once with internet access (HF_HUB_OFFLINE "
        "unset) to fill the cache; copy a filled cache into HF_HOME; or "
        f"{local_fix}."
    )
    return f"{message} {after}" if after else message


def require_downloadable(what: str, *, local_fix: str, after: str = "") -> None:
    """Return when missing files (`what`) can be downloaded now; otherwise raise the one
    `missing_weights_message` at once: downloads are off (HF_HUB_OFFLINE), or one short
    connect to the hub failed."""
    if hub_offline():
        raise ModelError(missing_weights_message(what, "", local_fix=local_fix, after=after))
    problem = hub_unreachable()
    if problem is not None:
        raise ModelError(missing_weights_message(what, problem, local_fix=local_fix, after=after))


def require_hub_files(
    repo: str, needed: Sequence[Sequence[str]], *, what: str, local_fix: str, after: str = ""
) -> None:
    """Return when `repo` can be loaded: every group of `needed` (alternative file names) has a
    file in the cache, or the hub can be reached to download them (`require_downloadable`)."""
    if not missing_hub_repos([(repo, needed)]):
        return
    require_downloadable(what, local_fix=local_fix, after=after)
