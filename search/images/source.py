"""Reading the bytes of an indexed image from its stored path: a plain file, or a member of an
uncompressed WebDataset tar shard.

A shard member is stored as `<encoded shard path>#<member name>` (for example
`/data/shards-003.tar#000123.jpg`), so one catalog column names both kinds. A member is read
with one positioned read (`os.pread`) at the offset its tar header gives: decode workers that
read thousands of members of the same shard list its headers once per process (a small cache of
open shards and their member index) instead of rescanning it per image, and readers in several
threads never share a file position. A shard that is replaced on disk (other size, mtime or
inode) is listed again.

Every failure is a `DecodeFailure` whose reason reads "kind: detail", like the decoder's own.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import threading
from collections import OrderedDict
from pathlib import Path

from search.images.failures import DecodeFailure
from search.images.paths import decode_path, decode_text, encode_path

__all__ = [
    "ARCHIVE_SEPARATOR",
    "archive_member_path",
    "is_archive_member",
    "read_image_bytes",
    "read_plain_file",
    "split_archive_path",
]

ARCHIVE_SEPARATOR = "#"
# The shard part ends in `.tar`; the first `.tar#` splits, since a member name may hold `#`.
_ARCHIVE_SPLIT = re.compile(r"\.tar#", re.IGNORECASE)
_OPEN_SHARDS_KEPT = 8


def archive_member_path(shard: Path | str, member: str) -> str:
    """Stored path of `member` (its name as `tarfile` reads it) inside the tar file `shard`;
    the member name is encoded as given, never normalised as a path."""
    return encode_path(os.path.abspath(shard)) + ARCHIVE_SEPARATOR + encode_path(member)


def split_archive_path(stored: str) -> tuple[Path, str] | None:
    """(shard path, member name) of a stored archive-member path, or None for a plain path."""
    match = _ARCHIVE_SPLIT.search(stored)
    if match is None:
        return None
    shard_part, member_part = stored[: match.end() - 1], stored[match.end() :]
    if not member_part:
        return None
    return decode_path(shard_part), decode_text(member_part)


def is_archive_member(stored: str) -> bool:
    """True when `stored` names a member of a tar shard (judged from the text alone)."""
    return split_archive_path(stored) is not None


class _OpenShard:
    """One listed shard: its member index and a descriptor for positioned reads. The
    descriptor closes when the last reference goes, so evicting a shard from the cache never
    pulls it from under a reader in another thread."""

    def __init__(
        self, fd: int, identity: tuple[int, int, int, int], members: dict[str, tarfile.TarInfo]
    ) -> None:
        self.fd = fd
        self.identity = identity  # (device, inode, size, mtime_ns) when listed
        self.members = members

    def __del__(self) -> None:
        _close_quietly(self.fd)


class _ShardCache:
    """Open shards of this process with their member index, least recently used dropped."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.lock = threading.Lock()
        self.shards: OrderedDict[str, _OpenShard] = OrderedDict()

    def get(self, shard: Path) -> _OpenShard:
        identity = _identity(shard)
        key = os.fsdecode(shard)
        with self.lock:
            cached = self.shards.get(key)
            if cached is not None and cached.identity == identity:
                self.shards.move_to_end(key)
                return cached
        opened = _open_shard(shard, identity)
        with self.lock:
            self.shards[key] = opened
            self.shards.move_to_end(key)
            while len(self.shards) > self.capacity:
                self.shards.popitem(last=False)
        return opened

    def forget_after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held) and no shards of
        the parent's (positioned reads would be safe, but each process lists its own)."""
        self.lock = threading.Lock()
        self.shards = OrderedDict()


def _identity(shard: Path) -> tuple[int, int, int, int]:
    try:
        shard_stat = os.stat(shard)
    except FileNotFoundError as exc:
        raise DecodeFailure(
            f"unreadable archive: {shard} does not exist (moved or deleted?)"
        ) from exc
    except OSError as exc:
        raise DecodeFailure(f"unreadable archive: {shard}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(shard_stat.st_mode):
        raise DecodeFailure(f"unreadable archive: {shard} is not a regular file")
    return (shard_stat.st_dev, shard_stat.st_ino, shard_stat.st_size, shard_stat.st_mtime_ns)


def _close_quietly(fd: int) -> None:
    # Not contextlib.suppress: at interpreter shutdown the module global may already be gone.
    try:  # noqa: SIM105
        os.close(fd)
    except (OSError, TypeError, AttributeError):  # TypeError/AttributeError: interpreter shutdown
        pass


def _open_shard(shard: Path, identity: tuple[int, int, int, int]) -> _OpenShard:
    """List the headers of `shard` (never its member data) and keep a descriptor for reads."""
    try:
        fd = os.open(shard, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise DecodeFailure(f"unreadable archive: {shard}: {exc.strerror or exc}") from exc
    try:
        with (
            open(fd, "rb", closefd=False) as handle,
            tarfile.open(fileobj=handle, mode="r:") as tar,
        ):
            members = {info.name: info for info in tar}  # a repeated name: the last one wins
    except (tarfile.TarError, OSError) as exc:
        _close_quietly(fd)
        raise DecodeFailure(
            f"unreadable archive: {shard} is not a readable uncompressed tar file ({exc})"
        ) from exc
    return _OpenShard(fd=fd, identity=identity, members=members)


_CACHE = _ShardCache(_OPEN_SHARDS_KEPT)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_CACHE.forget_after_fork)


def _read_member(shard: Path, member: str) -> bytes:
    opened = _CACHE.get(shard)
    info = opened.members.get(member)
    if info is None:
        raise DecodeFailure(f"archive member missing: {member} is not in {shard}")
    if not info.isreg() or info.issparse():
        raise DecodeFailure(
            f"archive member unreadable: {member} in {shard} is not a plain file member"
        )
    try:
        data = os.pread(opened.fd, info.size, info.offset_data)
    except OSError as exc:
        raise DecodeFailure(f"unreadable archive: {shard}: {exc.strerror or exc}") from exc
    if len(data) != info.size:
        raise DecodeFailure(
            f"unreadable archive: {shard} ends inside member {member} "
            f"({len(data)} of {info.size} bytes)"
        )
    return data


def read_plain_file(path: Path) -> bytes:
    """The file's bytes; refuses FIFOs and devices, whose reads could block or never end."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except PermissionError as exc:
        raise DecodeFailure("unreadable: permission denied") from exc
    except FileNotFoundError as exc:
        raise DecodeFailure("file disappeared before it could be read") from exc
    except OSError as exc:
        raise DecodeFailure(f"unreadable: {exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise DecodeFailure("is a directory, not an image file")
        if not stat.S_ISREG(mode):
            raise DecodeFailure("not a regular file: a FIFO, socket or device cannot be indexed")
        with open(fd, "rb", closefd=False) as handle:
            return handle.read()
    except OSError as exc:
        raise DecodeFailure(f"unreadable: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def read_image_bytes(stored_path: str) -> bytes:
    """The bytes of the image at `stored_path` (catalog form); raises `DecodeFailure`.

    A path that looks like a shard member but is itself an existing file (a folder really named
    `x.tar#y`) is read as that file."""
    parts = split_archive_path(stored_path)
    if parts is None:
        return read_plain_file(decode_path(stored_path))
    shard, member = parts
    if not os.path.isfile(shard) and os.path.lexists(decode_path(stored_path)):
        return read_plain_file(decode_path(stored_path))
    return _read_member(shard, member)
