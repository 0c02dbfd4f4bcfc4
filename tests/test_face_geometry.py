"""Face crop and paste-back geometry: reflection crops, identity round trip, seamless feathering, colour match."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsr.models.resample import Interpolation
from vsr.pipelines.face.geometry import (
    FEATHER,
    FaceBox,
    crop_square,
    crop_window,
    face_box_from_eyes,
    feather_mask,
    match_low_frequencies,
    paste_back,
)

RNG = np.random.default_rng(0)


def _bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    return Interpolation(scale, "cubic")(x)[0].permute(1, 2, 0).numpy()


def test_face_box_from_eyes_signature_kept():
    box = face_box_from_eyes((10.0, 20.0), (30.0, 20.0))
    assert box.cx == 20 and box.side == pytest.approx(72) and box.cy > 20


@pytest.mark.parametrize("x0,y0", [(5, 6), (-7, -3), (40, 25), (-20, 30)])
def test_crop_square_reflects_like_numpy_symmetric_pad(x0, y0):
    image = RNG.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    side = 24
    pad = 40
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    crop = crop_square(image, x0, y0, side)
    assert crop.shape == (side, side, 3)
    np.testing.assert_array_equal(crop, padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side])


def test_crop_window_is_square_centred_and_batchable():
    box = FaceBox(cx=50.3, cy=40.8, side=21.0)
    win = crop_window(box, margin=0.3, pad=4, multiple=4)
    assert win.side % 4 == 0 and win.side >= 21 * 1.6 + 8
    ix, iy, iside = win.inner
    assert iside == win.side - 8
    assert abs(ix + iside / 2 - box.cx) <= 0.5 and abs(iy + iside / 2 - box.cy) <= 0.5


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("centre", [(30.0, 26.0), (4.0, 3.0), (58.0, 44.0)])
def test_identity_model_crop_upscale_trim_equals_frame_upscale(scale, centre):
    """Upscaling a padded crop and trimming the context gives exactly the frame's upscale there, borders too."""
    image = RNG.random((48, 64, 3)).astype(np.float32)
    frame_hr = _bicubic(image, scale)
    win = crop_window(FaceBox(cx=centre[0], cy=centre[1], side=14.0), pad=4)
    crop_hr = _bicubic(crop_square(image, win.x0, win.y0, win.side), scale)
    x0, y0, side = win.inner
    trim = win.pad * scale
    inner = crop_hr[trim:-trim, trim:-trim]
    np.testing.assert_allclose(inner, crop_square(frame_hr, x0 * scale, y0 * scale, side * scale), atol=1e-4)


def test_paste_identity_keeps_background():
    background = RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    canvas = background.copy()
    face = background[10:42, 20:52].copy()
    paste_back(canvas, match_low_frequencies(face, face, sigma=3.0), 20, 10, feather_mask(32, 20.0))
    np.testing.assert_array_equal(canvas, background)


def test_paste_clips_at_the_canvas_border_and_keeps_dtype():
    canvas = np.full((40, 40, 3), 1000, dtype=np.uint16)
    face = np.full((30, 30, 3), 3000.0, dtype=np.float32)
    paste_back(canvas, face, -10, 25, np.ones((30, 30), np.float32))
    assert canvas.dtype == np.uint16
    assert (
        (canvas[25:, :20] == 3000).all() and (canvas[:25] == 1000).all() and (canvas[25:, 20:] == 1000).all()
    )


def test_feather_has_no_seam_and_ramps_with_face_size():
    """Pasting a very different face over a flat background: no step, the slope is bounded by the ramp."""
    side, face_side, offset = 128, 80.0, 60.0
    canvas = np.full((side, side, 3), 100, dtype=np.uint8)
    face = np.full((side, side, 3), 100 + offset, dtype=np.float32)
    mask = feather_mask(side, face_side)
    paste_back(canvas, face, 0, 0, mask)
    out = canvas[..., 0].astype(np.float32)
    ramp_px = FEATHER * face_side  # the raised cosine spans this many pixels along an axis
    max_slope = offset * np.pi / (2 * ramp_px) + 1.5  # + rounding
    for line in (out[side // 2], out[:, side // 2], np.diagonal(out)):
        assert np.abs(np.diff(line)).max() <= max_slope
    assert out[side // 2, side // 2] == 160 and out[0, 0] == 100  # full face inside, untouched outside
    # The soft edge grows with the face.
    widths = []
    for fs in (40.0, 80.0):
        row = feather_mask(2 * int(fs), fs)[int(fs)]
        widths.append(int(((row > 0.01) & (row < 0.99)).sum()))
    assert widths[1] >= 1.8 * widths[0]
    assert mask[0].max() == 0 and mask[:, 0].max() == 0  # zero at the crop edge


def test_low_frequency_match_removes_colour_cast_keeps_detail():
    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([60 + yy, 80 + xx, np.full((h, w), 120)], axis=-1).astype(np.float32)
    detail = 10 * ((xx + yy) % 2 * 2 - 1)[..., None]
    face = background + np.array([25.0, -15.0, 30.0]) + detail  # colour cast + fine detail
    out = match_low_frequencies(face, background, sigma=6.0)
    inner = (slice(16, 48), slice(16, 48))
    cast = (out - background)[inner].mean(axis=(0, 1))
    assert np.abs(cast).max() < 1.0
    kept = (out - background)[inner]
    assert np.corrcoef(kept[..., 0].ravel(), detail[inner][..., 0].ravel())[0, 1] > 0.95
