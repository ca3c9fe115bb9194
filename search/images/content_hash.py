"""Content identity of image files: BLAKE2b-160 of the bytes, the same whether computed from a
file streamed in chunks (re-index: renamed, moved and duplicate files) or from bytes already
in memory (the decoder hashes what it reads, so embedding a file never reads it twice)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["hash_bytes", "hash_file"]

_DIGEST_SIZE = 20
_CHUNK = 1 << 20


def hash_bytes(data: bytes) -> str:
    """The content hash of bytes already in memory."""
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


def hash_file(path: Path) -> str:
    """The content hash of a file, read in chunks (never whole into memory)."""
    digest = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
