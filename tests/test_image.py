"""vsr.media.image: round trips at 8 and 16 bits, EXIF orientation, ICC/EXIF carried, grey, alpha, bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from vsr.errors import DecodeError, InputError, OutputError, UnsupportedError
from vsr.media.image import IMAGE_SUFFIXES, is_image_path, read_image, to_uint8, write_image

RNG = np.random.default_rng(9)


def _smooth(h: int, w: int, dtype=np.uint8) -> np.ndarray:
    """A smooth, asymmetric RGB picture (lossy codecs keep it well, every flip changes it)."""
    y, x = np.mgrid[0:h, 0:w]
    peak = np.iinfo(dtype).max
    rgb = np.stack([x / w, y / h, (x + 2 * y) / (w + 2 * h)], axis=2)
    return np.round(rgb * peak).astype(dtype)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "vsr-test-camera"  # Make: a tag that must survive
    exif[0x0112] = orientation
    return exif.tobytes()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_round_trip_keeps_depth(tmp_path, suffix, dtype):
    pixels = RNG.integers(0, np.iinfo(dtype).max + 1, (13, 17, 3)).astype(dtype)
    out = tmp_path / f"a{suffix}"
    assert write_image(out, pixels) == []
    back = read_image(out)
    assert back.pixels.dtype == dtype and back.bit_depth == (16 if dtype == np.uint16 else 8)
    np.testing.assert_array_equal(back.pixels, pixels)
    assert back.format == ("PNG" if suffix == ".png" else "TIFF") and not back.grey and back.alpha is None
    # An independent decoder sees the same samples at the same depth (OpenCV stores BGR).
    np.testing.assert_array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[:, :, ::-1], pixels)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left beside it


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_lossy_round_trip(tmp_path, suffix):
    pixels = _smooth(48, 64)
    out = tmp_path / f"a{suffix}"
    write_image(out, pixels, quality=95)
    back = read_image(out)
    assert back.format == ("JPEG" if suffix == ".jpg" else "WEBP") and back.pixels.shape == pixels.shape
    assert _psnr(back.pixels, pixels) > 38


def test_16_bit_to_an_8_bit_format_is_rounded_and_said(tmp_path):
    pixels = np.full((8, 8, 3), 257 * 200 + 100, np.uint16)
    notes = write_image(tmp_path / "a.jpg", pixels)
    assert notes and "16-bit" in notes[0]
    assert abs(int(read_image(tmp_path / "a.jpg").pixels.mean()) - 200) <= 1
    assert to_uint8(np.array([0, 128, 129, 257, 65535], np.uint16)).tolist() == [0, 0, 1, 1, 255]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_like_a_viewer(tmp_path, orientation):
    pixels = _smooth(6, 10)
    src = tmp_path / "o.png"
    Image.fromarray(pixels).save(src, exif=_exif(orientation))
    image = read_image(src)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB"))
    np.testing.assert_array_equal(image.pixels, expected)
    exif = Image.Exif()
    exif.load(image.exif)
    assert exif[0x0112] == 1 and exif[0x010F] == "vsr-test-camera"


def test_jpeg_orientation_reset_in_what_is_written(tmp_path):
    src = tmp_path / "phone.jpg"
    Image.fromarray(_smooth(32, 48)).save(src, quality=98, exif=_exif(6))  # stored landscape, shown portrait
    image = read_image(src)
    assert image.pixels.shape == (48, 32, 3)
    out = tmp_path / "phone_x2.jpg"
    write_image(out, cv2.resize(image.pixels, (64, 96)), like=image)
    shown = Image.open(out)
    assert shown.getexif()[0x0112] == 1 and shown.getexif()[0x010F] == "vsr-test-camera"
    # A viewer applying the written orientation shows the upright picture, not a second rotation.
    assert ImageOps.exif_transpose(shown).size == (64, 96)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_icc_profile_carried(tmp_path, suffix):
    icc = _srgb_icc()
    src = tmp_path / "src.png"
    Image.fromarray(_smooth(16, 16)).save(src, icc_profile=icc)
    image = read_image(src)
    assert image.icc_profile == icc
    out = tmp_path / f"out{suffix}"
    assert write_image(out, image.pixels, like=image) == []
    assert Image.open(out).info.get("icc_profile") == icc  # Pillow, an independent reader, finds it
    assert read_image(out).icc_profile == icc


def test_icc_carried_into_16_bit_tiff_and_png(tmp_path):
    icc = _srgb_icc()
    pixels = RNG.integers(0, 65536, (9, 11, 3)).astype(np.uint16)
    src = tmp_path / "src.tif"
    write_image(src, pixels)
    like = read_image(src)
    like.icc_profile = icc
    for suffix in (".tif", ".png"):
        out = tmp_path / f"out{suffix}"
        write_image(out, pixels, like=like)
        back = read_image(out)
        assert back.icc_profile == icc and back.bit_depth == 16
        np.testing.assert_array_equal(back.pixels, pixels)


def test_icc_of_another_colour_space_is_not_carried(tmp_path):
    like = read_image(_write_png(tmp_path / "src.png", _smooth(8, 8)))
    like.icc_profile = _srgb_icc()[:16] + b"CMYK" + _srgb_icc()[20:]
    notes = write_image(tmp_path / "out.png", like.pixels, like=like)
    assert any("ICC" in n for n in notes) and read_image(tmp_path / "out.png").icc_profile is None


def test_exif_carried_to_png_and_webp(tmp_path):
    src = tmp_path / "src.jpg"
    Image.fromarray(_smooth(16, 16)).save(src, exif=_exif())
    image = read_image(src)
    for suffix in (".png", ".webp"):
        out = tmp_path / f"out{suffix}"
        write_image(out, image.pixels, like=image)
        assert Image.open(out).getexif()[0x010F] == "vsr-test-camera"


def _write_png(path, array):
    assert cv2.imwrite(str(path), array)
    return path


def test_grey_is_expanded_and_written_back_grey(tmp_path):
    grey = RNG.integers(0, 256, (10, 12), dtype=np.uint8)
    image = read_image(_write_png(tmp_path / "g.png", grey))
    assert image.grey and image.pixels.shape == (10, 12, 3)
    np.testing.assert_array_equal(image.pixels[:, :, 1], grey)
    write_image(tmp_path / "g2.png", image.pixels, like=image)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "g2.png"), cv2.IMREAD_UNCHANGED), grey)


def test_alpha_kept_resized_and_reattached(tmp_path):
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[:, :, :3] = 120
    bgra[:, 4:, 3] = 255  # right half opaque, left half transparent
    image = read_image(_write_png(tmp_path / "a.png", bgra))
    assert image.alpha is not None and image.alpha[0, 0] == 0 and image.alpha[0, 7] == 255
    big = cv2.resize(image.pixels, (16, 16), interpolation=cv2.INTER_NEAREST)
    for suffix in (".png", ".webp"):
        write_image(tmp_path / f"b{suffix}", big, like=image)
        back = read_image(tmp_path / f"b{suffix}")
        assert back.alpha is not None and back.alpha.shape == (16, 16)
        assert back.alpha[:, :6].max() < 20 and back.alpha[:, 10:].min() > 235
    notes = write_image(tmp_path / "b.jpg", big, like=image)
    assert any("alpha" in n for n in notes) and read_image(tmp_path / "b.jpg").alpha is None


def test_bad_files_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "notes.png").write_text("hello, not a picture\n")
    with pytest.raises(InputError, match="not an image"):
        read_image(tmp_path / "notes.png")
    png = _write_png(tmp_path / "whole.png", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).read_bytes()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    with pytest.raises(DecodeError):
        read_image(tmp_path / "cut.png")
    Image.fromarray(_smooth(64, 64)).save(tmp_path / "whole.jpg")
    jpg = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpg[: len(jpg) * 2 // 3])
    with pytest.raises(DecodeError, match="truncated"):
        read_image(tmp_path / "cut.jpg")
    Image.fromarray(_smooth(8, 8)).save(tmp_path / "anim.gif")
    with pytest.raises(UnsupportedError, match="GIF"):
        read_image(tmp_path / "anim.gif")
    for err in (InputError, DecodeError, UnsupportedError):
        assert issubclass(err, InputError)


def test_write_refuses_unknown_suffix_and_the_input(tmp_path):
    image = read_image(_write_png(tmp_path / "in.png", _smooth(8, 8)))
    with pytest.raises(OutputError, match=r"\.bmp"):
        write_image(tmp_path / "out.bmp", image.pixels)
    with pytest.raises(OutputError, match="input"):
        write_image(tmp_path / "in.png", image.pixels, like=image)
    np.testing.assert_array_equal(read_image(tmp_path / "in.png").pixels, image.pixels)


def test_suffixes():
    assert {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"} <= set(IMAGE_SUFFIXES)
    assert is_image_path("a/B.JPG") and is_image_path("x.tiff") and not is_image_path("clip.mp4")
