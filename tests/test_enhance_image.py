"""``vsr enhance`` on still images: one file or a folder, depth and metadata kept, bad files isolated."""

from __future__ import annotations

import json

import numpy as np
from conftest import invoke

from vsr.media.image import read_image, write_image
from vsr.media.sample import sample_frame


def _photo(path, width=48, height=32, depth=8, orientation=None, icc=None):
    from PIL import Image

    pixels = sample_frame(3, width, height)
    if depth == 16:
        write_image(path, pixels.astype(np.uint16) * 257)
        return path
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(path, exif=exif.tobytes(), icc_profile=icc)
    return path


def test_jpeg_in_png_out_upright_with_its_profile(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = _photo(tmp_path / "p.jpg", orientation=6, icc=icc)  # 6: stored sideways, shown turned 90° cw
    out, report = tmp_path / "p_x2.png", tmp_path / "r.json"
    proc = invoke("enhance", str(src), str(out), "-q", "--model", "bicubic", "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    written = read_image(out)
    assert written.pixels.shape == (96, 64, 3)  # 48x32 stored, 32x48 shown, x2
    assert written.icc_profile == icc
    data = json.loads(report.read_text())
    assert data["frames_out"] == 1 and data["items"][0]["size_out"] == [64, 96]
    assert data["items"][0]["sha256_in"] and data["models"][0]["name"] == "bicubic"


def test_sixteen_bit_png_stays_sixteen_bit(tmp_path):
    src = _photo(tmp_path / "deep.png", depth=16)
    out = tmp_path / "deep_x2.png"
    proc = invoke("enhance", str(src), str(out), "-q", "--model", "bicubic")
    assert proc.returncode == 0, proc.stderr
    written = read_image(out)
    assert written.bit_depth == 16 and written.pixels.dtype == np.uint16
    assert written.pixels.shape == (64, 96, 3)
    assert len(np.unique(written.pixels[..., 0])) > 256  # real 16-bit levels, not 8-bit ones widened


def test_folder_with_a_bad_image_finishes_the_rest(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    _photo(photos / "a.jpg")
    _photo(photos / "b.png")
    (photos / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    report = tmp_path / "r.json"
    proc = invoke("enhance", str(photos), str(out), "-q", "--model", "bicubic", "--report", str(report))
    assert proc.returncode == 3, proc.stderr
    assert "1 of 3 images failed" in proc.stderr and "c.jpg" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]  # nothing half-written for c
    data = json.loads(report.read_text())
    assert [i["status"] for i in data["items"]] == ["ok", "ok", "failed"] and data["status"] == "partial"


def test_image_output_needs_an_image_extension(tmp_path):
    src = _photo(tmp_path / "p.jpg")
    proc = invoke("enhance", str(src), str(tmp_path / "p.mp4"), "-q", "--model", "bicubic")
    assert proc.returncode == 2 and "an image is written as" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jpg"]


def test_face_mode_on_one_image_finds_the_face(tmp_path):
    src = tmp_path / "face.png"
    write_image(src, sample_frame(0, 160, 120))
    out, report = tmp_path / "face_x4.png", tmp_path / "r.json"
    proc = invoke(
        "enhance", str(src), str(out), "-q", "--scale", "4", "--mode", "face", "--background", "lanczos",
        "--report", str(report),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["mode"] == "face" and data["items"][0]["faces"]  # detected without any tracking history
    assert read_image(out).pixels.shape == (480, 640, 3)
