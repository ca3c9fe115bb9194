"""Decoding JPEGs on the encoder's device (`--jpeg-decode device`): the code that runs nvJPEG on a
GPU runs here on the CPU (torchvision's libjpeg-turbo), and must give the pixels, vectors,
failures and reasons the Pillow worker path gives. On a machine with CUDA the last test also
compares the GPU with the CPU."""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image, ImageOps

from benchmarks.photo_corpus import build_photo_corpus
from indexer.decode import device_jpeg
from indexer.decode.device_jpeg import DeviceJpegDecoder, orient, shrink, use_device_jpeg
from indexer.decode.worker import undecoded_jpeg
from indexer.records import DecodedBatch, UndecodedJpeg
from search.catalog import open_catalog
from search.catalog.records import EmbeddedImage, FailedImage
from search.errors import ConfigError
from search.images.decode import PlainJpeg, decode_bytes, plain_jpeg_header
from search.images.metadata import ImageMetadata
from search.images.paths import decode_path
from search.models import load_encoder
from search.models.pixel_transform import PixelTransform
from search.settings import Settings
from tests.conftest import Cli

SIZE = 64


def _jpeg(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Camera-like JPEGs (gradients, noise, EXIF orientations 1, 6, 8, 3), then a greyscale and
    a progressive one."""
    folder = tmp_path_factory.mktemp("jpegs")
    paths = build_photo_corpus(folder, 8, min_mp=0.3, max_mp=1.0)
    with Image.open(paths[0]) as first:
        (folder / "grey.jpg").write_bytes(_jpeg(first.convert("L"), quality=90))
        (folder / "progressive.jpg").write_bytes(
            _jpeg(first.convert("RGB"), quality=90, progressive=True)
        )
    return [*paths, folder / "grey.jpg", folder / "progressive.jpg"]


@pytest.fixture(scope="module")
def transform() -> PixelTransform:
    return PixelTransform(open_clip.image_transform(SIZE, is_train=False))


def _pending(paths: list[Path]) -> list[UndecodedJpeg]:
    """What decode workers hand over for plain JPEGs."""
    items = []
    for image_id, path in enumerate(paths):
        item = undecoded_jpeg(image_id, path.read_bytes(), max_pixels=10**8)
        assert item is not None, path
        items.append(item)
    return items


def _difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().mean())


# -- the pieces -----------------------------------------------------------------------------


def test_uint8_pixels_then_normalise_equal_open_clip_preprocess(transform: PixelTransform) -> None:
    preprocess = open_clip.image_transform(SIZE, is_train=False)
    image = _noise((300, 200))
    assert transform(image).dtype == torch.uint8
    expected = preprocess(image).unsqueeze(0)
    assert torch.allclose(transform.normalise(transform(image).unsqueeze(0)), expected, atol=1e-6)


def test_resizing_a_tensor_matches_resizing_the_pillow_image(transform: PixelTransform) -> None:
    image = Image.open(io.BytesIO(_jpeg(_noise((640, 480)).resize((80, 60)).resize((640, 480)))))
    from_pillow = transform(image)
    from_tensor = transform(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1))
    assert from_tensor.shape == from_pillow.shape == (3, SIZE, SIZE)
    assert _difference(from_tensor, from_pillow) < 1.5


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    image = _noise((5, 3), seed=orientation)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    turned = orient(torch.from_numpy(np.array(image)).permute(2, 0, 1), orientation)
    assert np.array_equal(turned.permute(1, 2, 0).numpy(), expected)


def test_only_plain_complete_jpegs_go_to_the_device() -> None:
    picture = _noise((120, 40))
    rotated = _jpeg(picture, exif=_exif_orientation(6))
    assert plain_jpeg_header(rotated, max_pixels=10**6) == PlainJpeg(
        width=40, height=120, orientation=6, metadata=ImageMetadata(file_type="jpeg")
    )
    assert plain_jpeg_header(_jpeg(picture.convert("L")), max_pixels=10**6) is not None
    refused = {
        "truncated": rotated[: len(rotated) // 2],
        "CMYK": _jpeg(picture.convert("CMYK")),
        "PNG": _png(picture),
        "over the pixel limit": _jpeg(_noise((2000, 600))),
        "longer than 8:1": _jpeg(_noise((900, 100))),
        "text": b"\xff\xd8\xff<html>" + b"x" * 64 + b"\xff\xd9",
    }
    assert {
        name: plain_jpeg_header(data, max_pixels=10**6) for name, data in refused.items()
    } == dict.fromkeys(refused)


def _exif_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# -- the decoder ----------------------------------------------------------------------------


def test_device_decoder_gives_the_pixels_pillow_workers_give(
    photos: list[Path], transform: PixelTransform
) -> None:
    decoder = DeviceJpegDecoder(
        transform, "cpu", draft_size=SIZE, group_pixels=2_000_000
    )  # several groups
    batch = decoder(DecodedBatch(pixels=None, ok=[], failed=[], jpegs=_pending(photos)))
    assert batch.failed == [] and batch.jpegs == [] and decoder.fallbacks == 0
    assert [item.id for item in batch.ok] == list(range(len(photos)))
    assert batch.pixels is not None and batch.pixels.dtype == torch.uint8
    for item, pixels in zip(batch.ok, batch.pixels, strict=True):
        expected = transform(decode_bytes(photos[item.id].read_bytes(), draft_size=SIZE).image)
        assert _difference(pixels, expected) < 1.5, photos[item.id].name  # of 255; seen: 0.25-0.54


def test_jpegs_the_device_refuses_are_decoded_by_pillow_or_fail_with_its_reason(
    photos: list[Path], transform: PixelTransform
) -> None:
    good = photos[:3]
    data = good[1].read_bytes()
    no_scan = data[: data.find(b"\xff\xda")] + b"\xff\xd9"  # a valid header, no picture data
    assert plain_jpeg_header(no_scan, max_pixels=10**8) is not None
    pending = _pending(good)
    pending.append(
        replace(pending[1], id=99, data=torch.frombuffer(bytearray(no_scan), dtype=torch.uint8))
    )
    already = transform(_noise((50, 50))).unsqueeze(0)
    decoder = DeviceJpegDecoder(transform, "cpu", draft_size=SIZE)
    batch = decoder(
        DecodedBatch(
            pixels=already,
            ok=[EmbeddedImage(id=7)],
            failed=[FailedImage(8, "earlier: reason")],
            jpegs=pending,
        )
    )

    # The whole-group call failed, so each file was tried alone: three decoded, one refused.
    assert [item.id for item in batch.ok] == [7, 0, 1, 2]
    assert batch.failed[0] == (8, "earlier: reason")
    assert batch.failed[1] == (99, "cannot decode image: cannot load this image")
    assert decoder.fallbacks == 1
    assert batch.pixels is not None and torch.equal(batch.pixels[0], already[0])


def test_large_photos_for_small_models_are_box_shrunk_first(transform: PixelTransform) -> None:
    big = torch.zeros(3, 1500, 2000, dtype=torch.uint8)
    assert tuple(shrink(big, 32).shape) == (3, 300, 400)  # by 5: short side within [8, 16) x 32
    assert shrink(big, 100) is big  # within 16x of the model's size: untouched
    # A 3 MP photo for a 32 px model (a 47x reduction, more than PyTorch's CUDA resize takes)
    # still gives the pixels the Pillow path gives.
    tiny = PixelTransform(open_clip.image_transform(32, is_train=False))
    data = _jpeg(_noise((16, 12), seed=3).resize((2000, 1500), Image.BICUBIC), quality=90)
    pending = [
        UndecodedJpeg(
            id=1,
            data=torch.frombuffer(bytearray(data), dtype=torch.uint8),
            width=2000,
            height=1500,
            orientation=1,
        )
    ]
    batch = DeviceJpegDecoder(tiny, "cpu", draft_size=32)(
        DecodedBatch(pixels=None, ok=[], failed=[], jpegs=pending)
    )
    assert batch.pixels is not None
    assert _difference(batch.pixels[0], tiny(decode_bytes(data, draft_size=32).image)) < 1.5


class _ResizeFailsOnTensors(PixelTransform):
    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().__call__(image)


def test_a_device_error_while_resizing_falls_back_to_pillow(photos: list[Path]) -> None:
    failing = _ResizeFailsOnTensors(open_clip.image_transform(SIZE, is_train=False))
    decoder = DeviceJpegDecoder(failing, "cpu", draft_size=SIZE)
    batch = decoder(DecodedBatch(pixels=None, ok=[], failed=[], jpegs=_pending(photos[:3])))
    assert (
        [item.id for item in batch.ok] == [0, 1, 2]
        and batch.failed == []
        and decoder.fallbacks == 3
    )


def test_a_device_that_refuses_valid_jpegs_loses_nothing(
    photos: list[Path], transform: PixelTransform, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refusing(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("nvjpeg: NVJPEG_STATUS_JPEG_NOT_SUPPORTED")

    monkeypatch.setattr(device_jpeg, "decode_jpeg", refusing)
    decoder = DeviceJpegDecoder(transform, "cpu", draft_size=SIZE)
    batch = decoder(DecodedBatch(pixels=None, ok=[], failed=[], jpegs=_pending(photos[:4])))
    assert [item.id for item in batch.ok] == [0, 1, 2, 3] and batch.failed == []
    assert decoder.fallbacks == 4
    expected = transform(decode_bytes(photos[2].read_bytes(), draft_size=SIZE).image)
    assert torch.equal(batch.pixels[2], expected)


# -- choosing ---------------------------------------------------------------------------------


class _Stand:
    """Just what `use_device_jpeg` looks at."""

    def __init__(self, device: str, transform: PixelTransform) -> None:
        self.device = device
        self.pixel_transform = transform
        self.model_id = "stand-in"


def test_auto_decodes_on_the_device_only_with_cuda(
    transform: PixelTransform, caplog: pytest.LogCaptureFixture
) -> None:
    cpu = _Stand("cpu", transform)
    assert use_device_jpeg("auto", cpu) is False
    assert use_device_jpeg("workers", cpu) is False
    assert use_device_jpeg("device", cpu) is True
    with pytest.raises(ConfigError, match="jpeg_decode must be one of"):
        use_device_jpeg("gpu", cpu)
    if not torch.cuda.is_available():
        # CUDA asked for but absent: auto says why and keeps the workers; `device` refuses to start.
        with caplog.at_level(logging.WARNING, logger="indexer.decode.device_jpeg"):
            assert use_device_jpeg("auto", _Stand("cuda", transform)) is False
        assert "torchvision cannot decode on cuda" in caplog.text
        with pytest.raises(ConfigError, match="use --jpeg-decode workers"):
            use_device_jpeg("device", _Stand("cuda", transform))


def test_models_whose_resize_needs_pillow_keep_the_workers() -> None:
    from torchvision import transforms as T

    pillow_only = PixelTransform(
        T.Compose(
            [
                T.Lambda(lambda image: image.resize((SIZE, SIZE))),
                T.ToTensor(),
                T.Normalize((0.5,) * 3, (0.5,) * 3),
            ]
        )
    )
    assert pillow_only.accepts_tensors is False
    assert use_device_jpeg("auto", _Stand("cuda", pillow_only)) is False
    with pytest.raises(ConfigError, match="only work on Pillow images"):
        use_device_jpeg("device", _Stand("cpu", pillow_only))


# -- end to end -------------------------------------------------------------------------------


def _vectors(settings: Settings) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Stored vectors and failure reasons by file name."""
    from search.storage.collection_store import CollectionStore

    catalog = open_catalog(settings.resolved_database_url())
    try:
        info = catalog.require_collection("default")
        records = catalog.get_images(catalog.embedded_ids(info.id))
        ids, vectors = CollectionStore(settings, catalog, info).vectors.latest(list(records))
        by_name = {
            decode_path(records[int(i)].path).name: v for i, v in zip(ids, vectors, strict=True)
        }
        failures = {decode_path(path).name: reason for path, reason in catalog.failures(info.id)}
    finally:
        catalog.close()
    return by_name, failures


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_indexing_with_device_decode_stores_the_vectors_workers_store(
    settings: Settings, photos: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in photos:
        (folder / path.name).write_bytes(path.read_bytes())
    data = photos[0].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "no-scan.jpg").write_bytes(data[: data.find(b"\xff\xda")] + b"\xff\xd9")
    with Image.open(photos[1]) as image:
        image.convert("CMYK").save(folder / "cmyk.jpg", quality=90)
        image.convert("RGB").save(folder / "plain.png")

    results = {}
    for mode, workers in (("workers", 0), ("device", 0), ("device", 2)):
        run = settings.model_copy(
            update={
                "data_dir": tmp_path / f"{mode}-{workers}",
                "database_url": None,
                "workers": workers,
            }
        )
        summary = Cli(run).json("index", str(folder), "--jpeg-decode", mode)
        assert (summary["indexed"], summary["failed"]) == (len(photos) + 2, 2), summary
        assert summary["jpeg_decode"] == mode
        results[mode, workers] = _vectors(run)
    (by_workers, failed_workers), (by_device, failed_device) = (
        results["workers", 0],
        results["device", 0],
    )
    assert failed_device == failed_workers
    assert set(failed_device) == {"truncated.jpg", "no-scan.jpg"}
    assert by_device.keys() == by_workers.keys()
    # JPEG bytes crossing from worker processes give exactly what decoding in-process gives.
    by_device_from_workers, failed_device_from_workers = results["device", 2]
    assert failed_device_from_workers == failed_device
    assert all(np.array_equal(by_device_from_workers[name], by_device[name]) for name in by_device)
    cosines = {name: float(by_device[name] @ by_workers[name]) for name in by_device}
    assert min(cosines.values()) > 0.999, cosines


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_decode_matches_the_cpu_twin(photos: list[Path], transform: PixelTransform) -> None:
    cpu = DeviceJpegDecoder(transform, "cpu", draft_size=SIZE)(
        DecodedBatch(pixels=None, ok=[], failed=[], jpegs=_pending(photos))
    )
    cuda = DeviceJpegDecoder(transform, "cuda", draft_size=SIZE)(
        DecodedBatch(pixels=None, ok=[], failed=[], jpegs=_pending(photos))
    )
    assert cuda.pixels is not None and cuda.pixels.device.type == "cuda"
    assert [i.id for i in cuda.ok] == [i.id for i in cpu.ok]
    assert _difference(cuda.pixels.cpu(), cpu.pixels) < 2.0
    encoder = load_encoder("tiny-test", "cuda")
    assert encoder.encode_pixels(cuda.pixels).shape == (len(photos), encoder.dim)
