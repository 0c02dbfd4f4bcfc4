"""The protocol's steps: modcrop, MATLAB bicubic downsampling, scoring, the JSON form, the real degradation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from vsr.models.resample import resize
from vsr.pipelines.evaluate.protocol import bicubic_downscale, check_size, modcrop, score
from vsr.pipelines.evaluate.results import EvalReport, MethodResult

# imresize(x, 1/2) along a 4-pixel axis, worked by hand: the antialiased kernel is h(d) = cubic(d/2)/2
# (Keys, a = -0.5); output 1 sits at input coordinate 1.5 and reads d = +-0.5, +-1.5, +-2.5, +-3.5 with
# weights 0.43359375, 0.11328125, -0.03515625, -0.01171875; indices outside [1, 4] mirror
# (x0 = x1, x-1 = x2, x-2 = x3, x5 = x4), which folds them into these four weights.
W_4_TO_2 = np.array(
    [
        [0.546875, 0.3984375, 0.1015625, -0.046875],
        [-0.046875, 0.1015625, 0.3984375, 0.546875],
    ]
)


def test_modcrop_crops_bottom_right_to_a_multiple() -> None:
    image = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    out = modcrop(image, 4)
    assert out.shape == (4, 8, 3)
    assert (out == image[:4, :8]).all()


@pytest.mark.parametrize("scale", [2, 4])
def test_downscaling_a_constant_image_keeps_it_constant(scale: int) -> None:
    hr = np.full((24, 32, 3), 137, np.uint8)
    lr = bicubic_downscale(hr, scale)
    assert lr.shape == (24 // scale, 32 // scale, 3) and lr.dtype == np.uint8
    assert (lr == 137).all()


def test_downscaling_4_to_2_matches_hand_computed_weights() -> None:
    assert W_4_TO_2.sum(axis=1) == pytest.approx([1.0, 1.0])
    row = np.array([0.0, 100.0, 200.0, 250.0])
    # One axis: [0.546875*0 + 0.3984375*100 + 0.1015625*200 - 0.046875*250, ...] = [48.4375, 226.5625].
    np.testing.assert_allclose(W_4_TO_2 @ row, [48.4375, 226.5625])
    hr = np.repeat(np.tile(row, (4, 1))[..., None], 3, axis=2).astype(np.uint8)
    assert bicubic_downscale(hr, 2)[..., 0].tolist() == [[48, 227], [48, 227]]
    # Both axes, separable: W A W^T, in float (the weights are exact binary fractions).
    a = np.random.default_rng(7).integers(0, 256, (4, 4)).astype(np.float64)
    got = resize(torch.from_numpy(a), (2, 2), kernel="cubic", antialias=True).numpy()
    np.testing.assert_allclose(got, W_4_TO_2 @ a @ W_4_TO_2.T, atol=1e-9)
    lr = bicubic_downscale(np.repeat(a.astype(np.uint8)[..., None], 3, axis=2), 2)[..., 0]
    assert lr.tolist() == np.floor(np.clip(W_4_TO_2 @ a @ W_4_TO_2.T, 0, 255) + 0.5).astype(int).tolist()


def test_score_of_identical_images_and_of_a_grey_source() -> None:
    hr = np.random.default_rng(3).integers(0, 255, (20, 20, 1), dtype=np.uint8).repeat(3, axis=2)
    same = score(hr, hr.copy(), 2)
    assert math.isinf(same.psnr_y) and math.isinf(same.psnr_rgb)
    assert same.ssim_y == pytest.approx(1.0) and same.ssim_rgb == pytest.approx(1.0)
    brighter = hr + 1
    # Colour convention: a one-level RGB change moves Y by 219/255 of a level.
    assert score(brighter, hr, 2).psnr_y == pytest.approx(20 * math.log10(255 / (219 / 255)))
    # Greyscale source files: Y is the grey level itself, as the MATLAB benchmark scripts do.
    assert score(brighter, hr, 2, grey=True).psnr_y == pytest.approx(20 * math.log10(255))


def test_check_size_names_the_image_and_the_minimum() -> None:
    from vsr.errors import InputError

    check_size(np.zeros((19, 19, 3)), 4, "ok.png")
    with pytest.raises(InputError, match=r"tiny\.png is 18x19 .*needs at least 19x19"):
        check_size(np.zeros((19, 18, 3)), 4, "tiny.png")


def test_report_json_is_strict_even_with_infinite_psnr() -> None:
    hr = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    methods = {m: MethodResult(m, items=[score(hr, hr, 2)]) for m in ("model", "bicubic", "lanczos")}
    report = EvalReport(
        kind="images",
        source="x",
        model="bicubic",
        scale=2,
        device="cpu",
        precision="fp32",
        protocol={},
        names=["a.png"],
        methods=methods,
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["psnr_y"] is None and data["psnr_rgb"] is None  # infinite -> null
    assert data["ssim_y"] == pytest.approx(1.0)
    assert data["baselines"]["lanczos"]["psnr_y"] is None
    assert data["per_image"]["model"]["psnr_y"] == [None]


def test_real_degradation_is_seeded_and_per_image() -> None:
    from vsr.pipelines.evaluate.degrade import degrade_real

    hr = np.random.default_rng(9).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    first = degrade_real(hr, 2, seed=0, index=3)
    assert first.shape == (24, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, degrade_real(hr, 2, seed=0, index=3))
    assert not np.array_equal(first, degrade_real(hr, 2, seed=0, index=4))
    # Degraded, not destroyed: close to the plain bicubic LR.
    assert np.abs(first.astype(float) - bicubic_downscale(hr, 2)).mean() < 40
