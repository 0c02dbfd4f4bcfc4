"""Still images in and out: one reader and one writer for every image vsr reads or publishes.

Pixels are decoded and encoded by OpenCV (the decoder training and evaluation have always used, and the
only one of the two that handles 16-bit colour); Pillow parses and writes the metadata (ICC profiles,
EXIF) because carrying those through four containers (PNG chunks, JPEG APP segments split at 64 KiB,
WebP's extended RIFF header, TIFF tags) is exactly what it already does well.  Per format:

=======  ==========  ==================  =========================================================
format   depths      encoder             carried on write
=======  ==========  ==================  =========================================================
PNG      8, 16       OpenCV              ICC (``iCCP``), EXIF (``eXIf``), alpha, grey
TIFF     8, 16       OpenCV              ICC (tag 34675), alpha, grey; not EXIF (TIFF keeps its own tags)
JPEG     8           Pillow              ICC, EXIF, grey; alpha is dropped (a note says so)
WebP     8           Pillow              ICC, EXIF, alpha; grey is written as RGB
=======  ==========  ==================  =========================================================

BMP, PPM and PGM are read, not written.  XMP is not carried.  A 16-bit image written to an 8-bit
format is rounded (``round(v / 257)``).  EXIF orientation is applied to the pixels on read and reset to
1 in the EXIF that is written back, so no viewer rotates the result twice.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vsr.atomic import write_atomic
from vsr.errors import DecodeError, InputError, OutputError, UnsupportedError

# Frames of a folder are matched in this order (``.jpg`` first: the ChokePoint layout).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".pgm")
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
WRITE_SUFFIXES = tuple(WRITE_FORMATS)
_READ_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "TIFF", "BMP", "PPM")
_HIGH_DEPTH = ("PNG", "TIFF")
_ORIENTATION = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
_ICC_TAG = 34675


def is_image_path(path: Path | str) -> bool:
    """Whether ``path`` names an image vsr reads (by its suffix, case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@dataclass
class ImageFile:
    """A decoded image and what to carry into the file written from it.

    ``pixels`` is always (H, W, 3) RGB, uint8 or uint16, EXIF orientation already applied.  A file
    that stores one channel has ``grey`` set: its channel is repeated into RGB here and written back as
    one channel.  A file with transparency keeps it in ``alpha`` ((H, W), the dtype of ``pixels``),
    re-attached by ``write_image`` (resized to the output).  ``exif`` is the EXIF block as a JPEG APP1
    payload (``Exif\\0\\0`` + TIFF structure) with orientation reset to 1; None when the file has none.
    """

    pixels: np.ndarray
    bit_depth: int
    format: str  # "PNG", "JPEG", "WEBP", "TIFF", "BMP" or "PPM" (from the content, not the suffix)
    icc_profile: bytes | None = None
    exif: bytes | None = None
    path: Path | None = None
    grey: bool = False
    alpha: np.ndarray | None = None


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """8-bit samples: uint8 as is, uint16 rounded (``round(v / 257)``, so 65535 -> 255 and 257 -> 1)."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


# -- reading ---------------------------------------------------------------------------------------------


def read_image(path: Path | str) -> ImageFile:
    """Decode an image file; raises a one-line ``InputError`` (missing, not an image, truncated, unsupported)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"not found: {path}; check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise InputError(f"{path} is not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{path} is empty (0 bytes), not an image")
    fmt, icc, exif, orientation = _metadata(path, data)
    if fmt == "JPEG" and not _jpeg_complete(data):
        raise DecodeError(f"{path}: the JPEG data is truncated (no end-of-image marker)")

    import cv2

    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # no auto-rotation: done below
    if raw is None or raw.size == 0:
        raise DecodeError(f"{path}: cannot decode the {fmt} data (truncated or corrupt)")
    if raw.dtype not in (np.uint8, np.uint16):
        raise UnsupportedError(f"{path}: {raw.dtype} samples are not supported (8- and 16-bit integers are)")
    if raw.ndim == 2:
        raw = raw[:, :, None]
    channels = raw.shape[2]
    grey = channels <= 2
    alpha = raw[:, :, channels - 1] if channels in (2, 4) else None
    if grey:
        pixels = np.repeat(raw[:, :, :1], 3, axis=2)
    else:
        pixels = np.ascontiguousarray(raw[:, :, 2::-1])  # BGR(A) -> RGB
    pixels = _orient(pixels, orientation)
    alpha = None if alpha is None else _orient(alpha, orientation)
    return ImageFile(
        pixels=pixels,
        bit_depth=16 if pixels.dtype == np.uint16 else 8,
        format=fmt,
        icc_profile=icc,
        exif=exif,
        path=path,
        grey=grey,
        alpha=alpha,
    )


def _metadata(path: Path, data: bytes) -> tuple[str, bytes | None, bytes | None, int]:
    """(format, ICC profile, EXIF with orientation reset, orientation) from the headers; nothing decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(
            f"not an image: {path} (reads {', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise UnsupportedError(f"{path}: {exc}") from None
    except Exception as exc:  # Pillow raises SyntaxError, OSError, ValueError... for broken headers
        raise DecodeError(f"{path}: broken image header ({exc})") from None
    with im:
        fmt = "JPEG" if im.format == "MPO" else im.format  # MPO: a camera JPEG with extra pictures
        if im.format not in _READ_FORMATS:
            raise UnsupportedError(f"{path}: {im.format} images are not supported; convert it to PNG")
        if getattr(im, "is_animated", False) and fmt in ("PNG", "WEBP"):
            raise UnsupportedError(f"{path}: animated {fmt} is not supported; extract its frames first")
        icc = im.info.get("icc_profile") or None
        if fmt == "TIFF":  # TIFF's own tags are not an EXIF block: take the orientation, carry the ICC
            return fmt, icc, None, int(im.tag_v2.get(_ORIENTATION, 1))
        raw = im.info.get("exif") or None  # PNG: only an eXIf chunk before the pixels (no decode here)
    if raw is None:
        return fmt, icc, None, 1
    if not raw.startswith(_EXIF_PREFIX):
        raw = _EXIF_PREFIX + raw
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # unparsable EXIF: keep the pixels as stored, drop the block
        return fmt, icc, None, 1
    orientation = int(exif.get(_ORIENTATION, 1) or 1)
    if orientation != 1:
        exif[_ORIENTATION] = 1
        raw = exif.tobytes()
    return fmt, icc, raw, orientation if 1 <= orientation <= 8 else 1


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the array is upright (what ``ImageOps.exif_transpose`` does)."""
    t = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: x.swapaxes(0, 1)[:, ::-1],
        7: lambda x: x.swapaxes(0, 1)[::-1, ::-1],
        8: lambda x: x.swapaxes(0, 1)[::-1],
    }.get(orientation)
    return a if t is None else np.ascontiguousarray(t(a))


def _jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG has its end-of-image marker (OpenCV silently pads a truncated one with grey).

    Marker segments are walked to the first scan; inside entropy-coded data 0xFF is always followed by
    0x00 or a restart marker, so the first FFD9 after it ends the image (trailers such as a motion
    photo's video come after that and do not matter).
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xDA:
            return data.find(b"\xff\xd9", pos + 2 + length) != -1
        pos += 2 + length
    return False


# -- writing ---------------------------------------------------------------------------------------------


def write_image(
    path: Path | str, pixels: np.ndarray, like: ImageFile | None = None, quality: int = 95
) -> list[str]:
    """Write RGB ``pixels`` (uint8 or uint16) atomically, in the format of the suffix, carrying from ``like``.

    From ``like`` (the image the pixels came from) it carries the ICC profile, EXIF, grey storage and
    alpha (resized to the output) where the format allows.  16-bit pixels stay 16-bit in PNG and TIFF
    and are rounded to 8 bits otherwise; 8-bit pixels are never widened.  ``quality`` (1-100) is for
    JPEG and WebP.  Returns one line per thing that could not be carried (for the report's warnings).
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"cannot write {path.suffix or 'files without a suffix'} images: use one of {', '.join(WRITE_SUFFIXES)}"
        )
    if like is not None and like.path is not None and path.resolve() == like.path.resolve():
        raise OutputError(f"{path} is the input image; inputs are never overwritten")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"write_image needs (H, W, 3) uint8 or uint16 RGB, got {pixels.shape} {pixels.dtype}"
        )
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100, got {quality}")
    notes: list[str] = []
    if pixels.dtype == np.uint16 and fmt not in _HIGH_DEPTH:
        pixels = to_uint8(pixels)
        notes.append(f"{fmt} is 8-bit: the 16-bit samples were rounded to 8 bits")
    alpha = _fit_alpha(like.alpha, pixels) if like is not None and like.alpha is not None else None
    if alpha is not None and fmt == "JPEG":
        alpha = None
        notes.append("JPEG has no alpha channel: the transparency was dropped")
    # Grey with alpha is written as RGBA (OpenCV writes 1, 3 or 4 channels), WebP has no grey at all.
    grey = like is not None and like.grey and fmt != "WEBP" and alpha is None
    icc = like.icc_profile if like is not None else None
    if icc is not None and icc[16:20] != (b"GRAY" if grey else b"RGB "):
        notes.append(
            f"the ICC profile ({icc[16:20].decode('latin-1').strip()}) does not fit the output: not carried"
        )
        icc = None
    exif = like.exif if like is not None else None
    if exif is not None and fmt == "TIFF":
        notes.append("TIFF output: the EXIF block was not carried (the ICC profile was)")
        exif = None

    import cv2

    if grey:
        channels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[:, :, None]
    else:
        channels = pixels
    if alpha is not None:
        channels = np.concatenate([channels, alpha[:, :, None]], axis=2)
    if fmt in ("JPEG", "WEBP"):
        data = _pillow_encode(channels, fmt, quality, icc, exif)
    else:
        ok, buf = cv2.imencode(f".{fmt.lower()}", _to_bgr(channels))
        if not ok:
            raise OutputError(f"cannot encode {path} as {fmt}")
        data = buf.tobytes()
        data = _png_with(data, icc, exif) if fmt == "PNG" else _tiff_with_icc(data, icc, notes)
    write_atomic(path, data)
    return notes


def _fit_alpha(alpha: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The input's alpha at the output's size and depth (bicubic, clipped by OpenCV's saturation)."""
    import cv2

    h, w = pixels.shape[:2]
    if alpha.shape != (h, w):
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_CUBIC)
    if alpha.dtype == pixels.dtype:
        return alpha
    return to_uint8(alpha) if pixels.dtype == np.uint8 else alpha.astype(np.uint16) * 257


def _to_bgr(channels: np.ndarray) -> np.ndarray:
    if channels.shape[2] == 1:
        return channels[:, :, 0]
    return np.ascontiguousarray(channels[:, :, [2, 1, 0, 3][: channels.shape[2]]])


def _pillow_encode(
    channels: np.ndarray, fmt: str, quality: int, icc: bytes | None, exif: bytes | None
) -> bytes:
    from PIL import Image

    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels.shape[2]]
    image = Image.fromarray(channels[:, :, 0] if mode == "L" else channels, mode)
    extra = {k: v for k, v in (("icc_profile", icc), ("exif", exif)) if v is not None}
    out = io.BytesIO()
    image.save(out, format=fmt, quality=quality, **extra)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with(data: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert ``iCCP`` and ``eXIf`` right after IHDR (both must precede the pixel data)."""
    chunks = b""
    if icc is not None:
        chunks += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if exif is not None:
        chunks += _png_chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX))
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, length + type, IHDR fields, CRC
    return data[:end_of_ihdr] + chunks + data[end_of_ihdr:]


def _tiff_with_icc(data: bytes, icc: bytes | None, notes: list[str]) -> bytes:
    """Add the ICC tag: a copy of the first IFD with the tag, appended, and the header pointed at it.

    The old IFD's out-of-line values stay where they are, so its entries are copied unchanged.
    """
    if icc is None:
        return data
    order = "<" if data[:2] == b"II" else ">"
    magic, ifd = struct.unpack(order + "HI", data[2:8])
    if magic != 42 or len(data) + len(icc) > 2**32 - 2**20:
        notes.append("TIFF output too large for classic TIFF tags: the ICC profile was not carried")
        return data
    (count,) = struct.unpack_from(order + "H", data, ifd)
    entries = [data[ifd + 2 + 12 * i : ifd + 14 + 12 * i] for i in range(count)]
    (next_ifd,) = struct.unpack_from(order + "I", data, ifd + 2 + 12 * count)
    out = bytearray(data) + b"\x00" * (len(data) % 2)  # TIFF offsets are word-aligned
    icc_at = len(out)
    out += icc + b"\x00" * (len(icc) % 2)
    tag_of = lambda entry: struct.unpack_from(order + "H", entry)[0]  # noqa: E731
    entries = [e for e in entries if tag_of(e) != _ICC_TAG]
    entries.append(struct.pack(order + "HHII", _ICC_TAG, 7, len(icc), icc_at))  # 7: UNDEFINED bytes
    entries.sort(key=tag_of)
    struct.pack_into(order + "I", out, 4, len(out))
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + struct.pack(order + "I", next_ifd)
    return bytes(out)
