"""What the catalog records about a picture besides its pixels: when it was taken, by which
camera, in which file format. The metadata filters and facets of a search match on these.

Read from the Pillow image the decoder already opened (no second read of the file): Pillow
parses the EXIF block and the format while opening, before any pixel is decoded, so
`metadata_of_file` can also fill these columns for rows embedded by an older pixseek without
decoding or embedding anything (`indexer.stages.backfill`).

The taken time is stored as an aware UTC datetime, one rule for every source:

- EXIF DateTimeOriginal with OffsetTimeOriginal (EXIF 2.31): the instant it names, in UTC.
- EXIF DateTimeOriginal without an offset (most cameras): the camera's clock reading, taken as
  if it were UTC ("floating" time). The zone the photo was taken in is unknown, and the
  indexing machine's zone says nothing about it; keeping the reading as is keeps the day and
  hour that the camera showed, which is what a date filter on such a photo should match.
- No usable DateTimeOriginal: None here; the catalog then stores the file's modification time
  (an instant, in UTC) and records `taken_at_source = 'mtime'` (`Catalog.finish_batch`).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = [
    "FILE_TYPES",
    "ImageMetadata",
    "camera_label",
    "file_type_of",
    "metadata_of_bytes",
    "metadata_of_file",
    "mtime_as_taken_at",
    "normalise_file_type",
    "parse_exif_datetime",
    "read_metadata",
]

EXIF_IFD = 0x8769  # the Exif sub-IFD, where DateTimeOriginal lives
TAG_MAKE = 271
TAG_MODEL = 272
TAG_DATETIME_ORIGINAL = 36867
TAG_OFFSET_TIME_ORIGINAL = 36881

# Pillow format name -> the file type the catalog stores (what `file_type` filters take).
_PILLOW_FORMATS = {
    "JPEG": "jpeg",
    "MPO": "jpeg",  # multi-picture JPEG (many phones): a JPEG to anyone filtering
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tiff",
    "BMP": "bmp",
    "DIB": "bmp",
    "HEIF": "heif",
    "AVIF": "avif",
}
FILE_TYPES = ("jpeg", "png", "webp", "gif", "tiff", "bmp", "heif", "avif")
"""The file types a filter names most often (any other Pillow format is stored lower-cased)."""

_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff", "heic": "heif", "dib": "bmp"}

_EXIF_DATETIME = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")


@dataclass(frozen=True, slots=True)
class ImageMetadata:
    """A picture's metadata as read from its file. `taken_at` is EXIF DateTimeOriginal only
    (aware, UTC; see the module docstring); None when the file has none usable, and the catalog
    falls back to the file's modification time."""

    file_type: str | None
    taken_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None


def normalise_file_type(value: str) -> str:
    """The catalog's name for a file type a person typed: lower case, `jpg` -> `jpeg`,
    `tif` -> `tiff`, `heic` -> `heif`."""
    lowered = value.strip().lower().lstrip(".")
    return _ALIASES.get(lowered, lowered)


def file_type_of(image: Image.Image) -> str | None:
    """The file type of an opened picture, from the format Pillow sniffed in its first bytes
    (never from the file name)."""
    name = image.format
    if not name:
        return None
    return _PILLOW_FORMATS.get(name.upper(), name.lower())


def parse_exif_datetime(value: Any, offset: Any = None) -> datetime | None:
    """An EXIF date-time ("2024:05:01 14:30:00", with an optional offset "+02:00") as an aware
    UTC datetime; None for a missing, blank or impossible value ("0000:00:00 00:00:00")."""
    text = _exif_text(value)
    match = _EXIF_DATETIME.match(text or "")
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        naive = datetime(year, month, day, hour, minute, second)  # zone set below
    except ValueError:
        return None
    zone = _exif_offset(offset)
    if zone is None:
        return naive.replace(tzinfo=UTC)  # floating camera time, kept as read
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _exif_offset(value: Any) -> timezone | None:
    text = _exif_text(value)
    match = _EXIF_OFFSET.fullmatch(text or "")
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24):
        return None
    return timezone(-delta if sign == "-" else delta)


def _exif_text(value: Any) -> str | None:
    """An EXIF ASCII value as clean text (cameras pad with NULs and blanks); None if empty."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned or None


def read_metadata(image: Image.Image) -> ImageMetadata:
    """The metadata of a picture Pillow has opened (before or after `load`); a damaged EXIF
    block yields what could be read, never an error (the pixels may still be fine)."""
    file_type = file_type_of(image)
    try:
        exif = image.getexif()
        sub_ifd = exif.get_ifd(EXIF_IFD)
        taken_at = parse_exif_datetime(
            sub_ifd.get(TAG_DATETIME_ORIGINAL), sub_ifd.get(TAG_OFFSET_TIME_ORIGINAL)
        )
        make, model = _exif_text(exif.get(TAG_MAKE)), _exif_text(exif.get(TAG_MODEL))
    # EXIF parsers raise anything on hostile bytes (and a warning raises where warnings are
    # errors); no `catch_warnings` here: it is not thread-safe, and the decoder's own covers it.
    except Exception:  # noqa: BLE001
        return ImageMetadata(file_type=file_type)
    return ImageMetadata(
        file_type=file_type, taken_at=taken_at, camera_make=make, camera_model=model
    )


def metadata_of_file(path: Path) -> ImageMetadata:
    """The metadata of the picture at `path`, reading only its header: Pillow's open is lazy,
    so no pixel is decoded. Raises OSError (and Pillow's errors) when the file cannot be opened."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as opened:
            return read_metadata(opened)


def metadata_of_bytes(data: bytes) -> ImageMetadata:
    """The metadata of a picture held in memory (a tar shard member), decoding no pixel."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as opened:
            return read_metadata(opened)


def mtime_as_taken_at(mtime: float) -> datetime | None:
    """A file modification time (seconds since the epoch) as the taken time the catalog stores
    when a picture has no EXIF date; None for the placeholder of a lost vector (negative)."""
    if mtime < 0:
        return None
    try:
        return datetime.fromtimestamp(mtime, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def camera_label(make: str | None, model: str | None) -> str | None:
    """One name for a camera, as results and facets show it: the model when it already names
    maker's first word ("Canon" + "Canon EOS R5" -> "Canon EOS R5"), else "make model"
    ("Apple" + "iPhone 12" -> "Apple iPhone 12"). A `camera` filter with this label matches
    the camera (`search.catalog.filters`)."""
    if not model:
        return make or None
    first_word = (make or "").lower().split()
    if not first_word or model.lower().startswith(first_word[0]):
        return model
    return f"{make} {model}"
