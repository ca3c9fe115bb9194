"""Re-indexing is incremental and faithful: moved, renamed and copied files reuse their vectors;
changed files are embedded again; a search keeps working while an index run is going on."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import Cli
from tests.photos import PhotoSet


def test_moved_renamed_and_copied_files_reuse_vectors(cli: Cli, photos: PhotoSet) -> None:
    first = cli.json("index", str(photos.root))
    assert first["reused"] == 0
    moved = photos.root / "holiday" / "moved_here.jpg"
    shutil.move(photos.good[0], moved)
    copy = photos.root / "copy_of_1.png"
    shutil.copyfile(photos.good[1], copy)
    summary = cli.json("index", str(photos.root))
    assert (summary["reused"], summary["indexed"], summary["removed"]) == (2, 2, 1), summary
    hits = cli.json("search", "--image", str(moved), "--k", "1")["results"]
    assert hits[0]["path"] == str(moved) and hits[0]["score"] == pytest.approx(1, abs=2e-3)
    twins = cli.json("search", "--image", str(copy), "--k", "2")["results"]
    assert {h["path"] for h in twins} == {str(copy), str(photos.good[1])}
    stats = cli.json("stats")
    assert stats["embedded"] == stats["index_vectors"] == len(photos.good) + 1


def test_no_prune_keeps_entries_of_missing_files(cli: Cli, photos: PhotoSet) -> None:
    cli.json("index", str(photos.root))
    photos.good[0].unlink()
    summary = cli.json("index", str(photos.root), "--no-prune")
    assert summary["removed"] == 0
    assert cli.json("stats")["embedded"] == len(photos.good)


def test_indexing_a_second_folder_does_not_prune_the_first(cli: Cli, photos: PhotoSet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(photos.good[0], other / "solo.jpg")
    cli.json("index", str(photos.root))
    summary = cli.json("index", str(other))
    assert (summary["removed"], summary["reused"]) == (0, 1)
    assert cli.json("stats")["embedded"] == len(photos.good) + 1
