"""Photo metadata at index time: EXIF DateTimeOriginal (with and without OffsetTimeOriginal),
else the file's mtime, camera make and model, and the sniffed file type reach the catalog; an
older catalog gets them on the next `pixseek index` without embedding again; revision 0004
upgrades a catalog holding data (tag labels copied into `image_tags`) and goes back down."""

from __future__ import annotations

import io
import os
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from indexer.decode.worker import undecoded_jpeg
from indexer.pipeline import index_paths
from search.catalog import Catalog, ImageRecord, open_catalog
from search.catalog.migrate import downgrade_database, upgrade_database
from search.images.decode import decode_bytes
from search.images.metadata import (
    ImageMetadata,
    camera_label,
    metadata_of_bytes,
    parse_exif_datetime,
)
from search.schemas import SearchFilters
from search.settings import Settings

MTIME = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def _exif(
    taken: str | None, offset: str | None = None, make: str | None = None, model: str | None = None
) -> Image.Exif:
    exif = Image.Exif()
    if make:
        exif[271] = make
    if model:
        exif[272] = model
    sub_ifd = exif.get_ifd(0x8769)
    if taken:
        sub_ifd[36867] = taken
    if offset:
        sub_ifd[36881] = offset
    return exif


def _jpeg(exif: Image.Exif | None = None, colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    picture = Image.new("RGB", (64, 48), colour)
    if exif is None:
        picture.save(buffer, "JPEG")
    else:
        picture.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_exif_date_with_offset_is_the_instant_in_utc() -> None:
    data = _jpeg(_exif("2023:07:14 18:30:05", "+02:00", "Canon", "Canon EOS R5"))
    assert metadata_of_bytes(data) == ImageMetadata(
        file_type="jpeg",
        taken_at=datetime(2023, 7, 14, 16, 30, 5, tzinfo=UTC),
        camera_make="Canon",
        camera_model="Canon EOS R5",
    )
    assert decode_bytes(data).metadata == metadata_of_bytes(data), "the decoder reads the same"


def test_exif_date_without_offset_keeps_the_camera_clock_reading() -> None:
    data = _jpeg(_exif("2023:12:31 23:59:59", make="Apple", model="iPhone 12"))
    metadata = metadata_of_bytes(data)
    assert metadata.taken_at == datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert camera_label(metadata.camera_make, metadata.camera_model) == "Apple iPhone 12"


def test_no_exif_or_an_unusable_date_gives_no_exif_time() -> None:
    assert metadata_of_bytes(_jpeg()) == ImageMetadata(file_type="jpeg")
    assert metadata_of_bytes(_jpeg(_exif("0000:00:00 00:00:00"))).taken_at is None
    assert parse_exif_datetime("2024:02:30 10:00:00") is None
    assert parse_exif_datetime("2024:02:03 10:00:00\x00", "-05:30") == datetime(
        2024, 2, 3, 15, 30, tzinfo=UTC
    )
    assert parse_exif_datetime("   ") is None


def test_a_damaged_exif_block_loses_the_metadata_not_the_picture() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), "red").save(buffer, "JPEG", exif=b"Exif\x00\x00MM\x00*\xff\xff")
    decoded = decode_bytes(buffer.getvalue())
    assert (decoded.width, decoded.metadata) == (16, ImageMetadata(file_type="jpeg"))


@pytest.mark.parametrize(
    ("save_as", "expected"),
    [("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tiff")],
)
def test_file_type_is_sniffed_from_the_bytes(save_as: str, expected: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, save_as)
    assert metadata_of_bytes(buffer.getvalue()).file_type == expected


def test_device_jpeg_path_carries_the_metadata() -> None:
    data = _jpeg(_exif("2020:01:02 03:04:05", make="SONY", model="ILCE-7M3"))
    jpeg = undecoded_jpeg(7, data, max_pixels=10**6)
    assert jpeg is not None
    assert jpeg.embedded().metadata == metadata_of_bytes(data)


def _photo_folder(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    files = {
        "offset": (_jpeg(_exif("2023:07:14 18:30:05", "+02:00", "Canon", "Canon EOS R5"), "red")),
        "naive": _jpeg(_exif("2019:05:01 08:00:00", make="Apple", model="iPhone 12"), "blue"),
        "plain": _jpeg(colour="green"),
    }
    paths = {}
    for name, data in files.items():
        path = root / f"{name}.jpg"
        path.write_bytes(data)
        paths[name] = path
    png = root / "drawing.png"
    Image.new("RGB", (30, 60), "yellow").save(png)
    paths["png"] = png
    for path in paths.values():
        os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    return paths


def _records(catalog: Catalog) -> dict[str, ImageRecord]:
    (collection,) = catalog.list_collections()
    records = catalog.get_images(catalog.embedded_ids(collection.id))
    return {Path(r.path).stem: r for r in records.values()}


def _check_metadata(records: dict[str, ImageRecord]) -> None:
    seen = {
        name: (r.taken_at, r.taken_at_source, r.camera, r.file_type) for name, r in records.items()
    }
    assert seen == {
        "offset": (datetime(2023, 7, 14, 16, 30, 5, tzinfo=UTC), "exif", "Canon EOS R5", "jpeg"),
        "naive": (datetime(2019, 5, 1, 8, 0, tzinfo=UTC), "exif", "Apple iPhone 12", "jpeg"),
        "plain": (MTIME, "mtime", None, "jpeg"),
        "drawing": (MTIME, "mtime", None, "png"),
    }, seen


def _quiet(settings: Settings) -> Settings:
    return settings.model_copy(update={"tags": False})


def test_indexing_records_taken_time_camera_and_file_type(
    settings: Settings, tmp_path: Path
) -> None:
    _photo_folder(tmp_path / "photos")
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    with closing(catalog):
        index_paths(_quiet(settings), catalog, [tmp_path / "photos"])
        records = _records(catalog)
        _check_metadata(records)
        (collection,) = catalog.list_collections()
        july = SearchFilters(date_from="2023-07-14", date_to="2023-07-14", camera="canon")
        assert catalog.matching_ids(july, [collection.id]).tolist() == [records["offset"].id]


def test_older_rows_get_metadata_on_reindex_without_embedding_again(
    settings: Settings, tmp_path: Path
) -> None:
    _photo_folder(tmp_path / "photos")
    settings = _quiet(settings)
    catalog = open_catalog(settings.resolved_database_url(), upgrade=True)
    with closing(catalog):
        first = index_paths(settings, catalog, [tmp_path / "photos"])
        assert first.indexed == 4
        with catalog.session() as session:  # as rows embedded before revision 0004 are
            session.execute(
                text(
                    "UPDATE images SET taken_at = NULL, taken_at_source = NULL, "
                    "camera_make = NULL, camera_model = NULL, file_type = NULL"
                )
            )
        assert {r.file_type for r in _records(catalog).values()} == {None}
        (collection,) = catalog.list_collections()
        store_file_count = len(list((settings.data_dir).rglob("*")))
        again = index_paths(settings, catalog, [tmp_path / "photos"])
        assert (again.indexed, again.unchanged, again.metadata_backfilled) == (0, 4, 4), again
        _check_metadata(_records(catalog))
        assert len(list(settings.data_dir.rglob("*"))) == store_file_count, "nothing re-embedded"
        third = index_paths(settings, catalog, [tmp_path / "photos"])
        assert third.metadata_backfilled == 0
        assert catalog.count_matching(SearchFilters(file_type=["png"]), [collection.id]) == 1


def test_migration_0004_upgrades_a_catalog_with_data(database_url: str) -> None:
    catalog = open_catalog(database_url, upgrade=True)
    engine = catalog.engine
    downgrade_database(engine, "0003")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO collections (id, name, model_spec, model_id, dim, created_at) "
                "VALUES (1, 'old', 'tiny-test', 'm', 4, :now)"
            ),
            {"now": now},
        )
        for image_id, tags in (
            (1, '[{"label": "Beach", "score": 0.9}, {"label": "dog", "score": 0.4}]'),
            (2, '[{"label": "dog", "score": 0.8}]'),
            (3, None),
        ):
            connection.execute(
                text(
                    "INSERT INTO images (id, collection_id, path, path_key, size, mtime, status, "
                    "tags, tags_model, taken_at, created_at, updated_at) VALUES (:id, 1, :path, "
                    ":key, 10, 1.5, 'embedded', :tags, 'unknown', NULL, :now, :now)"
                ),
                {
                    "id": image_id,
                    "path": f"/p/{image_id}.jpg",
                    "key": f"k{image_id}",
                    "tags": tags,
                    "now": now,
                },
            )
    upgrade_database(engine)
    assert catalog.count_matching(SearchFilters(tag=["beach", "dog"]), [1]) == 1
    assert catalog.count_matching(SearchFilters(any_tag=["dog"]), [1]) == 2
    assert [r.file_type for r in catalog.get_images([1, 2, 3]).values()] == [None] * 3
    assert [r.id for r in catalog.unread_metadata(1)] == [1, 2, 3]
    downgrade_database(engine, "0003")
    upgrade_database(engine)
    assert catalog.count_matching(SearchFilters(any_tag=["beach"]), [1]) == 1
    catalog.close()


def test_backfill_reads_plain_files_and_shard_members(tmp_path: Path) -> None:
    import tarfile

    from indexer.stages.backfill import read_file_metadata
    from search.images.paths import encode_path
    from search.images.source import archive_member_path

    data = _jpeg(_exif("2018:02:03 04:05:06", make="Canon", model="Canon EOS R5"))
    member = tmp_path / "000001.jpg"
    member.write_bytes(data)
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as tar:
        tar.add(member, arcname="000001.jpg")
    expected = metadata_of_bytes(data)
    assert read_file_metadata(encode_path(member)) == expected
    assert read_file_metadata(archive_member_path(shard, "000001.jpg")) == expected
    assert read_file_metadata(encode_path(tmp_path / "gone.jpg")) is None
