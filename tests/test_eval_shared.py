"""The protocol reproduces the published bicubic scores on Set5 (validates modcrop, LR, Y, shave, PSNR).

Published bicubic Y-PSNR on Set5 (e.g. Kim et al. 2016, VDSR; Lim et al. 2017, EDSR): x2 33.66 dB,
x4 28.42 dB.  Skips without ``../shared/data``.
"""

from __future__ import annotations

import pytest

from vsr.pipelines.evaluate import evaluate_images

pytestmark = pytest.mark.needs_shared


@pytest.mark.parametrize(
    ("scale", "published_psnr", "published_ssim"), [(2, 33.66, 0.9299), (4, 28.42, 0.8104)]
)
def test_set5_bicubic_matches_published(
    shared_data, scale: int, published_psnr: float, published_ssim: float
) -> None:
    report = evaluate_images(shared_data / "sr-bench" / "Set5", scale, model="bicubic", device="cpu")
    scores = report.methods["model"].mean
    assert report.n == 5
    assert scores.psnr_y == pytest.approx(published_psnr, abs=0.1)
    assert scores.ssim_y == pytest.approx(published_ssim, abs=0.003)
    lanczos = report.methods["lanczos"].mean
    assert lanczos.psnr_y > scores.psnr_y  # the sharper kernel wins on these images
