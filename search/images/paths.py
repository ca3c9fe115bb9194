"""Storing file paths in the catalog losslessly, whatever bytes the file system gave us.

Linux file names are bytes. Python decodes undecodable bytes to lone surrogates, which neither
PostgreSQL nor a JSON response can carry. Paths that are valid UTF-8 are stored as they are;
the others are stored as `fsbytes:` + percent-escaped bytes. Absolute paths start with `/`, so
the prefix can never collide with a real path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

__all__ = ["decode_path", "decode_text", "display_path", "encode_path", "path_key"]

_BYTES_PREFIX = "fsbytes:"


def encode_path(path: Path | str) -> str:
    """Catalog form of an absolute path: plain text when it is UTF-8, else an escaped form."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _BYTES_PREFIX + quote_from_bytes(raw, safe="/")


def decode_text(stored: str) -> str:
    """Inverse of `encode_path`, as the exact string (no path normalisation: a tar member
    named `./a.jpg` stays `./a.jpg`)."""
    if stored.startswith(_BYTES_PREFIX):
        return os.fsdecode(unquote_to_bytes(stored[len(_BYTES_PREFIX) :]))
    return stored


def decode_path(stored: str) -> Path:
    """Inverse of `encode_path`."""
    return Path(decode_text(stored))


def display_path(stored: str) -> str:
    """Human-readable form for listings: undecodable bytes shown as U+FFFD."""
    if stored.startswith(_BYTES_PREFIX):
        return unquote_to_bytes(stored[len(_BYTES_PREFIX) :]).decode("utf-8", "replace")
    return stored


def path_key(stored: str) -> str:
    """Fixed-size key for uniqueness: long paths overflow a database btree entry."""
    return hashlib.blake2b(stored.encode("utf-8"), digest_size=16).hexdigest()
