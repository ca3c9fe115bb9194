"""Cheap identities of weight files, so a model id changes when the weights on disk change.

An index records the encoder's `model_id` and refuses queries from any other; a checkpoint
overwritten in place must therefore get a new id without hashing gigabytes on every start.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["WEIGHT_SUFFIXES", "file_fingerprint", "folder_fingerprint"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_CHUNK = 1 << 20


def file_fingerprint(path: Path) -> str:
    """Size plus hashes of the first and last MiB: changes with any re-save, costs two reads."""
    stat = path.stat()
    digest = hashlib.blake2b(str(stat.st_size).encode(), digest_size=8)
    with path.open("rb") as handle:
        digest.update(handle.read(_CHUNK))
        if stat.st_size > 2 * _CHUNK:
            handle.seek(-_CHUNK, os.SEEK_END)
            digest.update(handle.read())
    return digest.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """The fingerprints of every weights file in `folder`, by name, in one digest."""
    weights = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    digest = hashlib.blake2b(digest_size=8)
    for path in weights:
        digest.update(path.name.encode())
        digest.update(file_fingerprint(path).encode())
    return digest.hexdigest()
