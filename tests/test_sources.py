"""Finding files: extensions in any case, hidden/system folders skipped, symlinks handled."""

from __future__ import annotations

import os
from pathlib import Path

from indexer.sources import iter_file_list, iter_image_files


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_walk_finds_images_skips_hidden_system_and_other_files(tmp_path: Path) -> None:
    wanted = {
        _touch(tmp_path / n)
        for n in ("a.jpg", "B.JPEG", "c.Png", "d/e.webp", "d/f/g.GIF", "h.bmp", "i.TIFF")
    }
    for name in (".hidden/x.jpg", "@eaDir/y.jpg", "notes.txt", "j.jpg.txt", ".thumb.jpg/z.png"):
        _touch(tmp_path / name)
    (tmp_path / "folder.jpg").mkdir()
    found = {f.path for f in iter_image_files(tmp_path)}
    assert found == wanted


def test_symlink_loops_and_links_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _touch(root / "sub" / "a.jpg")
    outside = _touch(tmp_path / "elsewhere" / "secret.jpg")
    os.symlink(root, root / "sub" / "loop")
    os.symlink(outside, root / "link.jpg")
    os.symlink(root / "sub" / "a.jpg", root / "inside-link.jpg")
    assert {f.path.name for f in iter_image_files(root)} == {"a.jpg", "inside-link.jpg"}
    followed = [f.path.name for f in iter_image_files(root, follow_symlinks=True)]
    assert sorted(followed) == ["a.jpg", "inside-link.jpg", "link.jpg"], (
        "asked to follow; the loop is visited once"
    )


def test_file_list_relative_and_absolute(tmp_path: Path) -> None:
    a = _touch(tmp_path / "x" / "a.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\nx/a.jpg\n{a}\nmissing.jpg\n\n")
    assert [f.path for f in iter_file_list(listing)] == [a, a]
