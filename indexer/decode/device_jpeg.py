"""Decoding plain JPEGs on the encoder's device: `torchvision.io.decode_jpeg` (nvJPEG on CUDA,
libjpeg-turbo on the CPU), then EXIF orientation, resize and crop as tensors on that device.

Why: on a GPU host the CPU decode workers are the limit. Measured on a 16-core H100 host, Pillow
with `draft()` decoded about 500 photos/s over all cores while ViT-B-32 in fp16 embedded about
7,000/s. torchvision opens nvJPEG with its hardware backend where the chip has JPEG engines
(A100, H100) and falls back to CUDA kernels elsewhere, so decoding moves off the CPU cores; the
workers only read, hash and parse headers. On a CPU it is a loss: torchvision decodes at full
size while `draft()` lets libjpeg decode at 1/2 to 1/8 scale. So `jpeg_decode=auto` turns it on
only when the encoder runs on CUDA and a probe decode works; `device` forces it (the tests use
that to run this exact code on the CPU), `workers` turns it off.

Nothing is lost when the device decoder refuses a file: that file is decoded again by Pillow,
which either succeeds or records the specific reason, as for any other file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Callable, Iterator, Sequence

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from indexer.records import DecodedBatch, UndecodedJpeg
from search.catalog.records import FailedImage
from search.errors import ConfigError
from search.images.decode import decode_bytes
from search.images.failures import DecodeFailure
from search.models import Encoder
from search.models.pixel_transform import PixelTransform

__all__ = [
    "JPEG_DECODE_CHOICES",
    "DeviceJpegDecoder",
    "device_jpeg_max_pixels",
    "orient",
    "shrink",
    "use_device_jpeg",
]

log = logging.getLogger(__name__)

JPEG_DECODE_CHOICES = ("auto", "workers", "device")

# Decoded full-size pixels held on the device at once (3 bytes each): bounds memory per call.
GROUP_PIXELS = 256_000_000


def device_jpeg_max_pixels() -> int:
    """Largest JPEG sent to the device: the same decompression-bomb limit Pillow applies."""
    return int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply EXIF `orientation` (1..8) to a (C, H, W) tensor, as Pillow's `exif_transpose` does."""
    turn = _ORIENTATIONS.get(orientation)
    return image if turn is None else turn(image)


_ORIENTATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    2: lambda image: image.flip(-1),
    3: lambda image: image.flip(-2, -1),
    4: lambda image: image.flip(-2),
    5: lambda image: image.transpose(-2, -1),
    6: lambda image: torch.rot90(image, k=-1, dims=(-2, -1)),
    7: lambda image: image.transpose(-2, -1).flip(-2, -1),
    8: lambda image: torch.rot90(image, k=1, dims=(-2, -1)),
}
"""EXIF orientation -> the turn that shows the picture upright (1 and unknown values: none)."""


@functools.cache
def _probe(device: str) -> str | None:
    """Why `decode_jpeg` cannot decode on `device`, or None when a small JPEG decodes there."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "torch sees no CUDA device"
    buffer = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 30, 30)).save(buffer, format="JPEG")
    data = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    try:
        # On a stream of its own, for the reason given in DeviceJpegDecoder's docstring.
        with (
            torch.cuda.stream(_new_stream(torch.device(device)))
            if device.startswith("cuda")
            else contextlib.nullcontext()
        ):
            decoded = decode_jpeg([data], mode=ImageReadMode.RGB, device=device)[0].cpu()
    except Exception as exc:  # noqa: BLE001 - no nvJPEG, a driver problem, ...: any reason says no
        return f"{type(exc).__name__}: {exc}"
    if tuple(decoded.shape) != (3, 8, 16):
        return f"decode_jpeg returned shape {tuple(decoded.shape)} for a 16x8 picture"
    return None


def _new_stream(device: torch.device) -> torch.cuda.Stream:
    """A CUDA stream of our own on `device` (torch's constructor is not annotated)."""
    return torch.cuda.Stream(device)  # type: ignore[no-untyped-call]


def use_device_jpeg(choice: str, encoder: Encoder) -> bool:
    """Whether this run decodes plain JPEGs on `encoder.device` (see the module docstring)."""
    if choice not in JPEG_DECODE_CHOICES:
        raise ConfigError(
            f"jpeg_decode must be one of {', '.join(JPEG_DECODE_CHOICES)}; got {choice!r}"
        )
    if choice == "workers":
        return False
    cuda = encoder.device.startswith("cuda")
    if not encoder.pixel_transform.accepts_tensors:
        if choice == "device":
            raise ConfigError(
                f"--jpeg-decode device: model {encoder.model_id} resizes with steps that only "
                "work on Pillow images; use --jpeg-decode workers."
            )
        return False
    if choice == "auto" and not cuda:
        return False
    problem = _probe(encoder.device)
    if problem is None:
        return True
    if choice == "device":
        raise ConfigError(
            f"--jpeg-decode device: torchvision cannot decode JPEGs on {encoder.device} "
            f"({problem}); use --jpeg-decode workers."
        )
    log.warning(
        "decoding JPEGs with the CPU workers: torchvision cannot decode on %s (%s)",
        encoder.device,
        problem,
    )
    return False


def _groups(items: list[UndecodedJpeg], limit: int) -> Iterator[list[UndecodedJpeg]]:
    """Consecutive runs of `items` whose full-size pixels add up to at most `limit`."""
    group: list[UndecodedJpeg] = []
    pixels = 0
    for item in items:
        size = item.width * item.height
        if group and pixels + size > limit:
            yield group
            group, pixels = [], 0
        group.append(item)
        pixels += size
    if group:
        yield group


def shrink(image: torch.Tensor, size: int) -> torch.Tensor:
    """Box-filter a (C, H, W) uint8 image by a whole factor while its short side stays at least
    8x `size` -- as `draft()` does for Pillow. The antialiased resize after it then shrinks by
    less than 16x: PyTorch's CUDA kernel refuses factors over about 47x, which a 12 MP photo
    for a 32 px model would need. (Shrinking closer to `size` than 8x moves pixels visibly
    away from the Pillow path's; at 8x they stay within about 0.5 of 255.)"""
    factor = min(image.shape[-2:]) // (8 * size)
    if factor < 2:
        return image
    pooled = torch.nn.functional.avg_pool2d(image.unsqueeze(0).float(), factor, stride=factor)[0]
    return pooled.round_().clamp_(0, 255).to(torch.uint8)


class DeviceJpegDecoder:
    """Turns a `DecodedBatch` with undecoded JPEGs into one whose pixels all sit on `device`.

    On CUDA all of its work runs on a stream of its own. torchvision's decoder writes from a
    private stream that does not wait for the caller's (pytorch/vision#9606, seen on H100), into
    blocks the caching allocator hands out on the current stream; blocks of a stream only this
    object uses, synchronised before every decode call, cannot still be read by anyone's queued
    kernels -- not by the resizes of the previous group, nor by other threads' searches."""

    def __init__(
        self,
        transform: PixelTransform,
        device: str,
        draft_size: int,
        group_pixels: int = GROUP_PIXELS,
    ) -> None:
        self.transform = transform
        self.device = torch.device(device)
        self.draft_size = draft_size
        self.group_pixels = group_pixels
        self.fallbacks = 0  # JPEGs the device refused, decoded by Pillow instead
        self._stream = _new_stream(self.device) if self.device.type == "cuda" else None

    def __call__(self, batch: DecodedBatch) -> DecodedBatch:
        if not batch.jpegs:
            return batch
        if self._stream is None:
            return self._decode_batch(batch)
        caller = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._stream):
            decoded = self._decode_batch(batch)
        caller.wait_stream(self._stream)  # the caller's kernels start after ours finish
        if decoded.pixels is not None:
            decoded.pixels.record_stream(caller)  # and its memory is not reused before theirs do
        return decoded

    def _decode_batch(self, batch: DecodedBatch) -> DecodedBatch:
        ok = list(batch.ok)
        failed = list(batch.failed)
        pixels = (
            [batch.pixels.to(self.device, non_blocking=True)] if batch.pixels is not None else []
        )
        for group in _groups(batch.jpegs, self.group_pixels):
            datas = [_bytes_of(item) for item in group]
            for item, data, image in zip(group, datas, self._decode(datas), strict=True):
                one = self._pixels(item, data, image)
                if isinstance(one, FailedImage):
                    failed.append(one)
                else:
                    ok.append(item.embedded())
                    pixels.append(one.unsqueeze(0))
        return DecodedBatch(pixels=torch.cat(pixels) if pixels else None, ok=ok, failed=failed)

    def _pixels(
        self, item: UndecodedJpeg, data: torch.Tensor, image: torch.Tensor | None
    ) -> torch.Tensor | FailedImage:
        """The model's pixels of one JPEG the device decoded (`image`) or refused (None); what
        the device cannot finish, Pillow decodes, or says why not."""
        one = None if image is None else self._resize(image, item.orientation)
        if one is not None:
            return one
        self.fallbacks += 1
        try:
            return self._pillow(data)
        except DecodeFailure as exc:
            return FailedImage(item.id, exc.reason)
        except Exception as exc:  # noqa: BLE001 - as in the workers: one file fails, not the run
            return FailedImage(item.id, f"cannot decode image: {type(exc).__name__}: {exc}")

    def _resize(self, image: torch.Tensor, orientation: int) -> torch.Tensor | None:
        """The model's pixels for a decoded image, or None when the device fails on it (out of
        memory, say): Pillow then decodes that file instead."""
        try:
            return self.transform(shrink(orient(image, orientation), self.draft_size))
        except Exception:  # noqa: BLE001 - whatever the device says, the Pillow path can still try
            self._settle()
            return None

    def _decode(self, datas: list[torch.Tensor]) -> Sequence[torch.Tensor | None]:
        """Decode a group in one call; if the call fails, each file alone (None: refused)."""
        try:
            return self._decode_jpeg(datas)
        except RuntimeError:
            self._settle()
        decoded: list[torch.Tensor | None] = []
        for data in datas:
            try:
                decoded.append(self._decode_jpeg([data])[0])
            except RuntimeError:
                self._settle()
                decoded.append(None)
        return decoded

    def _decode_jpeg(self, datas: list[torch.Tensor]) -> list[torch.Tensor]:
        if self._stream is not None:
            self._stream.synchronize()  # see the class docstring
        return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=self.device))

    def _settle(self) -> None:
        """After a failed call, let whatever it queued on the device finish before its memory
        is reused: a decode that failed half way may still be writing."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _pillow(self, data: torch.Tensor) -> torch.Tensor:
        """A file the device decoder refused: decode it the usual way (or raise its reason)."""
        decoded = decode_bytes(data.numpy().tobytes(), draft_size=self.draft_size)
        return self.transform(decoded.image).to(self.device)


def _bytes_of(item: UndecodedJpeg) -> torch.Tensor:
    if item.data is None:
        raise ValueError(f"JPEG {item.id} has no bytes: call DecodedBatch.with_jpeg_views first")
    return item.data
