"""`vsr restore`: pixels outside the mask bit-exact (8/16-bit, grey, RGBA), masks from files or a colour,
folders, the JSON report, bad input (one line, exit 1/2, nothing half-written), restore -> upscale."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from restore_fixtures import chip, tiny_model, write_chips

from vsr.cli import main
from vsr.errors import InputError
from vsr.media.image import read_image
from vsr.pipelines.restore.run import RestoreOptions, Restorer, blend_seam


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


def _vsr(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    return int(exit_.value.code)


def _band(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 5 : 4 * w // 5] = True
    return mask


def _write_mask(path: Path, mask: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    return path


@pytest.mark.parametrize("detect", [False, True])
def test_outside_the_mask_bit_exact_8_16_bit_grey_rgba(model, detect):
    restorer = Restorer(RestoreOptions(model=str(model), detect=detect, device="cpu"))
    base = cv2.resize(chip(3), (90, 70))
    rng = np.random.default_rng(0)
    images = [
        base,
        base.astype(np.uint16) * 257 + rng.integers(0, 200, base.shape).astype(np.uint16),
        cv2.cvtColor(base, cv2.COLOR_RGB2GRAY),
        np.dstack([base, rng.integers(0, 256, base.shape[:2], dtype=np.uint8)]),
    ]
    mask = _band(70, 90)
    for image in images:
        out = restorer.restore(image, mask)
        assert out.dtype == image.dtype and out.shape == image.shape
        assert np.array_equal(out[~mask], image[~mask])
        if image.ndim == 3 and image.shape[2] == 4:
            assert np.array_equal(out[..., 3], image[..., 3])  # alpha is never touched
        assert not np.array_equal(out[mask], image[mask])


def test_seam_blend_meets_the_known_pixels():
    known = np.full((40, 40, 3), 0.8, np.float32)
    pred = np.full((40, 40, 3), 0.2, np.float32)
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    out = blend_seam(known, pred, mask, feather=3)
    assert abs(out[10, 20, 0] - 0.8) < 0.25  # at the edge: close to the surroundings
    assert abs(out[20, 20, 0] - 0.2) < 0.05  # deep inside: the prediction
    assert np.array_equal(out[~mask], pred[~mask])  # outside is the caller's (compose keeps the original)


def test_cli_image_mask_file_and_report(model, tmp_path):
    src = write_chips(tmp_path / "in", 1)[0]
    mask = _write_mask(tmp_path / "mask.png", _band(64, 64))
    out, report = tmp_path / "out.png", tmp_path / "report.json"
    assert _vsr("restore", src, out, "--mask", mask, "--model", model, "--no-detect", "--report", report) == 0
    data = json.loads(report.read_text())
    assert data["ok"] == 1 and data["failed"] == 0
    (row,) = data["images"]
    assert row["status"] == "ok" and row["masked_pixels"] == int(_band(64, 64).sum())
    assert row["face"] == "whole image (--no-detect)"
    restored, original = read_image(out).pixels, read_image(src).pixels
    assert np.array_equal(restored[~_band(64, 64)], original[~_band(64, 64)])
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


def _file_variants(rgb8: np.ndarray) -> dict[str, np.ndarray]:
    """The pixels as OpenCV writes them to PNG (BGR order, or one channel), 8- and 16-bit, grey, alpha."""
    rng = np.random.default_rng(1)
    rgb16 = rgb8.astype(np.uint16) * 257 + rng.integers(0, 200, rgb8.shape).astype(np.uint16)
    alpha = rng.integers(0, 256, rgb8.shape[:2], dtype=np.uint8)
    return {
        "rgb8": rgb8[:, :, ::-1],
        "rgb16": rgb16[:, :, ::-1],
        "grey8": cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY),
        "grey16": cv2.cvtColor(rgb16, cv2.COLOR_RGB2GRAY),
        "rgba8": np.dstack([rgb8[:, :, ::-1], alpha]),
    }


def test_cli_files_keep_depth_grey_alpha_and_unmasked_pixels_bit_exact(model, tmp_path):
    band = _band(64, 64)
    mask = _write_mask(tmp_path / "mask.png", band)
    for name, stored in _file_variants(chip(5)).items():
        src, out = tmp_path / f"{name}.png", tmp_path / f"{name}_out.png"
        assert cv2.imwrite(str(src), stored)
        assert _vsr("restore", src, out, "--mask", mask, "--model", model, "--no-detect") == 0, name
        back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert back.dtype == stored.dtype and back.shape == stored.shape, name
        assert np.array_equal(back[~band], stored[~band]), name
        assert not np.array_equal(back[band], stored[band]), name
        if name == "rgba8":
            assert np.array_equal(back[..., 3], stored[..., 3])  # alpha is never touched


def test_cli_applies_exif_orientation_to_image_and_mask_alike(model, tmp_path):
    from PIL import Image

    image = cv2.resize(chip(6), (64, 48))
    band = _band(48, 64)
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers turn it 90 degrees clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(image, 1))).save(src, quality=95, exif=exif)
    upright = read_image(src).pixels
    assert upright.shape == (48, 64, 3)
    mask = _write_mask(tmp_path / "mask.png", band)  # drawn on the upright image
    out = tmp_path / "out.png"
    assert _vsr("restore", src, out, "--mask", mask, "--model", model, "--no-detect") == 0
    assert np.array_equal(read_image(out).pixels[~band], upright[~band])


def test_cli_mask_color_with_tolerance(model, tmp_path):
    image = chip(4)
    painted = image.copy()
    band = _band(64, 64)
    painted[band] = (250, 0, 250) + np.random.default_rng(0).integers(0, 4, (int(band.sum()), 3))
    src = tmp_path / "painted.png"
    cv2.imwrite(str(src), painted[:, :, ::-1])
    out = tmp_path / "out.png"
    args = ("restore", src, out, "--mask-color", "250,0,250", "--model", model, "--no-detect")
    assert _vsr(*args, "--tolerance", "3", "--report", tmp_path / "r.json") == 0
    assert json.loads((tmp_path / "r.json").read_text())["images"][0]["masked_pixels"] == int(band.sum())
    assert np.array_equal(read_image(out).pixels[~band], painted[~band])


def test_cli_folder_masks_named_like_images_and_partial_failure(model, tmp_path):
    images = write_chips(tmp_path / "in", 3)
    masks = tmp_path / "masks"
    masks.mkdir()
    for p in images:
        _write_mask(masks / p.name, _band(64, 64))
    _write_mask(masks / images[1].name, np.zeros((64, 64), bool))  # an empty mask: that image fails
    out = tmp_path / "out"
    assert _vsr("restore", tmp_path / "in", out, "--mask", masks, "--model", model, "--no-detect") == 3
    assert sorted(p.name for p in out.iterdir()) == [images[0].name, images[2].name]


def test_cli_folder_one_mask_for_all(model, tmp_path):
    write_chips(tmp_path / "in", 2)
    mask = _write_mask(tmp_path / "m.png", _band(64, 64))
    out = tmp_path / "out"
    assert _vsr("restore", tmp_path / "in", out, "--mask", mask, "--model", model, "--no-detect") == 0
    assert len(list(out.iterdir())) == 2


def test_bad_input_one_line_exit_1_nothing_written(model, tmp_path, capsys):
    src = write_chips(tmp_path / "in", 2)[0]
    (tmp_path / "notimage.png").write_text("hello")
    small = _write_mask(tmp_path / "small.png", _band(32, 32))
    empty = _write_mask(tmp_path / "empty.png", np.zeros((64, 64), bool))
    white = _write_mask(tmp_path / "white.png", np.ones((64, 64), bool))
    good = _write_mask(tmp_path / "good.png", _band(64, 64))
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    _write_mask(masks_dir / src.name, _band(64, 64))  # the second image has none
    out = tmp_path / "out.png"
    common = ("--model", model, "--no-detect")
    cases = [
        (("restore", src, out, "--mask", small), "is 32x32 but the image is 64x64"),
        (("restore", src, out, "--mask", empty), "marks no pixel"),
        (("restore", src, out, "--mask", white), "marks every pixel"),
        (("restore", tmp_path / "notimage.png", out, "--mask", good), "not an image"),
        (("restore", src, out, "--mask-color", "1,2,3"), "matches no pixel"),
        (("restore", tmp_path / "in", tmp_path / "outdir", "--mask", masks_dir), "no mask for 1 of 2 images"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert _vsr(*args, *common) == 1, message
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not (tmp_path / "outdir").exists()
    assert _vsr("restore", src, out, "--mask", good, "--mask-color", "1,2,3", *common) == 2
    assert _vsr("restore", src, out, "--mask-color", "1,2", *common) == 2
    assert not out.exists()


def test_library_refuses_mismatched_mask(model):
    restorer = Restorer(RestoreOptions(model=str(model), detect=False, device="cpu"))
    with pytest.raises(InputError, match="the mask is 10x10"):
        restorer.restore(chip(0), np.ones((10, 10), bool))


@pytest.mark.parametrize("scale", [2, 4])
def test_restore_then_upscale_gives_the_right_size(model, tmp_path, scale):
    src = write_chips(tmp_path / "in", 1, side=40)[0]
    mask = _write_mask(tmp_path / "mask.png", _band(40, 40))
    out = tmp_path / "big.png"
    args = ("restore", src, out, "--mask", mask, "--model", model, "--no-detect", "--scale", str(scale))
    assert _vsr(*args, "--report", tmp_path / "r.json") == 0
    assert read_image(out).pixels.shape == (40 * scale, 40 * scale, 3)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["sr_model"].startswith(f"face-x{scale}") and data["images"][0]["output_width"] == 40 * scale
