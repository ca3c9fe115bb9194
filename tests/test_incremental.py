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


def test_indexing_a_second_folder_does_not_prune_the_first(
    cli: Cli, photos: PhotoSet, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(photos.good[0], other / "solo.jpg")
    cli.json("index", str(photos.root))
    summary = cli.json("index", str(other))
    assert (summary["removed"], summary["reused"]) == (0, 1)
    assert cli.json("stats")["embedded"] == len(photos.good) + 1


def test_one_writer_per_collection_and_the_lock_dies_with_its_holder(
    tmp_path, photos: PhotoSet
) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from search.catalog import open_catalog
    from search.settings import Settings
    from search.storage.collection_store import CollectionStore

    settings = Settings(
        data_dir=tmp_path / "d", model="tiny-test", workers=0, device="cpu", tags=False
    )
    cli = Cli(settings)
    cli.json("index", str(photos.root))
    catalog = open_catalog(settings.resolved_database_url())
    lock_path = (
        CollectionStore(settings, catalog, catalog.require_collection("default")).writer_lock().path
    )
    catalog.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import time\nfrom pathlib import Path\n"
                "from search.storage.collection_store import WriterLock\n"
                f"with WriterLock(Path({str(lock_path)!r}), 'default'):\n"
                "    print('held', flush=True)\n    time.sleep(60)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    refused = cli("index", str(photos.root), expect=1)
    assert "being indexed by another process" in refused.stderr
    assert cli.json("search", "a red circle", "--k", "3")["results"], (
        "searches work while a writer holds the lock"
    )
    holder.kill()
    holder.wait()
    holder.stdout.close()
    assert cli.json("index", str(photos.root))["unchanged"] == len(photos.good) + 2, (
        "a dead holder frees the lock"
    )


@pytest.mark.slow
def test_searches_see_new_images_while_an_index_run_is_going_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys
    import time

    from PIL import Image

    from search.catalog import open_catalog
    from search.errors import PixseekError
    from search.query.engine import SearchEngine
    from search.settings import Settings

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        Image.new("RGB", (40, 40), ((i * 7) % 256, (i * 13) % 256, (i * 29) % 256)).save(
            folder / f"{i:03d}.png"
        )
    settings = Settings(
        data_dir=tmp_path / "d", model="tiny-test", workers=0, device="cpu", tags=False
    )
    env = dict(
        os.environ,
        PIXSEEK_DATA_DIR=str(settings.data_dir),
        PIXSEEK_MODEL="tiny-test",
        PIXSEEK_WORKERS="0",
        PIXSEEK_BATCH_SIZE="2",
        PIXSEEK_TAGS="false",
        PIXSEEK_DEVICE="cpu",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "index", str(folder), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        try:
            catalog = open_catalog(settings.resolved_database_url())
            try:
                if catalog.list_collections():
                    response = SearchEngine(settings, catalog).search_text("a colour", k=1000)
                    seen.append(len(response.results))
            finally:
                catalog.close()
        except PixseekError:
            if seen:
                raise  # once searches work, they must keep working
            # the catalog is still being created by the indexer
        time.sleep(0.3)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    growing = [n for n in seen if 0 < n < 300]
    assert growing, f"no search ran while the index was partly built: {seen}"
    assert seen == sorted(seen), "results only ever grow during indexing"
