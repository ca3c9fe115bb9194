"""Decoding one image (a file to index or an upload), robustly: every failure becomes a reason.

Pillow opens the bytes; JPEG `draft()` lets libjpeg decode at a reduced scale close to the
model input; EXIF orientation is applied; animations give their first frame; transparency is
composited on white; decompression-bomb limits stay on. The indexer runs it in worker
processes; the API runs it on uploaded query images.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = ["DecodeFailure", "DecodedImage", "decode_bytes", "decode_file", "to_rgb"]

# A picture much longer than wide would blow up to billions of pixels when its short side is
# resized to the model input; keep at most this ratio (centre crop of the long side).
MAX_ASPECT_RATIO = 8.0


class DecodeFailure(Exception):
    """A file that cannot be indexed; `reason` is stored in the catalog as-is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class DecodedImage:
    image: Image.Image  # RGB, oriented, possibly reduced by draft()
    width: int  # full-size width after orientation
    height: int
    content_hash: str


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


def decode_bytes(data: bytes, *, draft_size: int | None = None, max_pixels: int | None = None) -> DecodedImage:
    """Decode image bytes; raises `DecodeFailure` with a specific reason.

    `max_pixels` refuses larger images before any pixel is decoded (uploads use it)."""
    if not data:
        raise DecodeFailure("empty file (0 bytes)")
    content_hash = hashlib.blake2b(data, digest_size=20).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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
                image = ImageOps.exif_transpose(opened)
                image = _limit_aspect(to_rgb(image))
                image.load()
    except DecodeFailure:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeFailure(f"decompression bomb refused: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise DecodeFailure("not an image: Pillow cannot identify the file format") from exc
    except SyntaxError as exc:  # Pillow raises SyntaxError for some malformed headers
        raise DecodeFailure(f"corrupt image header: {exc}") from exc
    except OSError as exc:
        message = str(exc)
        if any(word in message.lower() for word in ("truncated", "broken data stream", "premature end")):
            raise DecodeFailure(f"truncated or corrupt image data: {message}") from exc
        raise DecodeFailure(f"cannot decode image: {message}") from exc
    except (ValueError, TypeError, MemoryError, EOFError) as exc:
        raise DecodeFailure(f"cannot decode image: {type(exc).__name__}: {exc}") from exc
    return DecodedImage(image=image, width=width, height=height, content_hash=content_hash)


def decode_file(path: Path, *, draft_size: int | None = None) -> DecodedImage:
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise DecodeFailure("unreadable: permission denied") from exc
    except IsADirectoryError as exc:
        raise DecodeFailure("is a directory, not an image file") from exc
    except FileNotFoundError as exc:
        raise DecodeFailure("file disappeared before it could be read") from exc
    except OSError as exc:
        raise DecodeFailure(f"unreadable: {exc.strerror or exc}") from exc
    return decode_bytes(data, draft_size=draft_size)


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is a failure, not a grey half-image
