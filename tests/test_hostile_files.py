"""Hostile files: each bad file fails with its own reason, each good one decodes to the picture it
shows (rotation applied, alpha on white, first frame, 16 bits scaled), and indexing the whole
corpus on both catalogs finishes, counts every file once, records every reason and sums the
reasons up by kind. Links never loop or lead out of the root; FIFOs and folders are not read."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from indexer.sources import iter_image_files
from search.catalog import open_catalog
from search.images.decode import MAX_ASPECT_RATIO, DecodeFailure, decode_bytes, decode_file
from search.images.paths import decode_path, display_path, encode_path
from search.settings import Settings
from tests.conftest import Cli
from tests.hostile_files import HostileCorpus, heif_supported, make_hostile_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> HostileCorpus:
    """Built once; no test writes to it."""
    return make_hostile_corpus(tmp_path_factory.mktemp("hostile") / "corpus")


def _mean_difference(image: Image.Image, look: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(image, look)).mean) / 3


def _close(pixel: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 8) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


# -- the decoder, file by file --------------------------------------------------------------


def test_good_files_decode_to_the_picture_they_show(corpus: HostileCorpus) -> None:
    wrong = {}
    for name, good in corpus.good.items():
        try:
            decoded = decode_file(good.path, draft_size=32)
        except DecodeFailure as exc:
            wrong[name] = f"failed: {exc.reason}"
            continue
        seen = (decoded.image.mode, decoded.image.size, decoded.width, decoded.height)
        if seen != ("RGB", good.look.size, good.width, good.height):
            wrong[name] = f"mode, decoded size, full size = {seen}"
        elif (difference := _mean_difference(decoded.image, good.look)) > good.tolerance:
            wrong[name] = f"mean pixel difference {difference:.2f} > {good.tolerance}"
    assert not wrong, wrong


def test_bad_files_fail_with_their_own_reason(corpus: HostileCorpus) -> None:
    wrong = {}
    for name, bad in corpus.bad.items():
        try:
            decode_file(bad.path)
            wrong[name] = "decoded without error"
        except DecodeFailure as exc:
            if bad.reason not in exc.reason:
                wrong[name] = f"reason {exc.reason!r} lacks {bad.reason!r}"
    assert not wrong, wrong


def test_exif_rotation_is_applied(corpus: HostileCorpus) -> None:
    path = corpus.good["exif_rotated_jpeg"].path
    with Image.open(path) as stored:
        assert stored.size == (64, 32)  # as written: wider than high, red left, blue right
    for draft_size in (None, 16):
        decoded = decode_file(path, draft_size=draft_size)
        assert (decoded.width, decoded.height) == (32, 64)
        w, h = decoded.image.size
        assert h == 2 * w, decoded.image.size
        top = decoded.image.getpixel((w // 2, h // 8))
        bottom = decoded.image.getpixel((w // 2, h * 7 // 8))
        assert _close(top, (255, 0, 0)) and _close(bottom, (0, 0, 255)), (draft_size, top, bottom)


def test_transparency_is_composited_on_white(corpus: HostileCorpus) -> None:
    palette = decode_file(corpus.good["palette_transparent_png"].path).image
    assert palette.getpixel((4, 4)) == (255, 255, 255)
    assert palette.getpixel((24, 4)) == (255, 0, 0)
    rgba = decode_file(corpus.good["rgba_png"].path).image
    assert rgba.getpixel((4, 4)) == (255, 255, 255)  # transparent blue: white, not black or blue
    assert _close(rgba.getpixel((24, 4)), (255, 127, 127), 1)  # half-transparent red over white


def test_16_bit_pngs_are_scaled_not_clipped(corpus: HostileCorpus) -> None:
    grey = decode_file(corpus.good["grey16_png"].path).image
    assert grey.convert("L").getextrema() == (0, 252)  # the ramp survives: not all white or black
    assert grey.getpixel((32, 8)) == (128, 128, 128)
    colour = decode_file(corpus.good["rgb16_png"].path).image
    assert colour.getpixel((4, 4)) == (128, 64, 255)


def test_cmyk_jpeg_converts_to_rgb(corpus: HostileCorpus) -> None:
    for draft_size in (None, 8):
        image = decode_file(corpus.good["cmyk_jpeg"].path, draft_size=draft_size).image
        w, h = image.size
        assert image.mode == "RGB"
        left, right = image.getpixel((w // 4, h // 2)), image.getpixel((w * 3 // 4, h // 2))
        assert _close(left, (255, 0, 0)) and _close(right, (0, 255, 255)), (draft_size, left, right)


def test_animations_give_their_first_frame(corpus: HostileCorpus) -> None:
    for name in ("animated_gif", "animated_webp"):
        image = decode_file(corpus.good[name].path).image
        first_frame = (image.getpixel((4, 4)), image.getpixel((28, 4)))
        assert first_frame == ((255, 255, 0), (128, 0, 128)), (name, first_frame)


def test_icc_profiles_keep_the_colours(corpus: HostileCorpus) -> None:
    for name in ("icc_jpeg", "icc_png", "icc_garbage_jpeg"):
        good = corpus.good[name]
        image = decode_file(good.path).image
        pixel = image.getpixel((4, 4))
        assert _close(pixel, good.look.getpixel((4, 4))), (name, pixel)


def test_long_strip_keeps_a_bounded_centre_and_preprocesses_sanely(corpus: HostileCorpus) -> None:
    from open_clip.transform import image_transform

    decoded = decode_file(corpus.good["strip_1x60000_png"].path, draft_size=32)
    assert (decoded.width, decoded.height) == (1, 60_000)
    w, h = decoded.image.size
    assert w * h <= MAX_ASPECT_RATIO * min(w, h) ** 2, decoded.image.size  # not 1x60000 any more
    # Resize shortest side to 32 + centre crop: 32x256 pixels, instead of 32x1,920,000.
    pixels = image_transform(32, is_train=False)(decoded.image)
    assert tuple(pixels.shape) == (3, 32, 32)
    assert bool(pixels.isfinite().all())
    assert float(pixels.std(dim=(1, 2)).max()) < 1e-3  # one flat colour per channel, as in the file


def test_heic_and_avif_decode_or_name_the_missing_support(corpus: HostileCorpus) -> None:
    for name, missing in (("heic", "pixseek[heif]"), ("avif", "AVIF")):
        if name in corpus.good:
            good = corpus.good[name]
            assert _mean_difference(decode_file(good.path).image, good.look) <= good.tolerance
            continue
        with pytest.raises(DecodeFailure) as caught:
            decode_file(corpus.bad[name].path)
        assert caught.value.reason.startswith("unsupported format:"), caught.value.reason
        assert missing in caught.value.reason
    assert ("heic" in corpus.good) == heif_supported()


@pytest.mark.timeout(30)
def test_fifo_folder_and_link_loop_are_refused_without_blocking(corpus: HostileCorpus) -> None:
    with pytest.raises(DecodeFailure, match="not a regular file"):
        decode_file(corpus.never_indexed["fifo"])  # a blocking read would hang here
    with pytest.raises(DecodeFailure, match="is a directory"):
        decode_file(corpus.never_indexed["folder_named_jpg"])
    with pytest.raises(DecodeFailure, match="unreadable"):
        decode_file(corpus.never_indexed["file_loop"])


def test_upload_size_limit_is_checked_before_decoding(corpus: HostileCorpus) -> None:
    data = corpus.good["strip_1x60000_png"].path.read_bytes()
    with pytest.raises(DecodeFailure, match="image too large: 1x60000 pixels"):
        decode_bytes(data, max_pixels=10_000)


def _reason_as_nobody(path: Path) -> str:
    """Decode `path` in a forked child that has dropped root for `nobody`; its reason comes back."""
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        message = "decoded"
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.stat(path)  # the folder is open to nobody: only the file's own mode can refuse
            decode_file(path)
        except DecodeFailure as exc:
            message = exc.reason
        except BaseException as exc:  # noqa: BLE001
            message = f"child could not try: {exc!r}"
        finally:
            os.write(write_end, message.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_unreadable_file_says_permission_denied() -> None:
    folder = Path(tempfile.mkdtemp(prefix="pixseek-unreadable-"))
    try:
        folder.chmod(0o755)
        path = folder / "locked.jpg"
        Image.new("RGB", (8, 8), "red").save(path)
        path.chmod(0)
        if os.geteuid() != 0:
            with pytest.raises(DecodeFailure) as caught:
                decode_file(path)
            reason = caught.value.reason
        else:  # root reads any file: ask an unprivileged child instead
            reason = _reason_as_nobody(path)
            if reason.startswith("child could not try"):
                pytest.skip(f"cannot drop root to test an unreadable file: {reason}")
        assert reason == "unreadable: permission denied"
    finally:
        shutil.rmtree(folder)


# -- the folder scan ------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("follow_symlinks", [False, True])
def test_scan_finds_each_file_once_and_never_loops(
    corpus: HostileCorpus, follow_symlinks: bool
) -> None:
    found = [f.path for f in iter_image_files(corpus.root, follow_symlinks=follow_symlinks)]
    expected = set(corpus.stored_paths().values())
    if follow_symlinks:
        expected.add(corpus.outside_link)  # asked for: the link out of the root is followed
    assert len(found) == len(set(found)), Counter(found).most_common(3)
    extra, missing = set(found) - expected, expected - set(found)
    assert not extra and not missing, {"extra": extra, "missing": missing}
    assert not set(found) & set(corpus.never_indexed.values())


def test_scan_through_a_linked_root_keeps_the_links_inside_it(
    corpus: HostileCorpus, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(corpus.root, target_is_directory=True)
    via_alias = {f.path.relative_to(alias) for f in iter_image_files(alias)}
    direct = {f.path.relative_to(corpus.root) for f in iter_image_files(corpus.root)}
    assert via_alias == direct, {
        "direct only": direct - via_alias,
        "alias only": via_alias - direct,
    }
    assert Path("links/inside.png") in via_alias  # resolves inside the (resolved) root


# -- indexing the corpus on both catalogs ---------------------------------------------------


def _counts(summary: dict[str, object]) -> tuple[object, ...]:
    return tuple(summary[key] for key in ("seen", "indexed", "failed", "unchanged", "removed"))


def _search_scores(cli: Cli, query: Path, k: int) -> dict[str, float]:
    results = cli.json("search", "--image", str(query), "--k", str(k))["results"]
    return {r["path"]: r["score"] for r in results}


def _check_catalog(settings: Settings, corpus: HostileCorpus) -> dict[str, str]:
    """The catalog rows: bad files failed with their reasons, good ones embedded at full size.
    Returns the stored failure reasons by case name."""
    catalog = open_catalog(settings.resolved_database_url())
    try:
        collection = catalog.require_collection("default")
        failures = {decode_path(path): reason for path, reason in catalog.failures(collection.id)}
        records = catalog.get_images(catalog.embedded_ids(collection.id)).values()
        embedded = {decode_path(r.path): (r.width, r.height) for r in records}
    finally:
        catalog.close()
    by_path = {bad.path: name for name, bad in corpus.bad.items()}
    assert set(failures) == set(by_path), {"extra": set(failures) - set(by_path)}
    wrong = {by_path[p]: r for p, r in failures.items() if corpus.bad[by_path[p]].reason not in r}
    assert not wrong, wrong
    assert embedded == {g.path: (g.width, g.height) for g in corpus.good.values()}
    return {by_path[path]: reason for path, reason in failures.items()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("jpeg_decode", ["workers", "device"])
def test_indexing_the_hostile_corpus(
    cli: Cli, settings: Settings, corpus: HostileCorpus, tmp_path: Path, jpeg_decode: str
) -> None:
    """Both JPEG paths: Pillow in the workers, and torchvision on the model's device (nvJPEG's
    code path, here on the CPU), which must hand every hostile JPEG to Pillow or decode it right."""
    summary = cli.json("index", str(corpus.root), "--jpeg-decode", jpeg_decode)
    assert summary["jpeg_decode"] == jpeg_decode
    n_good, n_bad = len(corpus.good), len(corpus.bad)
    assert _counts(summary) == (n_good + n_bad, n_good, n_bad, 0, 0), summary

    reasons = _check_catalog(settings, corpus)
    assert summary["failure_reasons"] == dict(Counter(r.split(":", 1)[0] for r in reasons.values()))
    expected_kinds = Counter(bad.reason.split(":", 1)[0] for bad in corpus.bad.values())
    assert summary["failure_reasons"] == dict(expected_kinds), summary["failure_reasons"]

    # The stored vectors are those of the pictures the files show: querying with each picture
    # finds its file with cosine ~1 (exact for lossless files); on black, transparency would not.
    for name, good in corpus.good.items():
        query = tmp_path / f"{name}.png"
        good.look.save(query)
        score = _search_scores(cli, query, n_good)[display_path(encode_path(good.path))]
        assert score == pytest.approx(1.0, abs=2e-3 if good.tolerance <= 1 else 5e-3), name
    rgba = corpus.good["rgba_png"].path
    with Image.open(rgba) as opened:
        black = Image.new("RGBA", opened.size, "black")
        on_black = Image.alpha_composite(black, opened.convert("RGBA"))
    on_black.convert("RGB").save(tmp_path / "on-black.png")
    assert _search_scores(cli, tmp_path / "on-black.png", n_good)[str(rgba)] < 0.99

    again = cli.json("index", str(corpus.root))
    assert _counts(again) == (n_good + n_bad, 0, 0, n_good + n_bad, 0), again


@pytest.mark.timeout(120)
def test_indexing_with_follow_symlinks_does_not_loop(cli: Cli, corpus: HostileCorpus) -> None:
    summary = cli.json("index", str(corpus.root), "--follow-symlinks")
    n_good, n_bad = len(corpus.good), len(corpus.bad)
    # The loop back to the root is visited once; the asked-for link out of the root is indexed.
    assert _counts(summary) == (n_good + n_bad + 1, n_good + 1, n_bad, 0, 0), summary
