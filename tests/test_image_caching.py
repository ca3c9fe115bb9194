"""HTTP caching of thumbnails and original files: a strong ETag from the content hash, 304 on a
matching `If-None-Match` (without making a thumbnail), `Cache-Control` by the documented
policy, a new ETag once a changed file is re-indexed, and a thumbnail made once, even when
first requests race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

import search.images.thumbnails as thumbnails
from search.catalog import open_catalog
from search.images.thumbnails import THUMBNAIL_SIZE, CachedThumbnail
from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app
from web.http_cache import REVALIDATE_AFTER_S, VERSIONED_MAX_AGE_S


def _first_hit(client: TestClient) -> dict[str, object]:
    found = client.get("/api/search", params={"q": "a photo", "k": 1}).json()["results"]
    assert found, "the photo set is indexed"
    return found[0]  # type: ignore[no-any-return]


def _thumbnail_files(settings: Settings, image_id: int) -> list[Path]:
    return sorted(settings.thumbnail_dir().glob(f"*/{image_id}-*.jpg"))


def test_thumbnail_has_etag_and_cache_control_and_answers_304_without_making_it(
    cli: Cli, settings: Settings, photo_set: PhotoSet
) -> None:
    cli.json("index", str(photo_set.root))
    with TestClient(create_app(settings)) as client:
        hit = _first_hit(client)
        url, image_id = str(hit["thumbnail_url"]), int(str(hit["id"]))
        first = client.get(url)
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/"), etag
        assert first.headers["cache-control"] == (
            f"public, max-age={REVALIDATE_AFTER_S}, must-revalidate"
        )
        with Image.open(_thumbnail_files(settings, image_id)[0]) as made:
            assert max(made.size) <= THUMBNAIL_SIZE
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = client.get(url, headers={"If-None-Match": header})
            assert again.status_code == 304, f"If-None-Match: {header}"
            assert again.content == b"" and again.headers["etag"] == etag
        assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
        for made in _thumbnail_files(settings, image_id):
            made.unlink()
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert _thumbnail_files(settings, image_id) == [], "a 304 makes no thumbnail"
        tag = etag.strip('"')
        pinned = client.get(url, params={"v": tag})
        assert pinned.headers["cache-control"] == (
            f"public, max-age={VERSIONED_MAX_AGE_S}, immutable"
        )
        stale = client.get(url, params={"v": "an-old-version"})
        assert stale.status_code == 200 and "immutable" not in stale.headers["cache-control"]


def test_original_file_etag_is_its_content_hash_and_answers_304(
    cli: Cli, settings: Settings, photo_set: PhotoSet
) -> None:
    cli.json("index", str(photo_set.root))
    with TestClient(create_app(settings)) as client:
        hit = _first_hit(client)
        detail = client.get(f"/api/images/{hit['id']}").json()
        served = client.get(str(hit["file_url"]))
        assert served.status_code == 200
        assert served.headers["etag"] == f'"{detail["content_hash"]}"'
        assert served.headers["cache-control"].endswith("must-revalidate")
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.content == Path(str(hit["path"])).read_bytes()
        again = client.get(str(hit["file_url"]), headers={"If-None-Match": served.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def _repaint(path: Path) -> None:
    with Image.open(path) as image:
        changed = image.convert("RGB")
    ImageDraw.Draw(changed).rectangle((0, 0, 40, 40), fill="magenta")
    changed.save(path, quality=90)


def test_etags_change_when_the_file_changes_and_is_reindexed(
    cli: Cli, settings: Settings, photos: PhotoSet
) -> None:
    cli.json("index", str(photos.root))
    with TestClient(create_app(settings)) as client:
        hit = _first_hit(client)
        image_id, path = int(str(hit["id"])), Path(str(hit["path"]))
        old_thumb = client.get(str(hit["thumbnail_url"])).headers["etag"]
        old_file = client.get(str(hit["file_url"])).headers["etag"]
        _repaint(path)
        changed = client.get(str(hit["file_url"]), headers={"If-None-Match": old_file})
        assert changed.status_code == 200, "changed on disk: never the old hash for new bytes"
        assert changed.headers["etag"] != old_file and changed.content == path.read_bytes()
        cli.json("index", str(photos.root))
        thumb = client.get(str(hit["thumbnail_url"]), headers={"If-None-Match": old_thumb})
        assert thumb.status_code == 200 and thumb.headers["etag"] != old_thumb
        reindexed = client.get(str(hit["file_url"])).headers["etag"]
        assert reindexed not in (old_file, changed.headers["etag"])
        assert reindexed == f'"{client.get(f"/api/images/{image_id}").json()["content_hash"]}"'
    assert len(_thumbnail_files(settings, image_id)) == 1, "the old thumbnail was removed"


def test_thumbnail_is_made_once_under_concurrent_first_requests(
    cli: Cli, settings: Settings, photo_set: PhotoSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.json("index", str(photo_set.root))
    catalog = open_catalog(settings.resolved_database_url())
    try:
        record = next(r for r in catalog.get_images(list(range(1, 30))).values() if r.width)
    finally:
        catalog.close()
    decodes: list[str] = []
    real_decode = thumbnails.decode_stored

    def counting_decode(path: str, **kwargs: int) -> object:
        decodes.append(path)
        return real_decode(path, **kwargs)

    monkeypatch.setattr(thumbnails, "decode_stored", counting_decode)
    start = threading.Barrier(8)

    def first_request(_: int) -> Path:
        start.wait()
        return CachedThumbnail(record, settings.thumbnail_dir()).path()

    with ThreadPoolExecutor(8) as pool:
        paths = set(pool.map(first_request, range(8)))
    assert len(paths) == 1 and decodes == [record.path], f"decoded {len(decodes)} times"
    made = paths.pop()
    mtime = made.stat().st_mtime_ns
    assert CachedThumbnail(record, settings.thumbnail_dir()).path() == made
    assert made.stat().st_mtime_ns == mtime and len(decodes) == 1, "the second use remade it"
    assert [p.name for p in made.parent.iterdir() if p.name.endswith(".tmp")] == []
    with Image.open(made) as image:
        assert image.format == "JPEG" and max(image.size) <= THUMBNAIL_SIZE


def test_with_a_read_token_image_responses_are_private(
    cli: Cli, settings: Settings, photo_set: PhotoSet
) -> None:
    cli.json("index", str(photo_set.root))
    guarded = settings.model_copy(update={"read_token": "s3cret"})
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(create_app(guarded)) as client:
        hit = client.get("/api/search", params={"q": "a photo", "k": 1}, headers=auth).json()
        result = hit["results"][0]
        for url in (result["thumbnail_url"], result["file_url"]):
            answer = client.get(url, headers=auth)
            assert answer.headers["cache-control"].startswith("private, "), url
