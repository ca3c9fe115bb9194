"""Tags never hold up embedding: on a cold label cache the images are embedded untagged and
tagged afterwards from their stored vectors; a warm cache tags them batch by batch; the stage
resumes where a stopped run left it, backfills collections indexed with tags off, and tags
again after a vocabulary change or a re-embedded file - on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import pytest

import indexer.enrich.tags
from indexer.options import IndexOptions
from indexer.pipeline import index_paths
from search.catalog import Catalog, open_catalog
from search.models.zero_shot_tags import clear_label_embedding_cache
from search.settings import Settings
from tests.photos import PhotoSet


@pytest.fixture(autouse=True)
def _cold_process_cache() -> None:
    clear_label_embedding_cache()


def _tag_settings(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"tag_threshold": 0.0, **overrides})


def _rows(catalog: Catalog) -> list[tuple[str, str | None, list[dict[str, object]] | None]]:
    (collection,) = catalog.list_collections()
    records = catalog.get_images(catalog.embedded_ids(collection.id))
    return sorted((r.path, r.tags_model, r.tags) for r in records.values())


def test_cold_cache_tags_after_embedding_and_warm_cache_tags_inline(
    settings: Settings, photos: PhotoSet, tmp_path: Path
) -> None:
    settings = _tag_settings(settings)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    with closing(catalog):
        report = index_paths(settings, catalog, [photos.root])
        assert report.indexed == len(photos.good) and report.tagged == len(photos.good), report
        rows = _rows(catalog)
    assert all(
        model and model.startswith("open_clip:") and len(tags) == 5 for _, model, tags in rows
    ), rows
    cached = list((settings.cache_dir / "label-embeddings").glob("labels-*.npy"))
    assert len(cached) == 1, (
        "label embeddings are cached once per machine, outside the data directory"
    )
    assert not (settings.data_dir / "cache").exists()

    # Another data directory on the same machine, a new process (empty memory cache): the batches
    # are tagged as they are embedded, nothing is left for the tagging pass.
    clear_label_embedding_cache()
    other = settings.model_copy(update={"data_dir": tmp_path / "other-data", "database_url": None})
    catalog = open_catalog(other.resolved_database_url(), upgrade=True)
    with closing(catalog):
        report = index_paths(other, catalog, [photos.root])
        assert (report.indexed, report.tagged) == (len(photos.good), 0), report
        assert [tags for _, _, tags in _rows(catalog)] == [tags for _, _, tags in rows]


def test_a_stopped_tagging_pass_resumes_with_the_rest(
    settings: Settings, photos: PhotoSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _tag_settings(settings)
    monkeypatch.setattr(indexer.enrich.tags, "TAG_COMMIT_ROWS", 2)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    with closing(catalog):
        calls = iter(range(1000))
        # a cancel seen by the tagging pass only: the embedding loop checks once per batch (1 batch)
        stop = IndexOptions(should_stop=lambda: next(calls) >= 1)
        report = index_paths(settings, catalog, [photos.root], stop)
        assert report.indexed == len(photos.good) and not report.cancelled
        assert 0 < report.tagged < len(photos.good), report
        untagged = [path for path, model, _ in _rows(catalog) if model is None]
        assert len(untagged) == len(photos.good) - report.tagged
        again = index_paths(settings, catalog, [photos.root])
        assert (again.indexed, again.tagged) == (0, len(untagged)), again
        assert all(model for _, model, _ in _rows(catalog))


def test_tags_turned_on_later_backfill_without_embedding_again(
    settings: Settings, photos: PhotoSet
) -> None:
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    with closing(catalog):
        off = index_paths(_tag_settings(settings, tags=False), catalog, [photos.root])
        assert off.tagged == 0 and all(model is None for _, model, _ in _rows(catalog))
        on = index_paths(_tag_settings(settings), catalog, [photos.root])
        assert (on.indexed, on.unchanged, on.tagged) == (0, off.seen, len(photos.good)), on
        assert index_paths(_tag_settings(settings), catalog, [photos.root]).tagged == 0


def test_a_new_vocabulary_or_a_changed_file_is_tagged_again(
    settings: Settings, photos: PhotoSet, tmp_path: Path
) -> None:
    settings = _tag_settings(settings)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    with closing(catalog):
        index_paths(settings, catalog, [photos.root])
        changed = photos.good[0]
        os.utime(changed, (1_700_000_000, 1_700_000_000))
        report = index_paths(settings, catalog, [photos.root])
        assert (report.indexed, report.tagged) == (1, 0), (
            "re-embedded with a warm cache: tagged inline"
        )
        vocabulary = tmp_path / "labels.txt"
        vocabulary.write_text("circle\nsquare\ntriangle\n")
        report = index_paths(
            settings.model_copy(update={"tag_vocabulary": vocabulary}), catalog, [photos.root]
        )
        assert (report.indexed, report.tagged) == (0, len(photos.good)), report
        labels = {t["label"] for _, _, tags in _rows(catalog) for t in tags}
        assert labels <= {"circle", "square", "triangle"} and labels


def test_single_template_on_cpu_and_the_ensemble_on_request() -> None:
    from search.models.zero_shot_tags import PROMPT_TEMPLATES, SINGLE_TEMPLATE, templates_for

    assert templates_for("auto", "cpu") == SINGLE_TEMPLATE
    assert templates_for("auto", "cuda:0") == PROMPT_TEMPLATES
    assert templates_for("ensemble", "cpu") == PROMPT_TEMPLATES
    assert templates_for("single", "cuda") == SINGLE_TEMPLATE
