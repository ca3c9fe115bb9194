"""Which files failed, and why: `pixseek index --json` names them (the first
`MAX_FAILURES_KEPT`), and `pixseek failures` lists every one the catalog holds, filtered by
collection and by reason, on both catalogs, for the hostile corpus's damaged and disguised files."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.report import MAX_FAILURES_KEPT
from search.images.paths import display_path, encode_path
from tests.conftest import Cli
from tests.hostile_files import HostileCorpus, make_hostile_corpus
from tests.photos import PhotoSet


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> HostileCorpus:
    """Built once; no test writes to it."""
    return make_hostile_corpus(tmp_path_factory.mktemp("hostile") / "corpus")


def _shown(path: Path) -> str:
    """How listings show a path (undecodable bytes as U+FFFD)."""
    return display_path(encode_path(path))


@pytest.mark.timeout(120)
def test_index_names_the_failed_files_and_failures_lists_them(
    cli: Cli, corpus: HostileCorpus
) -> None:
    summary = cli.json("index", str(corpus.root))
    expected = {_shown(bad.path): bad.reason for bad in corpus.bad.values()}
    named = {failed["path"]: failed["reason"] for failed in summary["failed_files"]}
    assert set(named) == set(expected)
    wrong = {path: reason for path, reason in named.items() if expected[path] not in reason}
    assert not wrong, wrong
    assert summary["failed"] == len(summary["failed_files"]) == len(expected)
    assert summary["failed_files_truncated"] is False

    # A re-run fails nothing new, so names nothing; the catalog still knows every failure.
    again = cli.json("index", str(corpus.root))
    assert (again["failed"], again["failed_files"], again["failed_files_truncated"]) == (
        0,
        [],
        False,
    )
    listed = cli.json("failures")["failed_files"]
    assert sorted((f["collection"], f["path"], f["reason"]) for f in listed) == sorted(
        ("default", path, reason) for path, reason in named.items()
    )


@pytest.mark.timeout(120)
def test_failures_filter_by_reason_and_collection(
    cli: Cli, corpus: HostileCorpus, photos: PhotoSet
) -> None:
    cli("index", str(corpus.root))
    cli("index", str(photos.root), "--collection", "holiday photos")

    # --reason matches a piece of the reason in any case, and its % and _ are plain characters.
    not_images = cli.json("failures", "--reason", "NOT AN IMAGE")["failed_files"]
    assert {f["path"] for f in not_images} == {
        _shown(bad.path) for bad in corpus.bad.values() if bad.reason.startswith("not an image")
    } | {_shown(photos.not_an_image)}
    assert cli.json("failures", "--reason", "%")["failed_files"] == []
    assert cli.json("failures", "--reason", "_")["failed_files"] == []

    # --collection keeps one collection's files; without it, every collection's are listed.
    holiday = cli.json("failures", "--collection", "holiday photos")["failed_files"]
    assert {(f["collection"], f["path"]) for f in holiday} == {
        ("holiday photos", _shown(photos.corrupt)),
        ("holiday photos", _shown(photos.not_an_image)),
    }
    everything = cli.json("failures")["failed_files"]
    assert len(everything) == len(corpus.bad) + 2
    assert {f["collection"] for f in everything} == {"default", "holiday photos"}

    table = cli("failures", "--collection", "holiday photos").stdout
    assert "2 failed files" in table
    assert "not an image" in table
    empty = cli("failures", "--collection", "holiday photos", "--reason", "bomb").stdout
    assert "No failed files in collection 'holiday photos' with a reason containing 'bomb'." in (
        " ".join(empty.split())
    )
    unknown = cli("failures", "--collection", "nope", expect=1)
    assert "No collection named 'nope'" in unknown.stderr


@pytest.mark.timeout(180)
def test_the_named_failures_are_bounded_and_say_so(cli: Cli, tmp_path: Path) -> None:
    """More failures than the summary names, across several batches: it names the first
    MAX_FAILURES_KEPT and says the list is cut; `pixseek failures` still has them all."""
    junk = tmp_path / "junk"
    junk.mkdir()
    total = MAX_FAILURES_KEPT + 5
    for number in range(total):
        (junk / f"junk{number:03d}.jpg").write_text("not a picture\n", encoding="utf-8")
    summary = cli.json("index", str(junk), "--batch-size", "16")
    assert summary["failed"] == total
    assert len(summary["failed_files"]) == MAX_FAILURES_KEPT
    assert summary["failed_files_truncated"] is True
    assert all(f["reason"].startswith("not an image") for f in summary["failed_files"])
    assert len(cli.json("failures")["failed_files"]) == total
