"""WebDataset tar shards and sidecar captions as inputs: brace patterns expand to shards, tar
members group into samples by key, `.txt`/`.json` beside an image become its caption and
metadata, scans read headers (never image data), and decoding reads members by stored path."""

from __future__ import annotations

import io
import os
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from indexer.decode.worker import decode_batches
from indexer.sources import (
    CAPTION_MAX_CHARS,
    PruneScope,
    expand_inputs,
    iter_file_list,
    iter_image_files,
    iter_sources,
    source_roots_for_prune,
)
from search.catalog.records import PendingImage
from search.errors import InputError
from search.images.decode import DecodeFailure, decode_stored
from search.images.source import (
    archive_member_path,
    is_archive_member,
    read_image_bytes,
    split_archive_path,
)
from tests.conftest import Cli

SHARD_PATTERN = "shards-{000..002}.tar"


def _picture(seed: int, fmt: str = "JPEG") -> bytes:
    """A small distinct picture: a coloured shape on a coloured background."""
    rng = random.Random(seed)
    image = Image.new(
        "RGB",
        (rng.randint(64, 160), rng.randint(64, 160)),
        tuple(rng.randrange(256) for _ in range(3)),
    )
    draw = ImageDraw.Draw(image)
    w, h = image.size
    draw.ellipse(
        (
            rng.randint(0, w // 3),
            rng.randint(0, h // 3),
            rng.randint(w // 2, w),
            rng.randint(h // 2, h),
        ),
        fill=tuple(rng.randrange(256) for _ in range(3)),
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar file with `members` in this order (as `webdataset.TarWriter` would lay them out)."""
    with tarfile.open(
        path, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


@dataclass(frozen=True)
class Shards:
    folder: Path
    paths: list[Path]
    images: dict[str, bytes]  # stored path -> image bytes (the good ones)
    captions: dict[str, str | None]  # stored path -> expected caption
    corrupt: str  # stored path of the damaged JPEG


@pytest.fixture
def shards(tmp_path: Path) -> Shards:
    """Three shards of three good samples each, plus a corrupt image (shard 0) and a sample
    without an image (shard 1); captions from `.txt`, from `.json` "text", or none."""
    import webdataset

    folder = tmp_path / "data"
    folder.mkdir()
    images: dict[str, bytes] = {}
    captions: dict[str, str | None] = {}
    paths = []
    for shard_no in range(3):
        path = folder / f"shards-{shard_no:03d}.tar"
        with webdataset.TarWriter(str(path)) as writer:
            for i in range(3):
                key = f"{shard_no:03d}{i:05d}"
                extension = "png" if i == 2 else "jpg"
                data = _picture(shard_no * 10 + i, "PNG" if extension == "png" else "JPEG")
                sample = {
                    "__key__": key,
                    extension: data,
                    "json": {"key": key, "text": f"json text {key}"},
                }
                if i == 0:
                    sample["txt"] = f"  a picture number {key}\n"
                stored = archive_member_path(path, f"{key}.{extension}")
                images[stored] = data
                captions[stored] = f"a picture number {key}" if i == 0 else f"json text {key}"
                writer.write(sample)
            if shard_no == 0:
                writer.write(
                    {"__key__": "broken", "jpg": _picture(99)[:300], "txt": "half a picture"}
                )
            if shard_no == 1:
                writer.write(
                    {
                        "__key__": "no-image",
                        "txt": "a caption without its picture",
                        "json": {"a": 1},
                    }
                )
        paths.append(path)
    return Shards(folder, paths, images, captions, archive_member_path(paths[0], "broken.jpg"))


def test_brace_pattern_expands_to_every_shard_and_sample(shards: Shards) -> None:
    found = list(iter_sources([str(shards.folder / SHARD_PATTERN)]))
    stored = [f.stored_path for f in found]
    assert stored == sorted(stored), "shards in pattern order, samples in tar order"
    assert set(stored) == set(shards.images) | {shards.corrupt}, stored
    assert all(
        f.path in shards.paths and f.member and is_archive_member(f.stored_path) for f in found
    )
    by_stored = {f.stored_path: f for f in found}
    for path, data in shards.images.items():
        item = by_stored[path]
        assert item.size == len(data), (path, item.size, len(data))
        assert item.mtime == item.path.stat().st_mtime


def test_sidecars_in_shards_become_caption_and_metadata(shards: Shards) -> None:
    found = {f.stored_path: f for f in iter_sources([str(shards.folder / SHARD_PATTERN)])}
    assert {path: found[path].caption for path in shards.images} == shards.captions
    first = found[archive_member_path(shards.paths[0], "00000000.jpg")]
    assert first.metadata == {"key": "00000000", "text": "json text 00000000"}
    assert (
        found[shards.corrupt].caption == "half a picture" and found[shards.corrupt].metadata is None
    )


def test_unchanged_items_are_listed_without_reading_their_sidecars(shards: Shards) -> None:
    asked: list[tuple[str, int, float]] = []

    def unchanged(stored: str, size: int, mtime: float) -> bool:
        asked.append((stored, size, mtime))
        return True

    found = list(iter_sources([shards.paths[0]], is_unchanged=unchanged))
    assert [f.stored_path for f in found] == [a[0] for a in asked]
    assert [(f.caption, f.metadata) for f in found] == [(None, None)] * len(found), found


def _bytes_read_by_this_process() -> int:
    with open("/proc/self/io") as io_stats:
        return int(next(line for line in io_stats if line.startswith("rchar:")).split()[1])


@pytest.mark.skipif(
    not os.path.exists("/proc/self/io"), reason="needs Linux /proc/self/io to count bytes read"
)
def test_scanning_a_shard_reads_headers_and_sidecars_not_image_data(tmp_path: Path) -> None:
    big = os.urandom(24 << 20)
    shard = _write_tar(
        tmp_path / "big.tar",
        [
            ("a.jpg", big),
            ("a.txt", b"a caption"),
            ("b.json", b'{"caption": "b"}'),
            ("b.png", big),
        ],
    )
    list(iter_sources([shard]))  # imports webdataset's helpers outside the measurement
    before = _bytes_read_by_this_process()
    found = list(iter_sources([shard]))
    read = _bytes_read_by_this_process() - before
    assert [(f.member, f.size, f.caption) for f in found] == [
        ("a.jpg", len(big), "a caption"),
        ("b.png", len(big), "b"),
    ]
    assert read < 1 << 20, f"a scan read {read} bytes of a {shard.stat().st_size}-byte shard"


def test_read_image_bytes_of_members_and_clear_errors(shards: Shards, tmp_path: Path) -> None:
    for stored, data in shards.images.items():
        assert read_image_bytes(stored) == data
    missing_member = archive_member_path(shards.paths[1], "nope.jpg")
    with pytest.raises(
        DecodeFailure, match=r"^archive member missing: nope\.jpg is not in .*shards-001\.tar"
    ):
        read_image_bytes(missing_member)
    with pytest.raises(DecodeFailure, match=r"^unreadable archive: .*gone\.tar does not exist"):
        read_image_bytes(archive_member_path(tmp_path / "gone.tar", "a.jpg"))
    not_a_tar = tmp_path / "fake.tar"
    not_a_tar.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(
        DecodeFailure, match=r"^unreadable archive: .*fake\.tar is not a readable uncompressed tar"
    ):
        read_image_bytes(archive_member_path(not_a_tar, "a.jpg"))


def test_read_image_bytes_notices_a_replaced_shard(tmp_path: Path) -> None:
    shard = _write_tar(tmp_path / "s.tar", [("a.jpg", b"first version")])
    stored = archive_member_path(shard, "a.jpg")
    assert read_image_bytes(stored) == b"first version"
    replacement = _write_tar(
        tmp_path / "new.tar", [("pad.txt", b"x" * 3000), ("a.jpg", b"second version")]
    )
    os.replace(replacement, shard)
    assert read_image_bytes(stored) == b"second version"


def test_member_names_with_hash_dot_slash_and_undecodable_bytes_round_trip(tmp_path: Path) -> None:
    names = ["./x/000.jpg", "odd#name.jpg", os.fsdecode(b"caf\xe9.jpg")]
    shard = _write_tar(
        tmp_path / "odd #dir.tar",
        [(name, name.encode("utf-8", "surrogateescape")) for name in names],
    )
    found = list(iter_sources([shard]))
    assert [f.member for f in found] == names
    for item in found:
        stored = item.stored_path
        stored.encode("utf-8")  # storable in PostgreSQL and JSON: no lone surrogates
        assert split_archive_path(stored) == (shard, item.member)
        assert read_image_bytes(stored) == item.member.encode("utf-8", "surrogateescape")
    assert split_archive_path(str(tmp_path / "plain.jpg")) is None


def test_decode_stored_reads_members_and_plain_files(shards: Shards, tmp_path: Path) -> None:
    stored = next(iter(shards.images))
    decoded = decode_stored(stored, draft_size=32)
    assert (decoded.width, decoded.height) == Image.open(io.BytesIO(shards.images[stored])).size
    with pytest.raises(DecodeFailure, match=r"^truncated or corrupt image data"):
        decode_stored(shards.corrupt)
    plain = tmp_path / "plain.png"
    plain.write_bytes(_picture(5, "PNG"))
    assert decode_stored(str(plain)).image.mode == "RGB"
    with pytest.raises(DecodeFailure, match=r"^file disappeared"):
        decode_stored(str(tmp_path / "missing.jpg"))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.zeros(3, 8, 8) + image.size[0]


def test_decode_workers_read_members_of_shared_shards(shards: Shards) -> None:
    items = [PendingImage(i, path) for i, path in enumerate([*shards.images, shards.corrupt])]
    batches = list(decode_batches(items, _to_tensor, batch_size=4, workers=2, draft_size=32))
    ok = {item.id for batch in batches for item in batch.ok}
    failed = dict(pair for batch in batches for pair in batch.failed)
    assert ok == set(range(len(shards.images)))
    assert list(failed) == [len(shards.images)] and failed[len(shards.images)].startswith(
        "truncated"
    ), failed


def test_folder_sidecars_give_captions_and_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.png", "c.jpg", "d.jpg", "e.jpg", "sub/f.jpg"):
        (folder / name).write_bytes(_picture(len(name)))
    (folder / "a.txt").write_text("  a caption for a \n")
    (folder / "a.json").write_text('{"caption": "loses to the .txt", "w": 3}')
    (folder / "b.json").write_text(
        '{"text": "b from json", "score": NaN, "n\\u0000ul": "x\\u0000y"}'
    )
    (folder / "c.JSON").write_text("[1, 2, 3]")  # valid JSON, but not an object
    (folder / "d.json").write_text("{not json")
    (folder / "sub" / "f.txt").write_text("x" * (CAPTION_MAX_CHARS + 500))
    (folder / "e.jpg.txt").write_text("not e's caption: another stem")
    found = {f.path.name: (f.caption, f.metadata) for f in iter_sources([folder])}
    assert found == {
        "a.jpg": ("a caption for a", {"caption": "loses to the .txt", "w": 3}),
        "b.png": ("b from json", {"text": "b from json", "score": None, "nul": "xy"}),
        "c.jpg": (None, None),
        "d.jpg": (None, None),
        "e.jpg": (None, None),
        "f.jpg": ("x" * CAPTION_MAX_CHARS, None),
    }
    assert [(f.caption, f.member) for f in iter_image_files(folder / "a.jpg")] == [
        ("a caption for a", None)
    ]
    listing = tmp_path / "list.txt"
    listing.write_text(f"photos/b.png\n{folder / 'a.jpg'}\n")
    assert [f.caption for f in iter_file_list(listing)] == ["b from json", "a caption for a"]


def test_a_pattern_with_a_missing_shard_is_an_input_error(shards: Shards) -> None:
    pattern = str(shards.folder / "shards-{000..004}.tar")
    with pytest.raises(
        InputError,
        match=r"shards-003\.tar \(from the pattern .*shards-\{000\.\.004\}\.tar\) does not",
    ):
        list(iter_sources([pattern]))
    assert expand_inputs([str(shards.folder / "shards-{000,002}.tar")]) == [
        shards.paths[0],
        shards.paths[2],
    ]


def test_prune_scope_of_folders_and_shards(shards: Shards, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    prefixes = source_roots_for_prune([str(shards.folder / "shards-{000..001}.tar"), other])
    assert prefixes == [f"{shards.paths[0]}#", f"{shards.paths[1]}#", f"{other}/"]
    scope = PruneScope([shards.paths[0], other])
    assert scope.covers(archive_member_path(shards.paths[0], "vanished.jpg"))
    assert not scope.covers(archive_member_path(shards.paths[1], "00100000.jpg")), "not scanned"
    assert scope.covers(f"{other}/gone.jpg")
    folder_scope = PruneScope([shards.folder])
    assert not folder_scope.covers(archive_member_path(shards.paths[2], "x.jpg")), (
        "a folder scan does not open shards"
    )
    assert folder_scope.covers(archive_member_path(shards.folder / "deleted.tar", "x.jpg"))


def test_index_shards_and_search_by_a_member_image(
    cli: Cli, shards: Shards, tmp_path: Path
) -> None:
    pattern = str(shards.folder / SHARD_PATTERN)
    summary = cli.json("index", pattern, "--collection", "laion")
    n_good = len(shards.images)
    assert (summary["seen"], summary["indexed"], summary["failed"]) == (n_good + 1, n_good, 1), (
        summary
    )

    stored, data = list(shards.images.items())[4]
    query = tmp_path / "query.jpg"
    query.write_bytes(data)
    hits = cli.json("search", "--image", str(query), "--k", "3", "--collection", "laion")["results"]
    assert hits[0]["path"] == stored, hits
    assert hits[0]["score"] == pytest.approx(1.0, abs=2e-3)
    assert hits[0]["caption"] == shards.captions[stored]

    again = cli.json("index", pattern, "--collection", "laion")
    assert (again["indexed"], again["failed"], again["removed"], again["unchanged"]) == (
        0,
        0,
        0,
        n_good + 1,
    ), again

    # A shard that loses a sample loses its row; its other rows are re-checked (the shard's
    # mtime changed), the other shards are untouched.
    first = shards.paths[0]
    with tarfile.open(first) as tar:
        kept = [
            (m.name, tar.extractfile(m).read())
            for m in tar.getmembers()
            if not m.name.startswith("00000001.")
        ]
    _write_tar(first, kept)
    pruned = cli.json("index", pattern, "--collection", "laion")
    assert (pruned["removed"], pruned["seen"]) == (1, n_good), pruned
    assert pruned["unchanged"] >= 2 * 3, pruned
