"""A hostile corpus for the decoder and the indexer: damaged, disguised, enormous, oddly named
and oddly linked files beside good pictures in awkward encodings (EXIF rotation, CMYK, 16-bit,
palette transparency, alpha, animation, ICC profiles, AVIF/HEIC).

Seeded and small: the whole corpus is about 100 kB and builds in well under a second;
the decompression bomb is a hand-written PNG of about 80 bytes whose header declares
100000x100000 pixels. Every good file comes with the picture decoding must give (`look`), and
every bad file with a piece of the reason the catalog must record.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, ImageCms, features

__all__ = ["BadFile", "GoodFile", "HostileCorpus", "heif_supported", "make_hostile_corpus"]

BOMB_SIDE = 100_000
STRIP_SIZE = (1, 60_000)


@dataclass(frozen=True)
class GoodFile:
    path: Path
    look: Image.Image  # the RGB picture decoding must give (after orientation and compositing)
    width: int  # full size after EXIF orientation, as the catalog records it
    height: int
    tolerance: float  # mean absolute pixel difference allowed against `look` (lossy formats)


@dataclass(frozen=True)
class BadFile:
    path: Path
    reason: str  # a substring of the reason the decoder and the catalog must give


@dataclass(frozen=True)
class HostileCorpus:
    root: Path
    good: dict[str, GoodFile]
    bad: dict[str, BadFile]
    never_indexed: dict[str, Path]  # links, loops, a FIFO, a folder named like an image
    outside_link: Path  # a link to an image outside the root: indexed only when following links
    left_out: dict[str, str] = field(default_factory=dict)  # case -> why it is absent here

    def stored_paths(self) -> dict[str, Path]:
        """Every file the indexer must count, by case name."""
        return {name: f.path for name, f in {**self.good, **self.bad}.items()}


def heif_supported() -> bool:
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def _halves(
    size: tuple[int, int],
    first: tuple[int, int, int],
    second: tuple[int, int, int],
    *,
    vertical: bool = False,
) -> Image.Image:
    """Two flat colours side by side (or one above the other): easy to check after decoding."""
    image = Image.new("RGB", size, first)
    w, h = size
    image.paste(second, (0, h // 2, w, h) if vertical else (w // 2, 0, w, h))
    return image


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _noise(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand: lets the header say what Pillow would refuse to write."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


# -- good files ----------------------------------------------------------------------------


def _exif_rotated_jpeg(path: Path) -> GoodFile:
    """Stored 64x32, left red / right blue, EXIF orientation 6: shown 32x64, red above blue."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = _halves((64, 32), (255, 0, 0), (0, 0, 255))
    path.write_bytes(_encoded(stored, "JPEG", quality=95, exif=exif))
    return GoodFile(path, _halves((32, 64), (255, 0, 0), (0, 0, 255), vertical=True), 32, 64, 6.0)


def _cmyk_jpeg(path: Path) -> GoodFile:
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red
    cmyk.paste((255, 0, 0, 0), (16, 0, 32, 32))  # cyan
    path.write_bytes(_encoded(cmyk, "JPEG", quality=95))
    return GoodFile(path, _halves((32, 32), (255, 0, 0), (0, 255, 255)), 32, 32, 6.0)


def _grey16_png(path: Path) -> GoodFile:
    """16-bit greyscale ramp 0..64512: must scale to 8 bits (0..252), not clip to white."""
    ramp = Image.new("I;16", (64, 16))
    ramp.putdata([x * 1024 for x in range(64)] * 16)
    ramp.save(path)
    look = Image.new("L", (64, 16))
    look.putdata([x * 4 for x in range(64)] * 16)
    return GoodFile(path, look.convert("RGB"), 64, 16, 1.0)


def _rgb16_png(path: Path) -> GoodFile:
    left, right = (0x8000, 0x4000, 0xFFFF), (0xFF00, 0x2000, 0x0000)
    row = b"\x00" + struct.pack(">96H", *(left * 16 + right * 16))
    path.write_bytes(_raw_png(32, 32, 16, 2, row * 32))
    return GoodFile(path, _halves((32, 32), (128, 64, 255), (255, 32, 0)), 32, 32, 1.0)


def _palette_transparent_png(path: Path) -> GoodFile:
    """Palette PNG: index 0 (black) transparent on the left; red and green opaque on the right."""
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 160, 0])
    image.paste(1, (16, 0, 32, 16))
    image.paste(2, (16, 16, 32, 32))
    image.save(path, transparency=0)
    look = Image.new("RGB", (32, 32), (255, 255, 255))
    look.paste((255, 0, 0), (16, 0, 32, 16))
    look.paste((0, 160, 0), (16, 16, 32, 32))
    return GoodFile(path, look, 32, 32, 0.0)


def _rgba_png(path: Path) -> GoodFile:
    """Left: fully transparent blue (shows white). Right: half-transparent red on white."""
    image = Image.new("RGBA", (32, 32), (0, 0, 255, 0))
    image.paste((255, 0, 0, 128), (16, 0, 32, 32))
    image.save(path)
    return GoodFile(path, _halves((32, 32), (255, 255, 255), (255, 127, 127)), 32, 32, 1.0)


def _animated(path: Path, fmt: str, **options: object) -> GoodFile:
    colours = (((255, 255, 0), (128, 0, 128)), ((0, 0, 255), (0, 0, 0)), ((0, 255, 0), (9, 9, 9)))
    frames = [_halves((32, 32), first, second) for first, second in colours]
    frames[0].save(
        path, fmt, save_all=True, append_images=frames[1:], duration=80, loop=0, **options
    )
    return GoodFile(path, frames[0], 32, 32, 1.0)


def _two_colours(
    path: Path,
    fmt: str,
    colours: tuple[tuple[int, int, int], tuple[int, int, int]],
    icc_profile: bytes = b"",
) -> GoodFile:
    """Two flat colours, optionally with an embedded ICC profile (kept as-is, not applied)."""
    look = _halves((32, 32), *colours)
    lossy = fmt == "JPEG"
    options = {"quality": 95} if lossy else {}
    path.write_bytes(_encoded(look, fmt, icc_profile=icc_profile, **options))
    return GoodFile(path, look, 32, 32, 6.0 if lossy else 0.0)


def _strip_png(path: Path) -> GoodFile:
    """1x60000: decoding keeps the centre 1x8 (MAX_ASPECT_RATIO) instead of a 32x1.9M resize."""
    Image.new("RGB", STRIP_SIZE, (200, 30, 160)).save(path)
    return GoodFile(path, Image.new("RGB", (1, 8), (200, 30, 160)), *STRIP_SIZE, 0.0)


def _plain_png(path: Path, colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> GoodFile:
    look = _halves((24, 24), *colours, vertical=True)
    look.save(path, "PNG")
    return GoodFile(path, look, 24, 24, 0.0)


def _modern_format(path: Path, fmt: str) -> GoodFile:
    look = _halves((32, 32), (255, 128, 0), (0, 128, 255))
    look.save(path, fmt, quality=95)
    return GoodFile(path, look, 32, 32, 10.0)


def _make_good(root: Path) -> dict[str, GoodFile]:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (root / "album.jpg").mkdir()  # a folder named like an image: walked, never opened
    good = {
        "plain_jpeg": _two_colours(root / "photo.jpg", "JPEG", ((255, 140, 0), (0, 128, 128))),
        "exif_rotated_jpeg": _exif_rotated_jpeg(root / "rotated.jpg"),
        "cmyk_jpeg": _cmyk_jpeg(root / "cmyk.jpg"),
        "grey16_png": _grey16_png(root / "grey16.png"),
        "rgb16_png": _rgb16_png(root / "rgb16.png"),
        "palette_transparent_png": _palette_transparent_png(root / "palette.png"),
        "rgba_png": _rgba_png(root / "alpha.png"),
        "animated_gif": _animated(root / "animated.gif", "GIF"),
        "animated_webp": _animated(root / "animated.webp", "WEBP", lossless=True),
        "icc_jpeg": _two_colours(root / "icc.jpg", "JPEG", ((250, 250, 0), (90, 0, 200)), srgb),
        "icc_png": _two_colours(root / "icc.png", "PNG", ((0, 200, 90), (240, 0, 120)), srgb),
        "icc_garbage_jpeg": _two_colours(
            root / "icc-garbage.jpg",
            "JPEG",
            ((20, 20, 20), (230, 230, 120)),
            b"\x00not a profile" * 8,
        ),
        "strip_1x60000_png": _strip_png(root / "strip.png"),
        "non_utf8_name_png": _plain_png(
            root / os.fsdecode(b"caf\xe9-latin1.png"), ((10, 60, 200), (200, 200, 10))
        ),
        "long_name_png": _plain_png(
            root / ("long-" + "n" * 235 + ".png"),  # 244 bytes (max 255)
            ((90, 10, 10), (10, 90, 10)),
        ),
        "long_utf8_name_png": _plain_png(
            root / ("\u00e9" * 120 + ".png"),  # 244 bytes in UTF-8
            ((255, 200, 200), (20, 20, 90)),
        ),
        "inside_folder_named_jpg": _plain_png(
            root / "album.jpg" / "inside.png", ((120, 70, 20), (250, 250, 250))
        ),
    }
    if features.check("avif"):
        good["avif"] = _modern_format(root / "modern.avif", "AVIF")
    if heif_supported():
        from pillow_heif import register_heif_opener

        register_heif_opener()
        good["heic"] = _modern_format(root / "modern.heic", "HEIF")
    return good


# -- bad files -----------------------------------------------------------------------------

TRUNCATED = "truncated or corrupt image data"


def _make_bad(root: Path, rng: random.Random) -> dict[str, BadFile]:
    jpeg = _encoded(_noise(rng, (64, 64)), "JPEG", quality=90)
    png = _encoded(_noise(rng, (64, 64)), "PNG")
    files = {
        "truncated_jpeg": ("cut.jpg", jpeg[: len(jpeg) * 6 // 10], TRUNCATED),
        "truncated_jpeg_header": ("cut-header.jpg", jpeg[:20], f"{TRUNCATED}: starts like JPEG"),
        "truncated_png": ("cut.png", png[: len(png) // 2], TRUNCATED),
        "png_header_only": ("header-only.png", png[:33], f"{TRUNCATED}: starts like PNG"),
        "non_utf8_truncated_jpeg": (
            os.fsdecode(b"\xff\xfe-cut.jpg"),
            jpeg[: len(jpeg) // 2],
            TRUNCATED,
        ),
        "zero_bytes": ("empty.jpg", b"", "empty file"),
        "text": (
            "notes.jpg",
            b"Shopping list:\n- milk\n- eggs\n",
            "not an image: looks like plain text",
        ),
        "html": (
            "page.png",
            b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n",
            "not an image: looks like HTML text",
        ),
        "svg": (
            "drawing.png",
            (
                b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                b'width="10" height="10"><rect width="10" height="10"/></svg>\n'
            ),
            "not an image: looks like SVG",
        ),
        "random_bytes": (
            "noise.webp",
            b"\x00\x01" + rng.randbytes(2000),
            "not an image: Pillow cannot identify",
        ),
        "decompression_bomb": (
            "bomb.png",
            _raw_png(BOMB_SIDE, BOMB_SIDE, 8, 0, b"\x00" * 64),
            "decompression bomb refused",
        ),
    }
    if not features.check("avif"):
        stub = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(32)
        files["avif"] = ("modern.avif", stub, "unsupported format: AVIF")
    if not heif_supported():
        stub = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x00\x10meta" + bytes(8)
        files["heic"] = ("modern.heic", stub, "unsupported format: HEIC/HEIF needs the optional")
    bad = {}
    for name, (file_name, data, reason) in files.items():
        (root / file_name).write_bytes(data)
        bad[name] = BadFile(root / file_name, reason)
    return bad


def _add_unreadable(root: Path, bad: dict[str, BadFile], left_out: dict[str, str]) -> None:
    if os.geteuid() == 0:
        left_out["unreadable"] = "running as root, which reads a mode-000 file anyway"
        return
    path = root / "locked.jpg"
    path.write_bytes(_encoded(Image.new("RGB", (8, 8), "red"), "JPEG"))
    path.chmod(0)
    bad["unreadable"] = BadFile(path, "unreadable: permission denied")


# -- things that must never become catalog rows --------------------------------------------


def _make_links(root: Path, good: dict[str, GoodFile]) -> tuple[dict[str, Path], Path]:
    """Links that must not be followed (loops, dangling, out of the root) and one that must:
    a link to a good file inside the root is indexed under its own name."""
    links = root / "links"
    links.mkdir()
    (links / "inside.png").symlink_to(Path("..") / good["rgba_png"].path.name)
    good["link_inside_root"] = replace(good["rgba_png"], path=links / "inside.png")
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(outside / "elsewhere.png")
    never = {
        "folder_loop": links / "back-to-root",  # -> ..: a loop when links are followed
        "file_loop": links / "self.jpg",  # -> itself (ELOOP)
        "file_loop_pair": links / "ping.jpg",  # ping.jpg -> pong.jpg -> ping.jpg
        "dangling_link": links / "dangling.png",
        "fifo": root / "pipe.jpg",  # reading it would block forever
        "folder_named_jpg": root / "album.jpg",
    }
    never["folder_loop"].symlink_to("..", target_is_directory=True)
    never["file_loop"].symlink_to("self.jpg")
    never["file_loop_pair"].symlink_to("pong.jpg")
    (links / "pong.jpg").symlink_to("ping.jpg")
    never["dangling_link"].symlink_to("missing.png")
    os.mkfifo(never["fifo"])
    outside_link = links / "outside.png"
    outside_link.symlink_to(outside / "elsewhere.png")
    return never, outside_link


def make_hostile_corpus(root: Path, seed: int = 13) -> HostileCorpus:
    """Write the corpus into the new folder `root` (and a sibling `<root>-outside`)."""
    root.mkdir(parents=True)
    rng = random.Random(seed)
    left_out: dict[str, str] = {}
    good = _make_good(root)
    bad = _make_bad(root, rng)
    _add_unreadable(root, bad, left_out)
    never, outside_link = _make_links(root, good)
    return HostileCorpus(root, good, bad, never, outside_link, left_out)
