"""`pixseek check`: a healthy data directory passes; what a kill can leave behind (a FAISS file
the catalog no longer trusts, temp files, a lock naming a dead process) and what only a person
can do (deleting a vector file) is each reported, `--repair` fixes what it can, exit status 1
says problems remain, and the next `pixseek index` finishes the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from search.catalog import open_catalog
from search.settings import Settings
from search.storage.collection_store import WriterLock
from tests.conftest import Cli
from tests.crash_harness import assert_invariant, draw_corpus


def _kinds(report: dict) -> set[str]:
    return {
        f["kind"]
        for c in report["collections"]
        for f in c["findings"]
        if f["problem"] and not f["repaired"]
    }


def _check(cli: Cli, *args: str, expect: int) -> dict:
    return json.loads(cli("check", "--json", *args, expect=expect).stdout)


def test_check_passes_a_healthy_data_directory(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 12)
    cli("index", str(corpus.root))
    report = _check(cli, expect=0)
    (collection,) = report["collections"]
    assert report["ok"] and (
        collection["embedded"],
        collection["failed"],
        collection["pending"],
    ) == (12, 2, 0)
    assert collection["vectors"] == collection["index_vectors"] == 12
    human = cli("check").stdout
    assert "OK: catalog, vectors and index agree." in human


def test_check_reports_repairs_and_index_finishes(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 30)
    cli.env["PIXSEEK_BATCH_SIZE"] = "8"
    cli("index", str(corpus.root))
    folder = settings.collection_dir(1)
    # by hand: 8 images lose their vectors
    min((folder / "vectors").glob("seg-*.pxvs")).unlink()
    (folder / "vectors" / ".seg-0000000099.pxvs.x1y2.tmp").write_bytes(b"half a segment")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / "writer.lock").write_text(str(dead.pid))
    catalog = open_catalog(settings.resolved_database_url())
    catalog.mark_index_dirty(1)  # as a writer killed between two FAISS saves leaves it
    catalog.close()

    found = _check(cli, expect=1)
    assert _kinds(found) == {"missing_vectors", "temp_files", "index"}, found
    notes = {f["kind"] for f in found["collections"][0]["findings"] if not f["problem"]}
    assert "stale_lock" in notes, found
    assert (folder / "vectors" / ".seg-0000000099.pxvs.x1y2.tmp").exists(), (
        "check alone changes nothing"
    )

    repaired = _check(cli, "--repair", expect=1)
    assert _kinds(repaired) == {"pending"}, (
        "only embedding the re-queued images is left, for pixseek index"
    )
    assert (
        repaired["collections"][0]["pending"] == 8
        and repaired["collections"][0]["index_vectors"] == 22
    )
    assert WriterLock(folder / "writer.lock", "default").left_by() is None, (
        "the stale lock was taken over"
    )
    assert not list((folder / "vectors").glob(".*.tmp"))
    assert cli.json("index", str(corpus.root))["indexed"] == 8
    assert _check(cli, expect=0)["ok"]
    assert_invariant(settings, corpus.good, corpus.bad, search_every_file=False)


def test_the_next_writer_removes_what_interrupted_writes_left(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    """A kill during a FAISS save leaves `.index.faiss.*.tmp` beside the index (the kill storm
    found one); the next index run removes it like the temp files of vector segments."""
    corpus = draw_corpus(tmp_path / "corpus", 4)
    cli("index", str(corpus.root))
    folder = settings.collection_dir(1)
    leftovers = [
        folder / ".index.faiss.k1ll3d.tmp",
        folder / "vectors" / ".seg-0000000009.pxvs.k1ll3d.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"half written")
    assert _kinds(_check(cli, expect=1)) == {"temp_files"}
    assert cli.json("index", str(corpus.root))["unchanged"] == 6
    assert not [path for path in leftovers if path.exists()]
    assert _check(cli, expect=0)["ok"]


def test_check_refuses_a_data_directory_without_a_catalog(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "empty", model="tiny-test", device="cpu")
    refused = Cli(settings)("check", "--data-dir", str(tmp_path / "nothing-here"), expect=1)
    assert "No catalog in" in refused.stderr and "--data-dir" in refused.stderr
    assert not (tmp_path / "nothing-here").exists(), "checking must not create a catalog"


def test_check_leaves_a_collection_being_written_alone(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    corpus = draw_corpus(tmp_path / "corpus", 4)
    cli("index", str(corpus.root))
    with WriterLock(settings.collection_dir(1) / "writer.lock", "default"):
        report = _check(cli, "--repair", expect=1)
    (finding,) = report["collections"][0]["findings"]
    assert finding["kind"] == "locked" and "this process" not in finding["message"], finding
    assert _check(cli, expect=0)["ok"]
