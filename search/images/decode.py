"""Decoding one image (a file to index or an upload), robustly: every failure becomes a reason.

Pillow opens the bytes; JPEG `draft()` lets libjpeg decode at a reduced scale close to the
model input; EXIF orientation is applied; animations give their first frame; transparency is
composited on white; decompression-bomb limits stay on. The indexer runs it in worker
processes; the API runs it on uploaded query images.

Reasons read "kind: detail" and the indexing summary counts them by kind, so each says what is
wrong as specifically as the bytes allow: a damaged JPEG is "truncated or corrupt image data",
an SVG or HTML page saved as `.png` is "not an image: looks like SVG text ...", a HEIC file
without the optional `pillow-heif` package is "unsupported format: ... pixseek[heif]".
Only regular files are read: a FIFO or device named like an image must not block a worker.
"""

from __future__ import annotations

import codecs
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError, features

from search.images.content_hash import hash_bytes
from search.images.failures import DecodeFailure
from search.images.metadata import ImageMetadata, read_metadata
from search.images.source import read_image_bytes, read_plain_file

__all__ = [
    "DecodeFailure",
    "DecodedImage",
    "PlainJpeg",
    "decode_bytes",
    "decode_file",
    "decode_stored",
    "plain_jpeg_header",
    "to_rgb",
]

# A picture much longer than wide would blow up to billions of pixels when its short side is
# resized to the model input; keep at most this ratio (centre crop of the long side).
MAX_ASPECT_RATIO = 8.0

# Reasons for formats that need optional support (the text before the colon groups failures).
HEIF_MISSING = (
    "unsupported format: HEIC/HEIF needs the optional pillow-heif package "
    "(pip install 'pixseek[heif]')"
)
AVIF_MISSING = "unsupported format: AVIF needs Pillow 11.3 or newer built with AVIF support"

# First bytes of the formats we know, to tell a damaged picture from a file that is no picture.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)


@dataclass
class DecodedImage:
    """A decoded picture, ready for a model's transform, and what the catalog records of it."""

    image: Image.Image  # RGB, oriented, possibly reduced by draft()
    width: int  # full-size width after orientation
    height: int
    content_hash: str
    metadata: ImageMetadata  # taken time, camera, file type (read while opening)


@dataclass(frozen=True)
class PlainJpeg:
    """What a JPEG decoder that knows nothing of EXIF needs to be told (`plain_jpeg_header`),
    and what the catalog records of the file."""

    width: int  # full-size width after orientation
    height: int
    orientation: int  # EXIF orientation, 1..8 (1 = as stored)
    metadata: ImageMetadata


def plain_jpeg_header(data: bytes, *, max_pixels: int) -> PlainJpeg | None:
    """The header of a complete, single-picture RGB or greyscale JPEG of sane size and shape,
    read without decoding a pixel; None for anything else.

    Such a file can go to a bare JPEG decoder (nvJPEG on the GPU, through torchvision): the
    cases it would get wrong or that need Pillow's checks and reasons -- truncated data (no end
    marker), CMYK, multi-picture files, huge or extremely long pictures, anything not JPEG --
    stay on the Pillow path, which decodes them or says exactly why not."""
    if not data.startswith(b"\xff\xd8\xff") or not data[-256:].rstrip(b"\x00\r\n ").endswith(
        b"\xff\xd9"
    ):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format != "JPEG" or opened.mode not in ("RGB", "L"):
                    return None
                width, height = opened.size
                orientation = opened.getexif().get(0x0112, 1)
                metadata = read_metadata(opened)
    except Exception:  # noqa: BLE001 - anything odd in the header: let Pillow's path explain it
        return None
    if (
        min(width, height) == 0
        or width * height > max_pixels
        or max(width, height) / min(width, height) > MAX_ASPECT_RATIO
    ):
        return None
    if orientation not in range(1, 9):
        orientation = 1  # Pillow's exif_transpose ignores values outside 1..8 too
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return PlainJpeg(width=width, height=height, orientation=orientation, metadata=metadata)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white (so transparent pixels are not black)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "I;16" or image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit greyscale: scale to 8 bits instead of clipping to white.
        return image.point(lambda v: v / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def _limit_aspect(image: Image.Image) -> Image.Image:
    width, height = image.size
    if min(width, height) == 0:
        raise DecodeFailure("image has zero width or height")
    if max(width, height) / min(width, height) <= MAX_ASPECT_RATIO:
        return image
    if width > height:
        keep = int(height * MAX_ASPECT_RATIO)
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    keep = int(width * MAX_ASPECT_RATIO)
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


def _container_format(data: bytes) -> str | None:
    """The format that the first bytes announce (even when the rest is damaged), or None."""
    if data[4:8] == b"ftyp":  # ISO media: the brands say HEIF, AVIF or something else (video)
        box_end = min(int.from_bytes(data[:4], "big"), 64, len(data))
        brands = {data[8:12]} | {data[i : i + 4] for i in range(16, box_end - 3, 4)}
        if brands & _AVIF_BRANDS:
            return "AVIF"
        return "HEIF" if brands & _HEIF_BRANDS else None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for signature, name in _SIGNATURES if data.startswith(signature)), None)


def _text_kind(data: bytes) -> str | None:
    """'SVG text', 'HTML text', ... when `data` starts as readable UTF-8 text, else None."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data[:4096]).lstrip("\ufeff")
    except UnicodeDecodeError:
        return None
    if not all(ch.isprintable() or ch in "\t\n\r\f\v" for ch in text):
        return None
    lowered = text.lstrip().lower()
    if "<svg" in lowered:
        return "SVG text (vector drawings are not indexed)"
    if lowered.startswith("<!doctype html") or "<html" in lowered:
        return "HTML text"
    if lowered.startswith("<?xml"):
        return "XML text"
    return "plain text"


def _unidentified_reason(data: bytes) -> str:
    """Why Pillow could not identify `data`, as specifically as its first bytes allow."""
    kind = _container_format(data)
    if kind == "HEIF" and not HEIF_SUPPORTED:
        return HEIF_MISSING
    if kind == "AVIF" and not features.check("avif"):
        return AVIF_MISSING
    if kind is not None:
        return f"truncated or corrupt image data: starts like {kind} but the header is unreadable"
    text = _text_kind(data)
    if text is not None:
        return f"not an image: looks like {text}"
    return "not an image: Pillow cannot identify the file format"


_PILLOW_ERRORS = (
    Image.DecompressionBombError,
    UnidentifiedImageError,
    SyntaxError,  # Pillow raises SyntaxError for some malformed headers
    OSError,
    ValueError,  # ValueError .. EOFError: odd files, and what pillow-heif raises
    TypeError,
    RuntimeError,
    MemoryError,
    EOFError,
)
"""What Pillow raises for a file it cannot decode; anything else is a bug and propagates."""


def _open_and_load(
    data: bytes, draft_size: int | None, max_pixels: int | None
) -> tuple[Image.Image, int, int, ImageMetadata]:
    """(RGB image, full-size width, height after orientation, metadata) of `data`; Pillow's
    exceptions propagate."""
    with Image.open(io.BytesIO(data)) as opened:
        width, height = opened.size
        if max_pixels is not None and width * height > max_pixels:
            raise DecodeFailure(
                f"image too large: {width}x{height} pixels is over the limit of {max_pixels}"
            )
        if getattr(opened, "n_frames", 1) > 1:
            opened.seek(0)
        if draft_size and opened.format == "JPEG":
            opened.draft("RGB", (draft_size, draft_size))
        orientation = opened.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        metadata = read_metadata(opened)
        image = _limit_aspect(to_rgb(ImageOps.exif_transpose(opened)))
        image.load()
    return image, width, height, metadata


def _failure_for(exc: BaseException, data: bytes) -> DecodeFailure:
    """The specific reason for one of Pillow's `_PILLOW_ERRORS` on `data`."""
    if isinstance(exc, Image.DecompressionBombError):
        return DecodeFailure(f"decompression bomb refused: {exc}")
    if isinstance(exc, UnidentifiedImageError):
        return DecodeFailure(_unidentified_reason(data))
    if isinstance(exc, SyntaxError):
        return DecodeFailure(f"corrupt image header: {exc}")
    if isinstance(exc, OSError):
        message = str(exc)
        damaged = ("truncated", "broken data stream", "premature end")
        if any(word in message.lower() for word in damaged):
            return DecodeFailure(f"truncated or corrupt image data: {message}")
        return DecodeFailure(f"cannot decode image: {message}")
    return DecodeFailure(f"cannot decode image: {type(exc).__name__}: {exc}")


def decode_bytes(
    data: bytes, *, draft_size: int | None = None, max_pixels: int | None = None
) -> DecodedImage:
    """Decode image bytes; raises `DecodeFailure` with a specific reason.

    `max_pixels` refuses larger images before any pixel is decoded (uploads use it)."""
    if not data:
        raise DecodeFailure("empty file: 0 bytes")
    content_hash = hash_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image, width, height, metadata = _open_and_load(data, draft_size, max_pixels)
    except _PILLOW_ERRORS as exc:
        raise _failure_for(exc, data) from exc
    return DecodedImage(
        image=image, width=width, height=height, content_hash=content_hash, metadata=metadata
    )


def decode_file(path: Path, *, draft_size: int | None = None) -> DecodedImage:
    """Decode a plain image file; raises `DecodeFailure` with a specific reason."""
    return decode_bytes(read_plain_file(path), draft_size=draft_size)


def decode_stored(stored_path: str, *, draft_size: int | None = None) -> DecodedImage:
    """Decode the image a catalog row names: a plain file or a member of a tar shard
    (`search.images.source`); raises `DecodeFailure` with a specific reason."""
    return decode_bytes(read_image_bytes(stored_path), draft_size=draft_size)


def _register_optional_formats() -> bool:
    """Let Pillow open HEIC/HEIF when the optional `pillow-heif` package is installed."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIF_SUPPORTED = _register_optional_formats()
ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is a failure, not a grey half-image
