"""`vsr eval restore`: masked metrics against hand-computed values, the protocol's baselines, JSON keys, grid."""

from __future__ import annotations

import importlib.util
import json
import math

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from restore_fixtures import tiny_model, write_chips

from vsr.pipelines import metrics
from vsr.pipelines.restore import evaluate as ev
from vsr.pipelines.restore.measure import measure

NEEDS_LANDMARKS = pytest.mark.skipif(
    importlib.util.find_spec("yuface") is None,
    reason="needs yuface, the landmark detector (no wheel for this Python): eye bands then fall back to the "
    "aligned-chip position, which these measurements do not describe",
)


def test_masked_metrics_by_hand():
    a = np.zeros((32, 32, 3), np.uint8)
    b = a.copy()
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    b[mask] = 10  # error 10 on every masked pixel and channel: MSE 100 inside, 100 * 1/4 overall
    scores = measure(b, a, mask)
    assert scores["psnr_masked"] == pytest.approx(10 * math.log10(255**2 / 100))  # 28.13 dB
    assert scores["psnr"] == pytest.approx(10 * math.log10(255**2 / 25))
    assert scores["ssim_masked"] < scores["ssim"] < 1  # the damage is all inside the mask
    assert metrics.masked_ssim(a, a, mask) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="selects no pixel"):
        metrics.masked_psnr(a, b, np.zeros((32, 32), bool))


@NEEDS_LANDMARKS
def test_eval_against_a_known_restorer_and_the_opencv_baselines(tmp_path, monkeypatch):
    """A stand-in restorer that returns the original plus 10 inside the mask: 28.13 dB there, exactly;
    the baselines are OpenCV's on the same seeded occlusion, recomputed here."""
    from vsr.pipelines.restore import run
    from vsr.pipelines.restore.occlusion import occlude
    from vsr.pipelines.restore.task import to_chip
    from vsr.pipelines.train.data import read_rgb

    data = tmp_path / "faces"
    (path,) = write_chips(data, 1)
    truth = to_chip(read_rgb(path), 64)

    def fake_restore(self, image, mask, result=None):
        out = truth.copy()
        out[mask] = truth[mask] + 10
        return out

    assert (truth <= 245).all()
    monkeypatch.setattr(run.Restorer, "restore", fake_restore)
    grid = tmp_path / "grid.png"
    model = tiny_model(tmp_path / "tiny.safetensors")
    report = ev.evaluate_restore(data, "eyes", model=str(model), grid=grid, device="cpu")
    assert report.images == 1 and report.kinds == {"eyes": 1} and report.placed == {"landmarks": 1}
    assert report.psnr_masked == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-4)

    rng = np.random.default_rng([0, 0])
    rng.integers(1)  # the kind draw
    occ = occlude(truth, "eyes", rng, _landmarks(truth))
    for name, flag in (("telea", cv2.INPAINT_TELEA), ("ns", cv2.INPAINT_NS)):
        expected = measure(cv2.inpaint(occ.image, occ.mask.astype(np.uint8), 3, flag), truth, occ.mask)
        got = report.baselines[name]
        assert got.psnr_masked == pytest.approx(expected["psnr_masked"], abs=1e-4)
        assert got.ssim_masked == pytest.approx(expected["ssim_masked"], abs=1e-4)
    img = cv2.imread(str(grid))
    assert img.shape[:2] == (18 + 128, 5 * 128 + 4 * 3)


def _landmarks(chip):
    from vsr.pipelines.face.detect import make_detector
    from vsr.pipelines.restore.occlusion import detect_landmarks

    return detect_landmarks(make_detector("auto", upsample=1), chip)


def test_cli_json_keys_exactly(tmp_path):
    from vsr.cli.evaluate import evaluate

    data = tmp_path / "faces"
    write_chips(data, 2)
    model = tiny_model(tmp_path / "tiny.safetensors")
    result = CliRunner().invoke(
        evaluate,
        ["restore", str(data), "--occlusion", "half", "--model", str(model), "--json", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for key in ("psnr_masked", "ssim_masked", "psnr", "ssim", "images"):
        assert key in out
    assert set(out["baselines"]) == {"telea", "ns"}
    for scores in out["baselines"].values():
        assert set(scores) == {"psnr_masked", "ssim_masked", "psnr", "ssim"}
    assert out["images"] == 2 and out["kinds"] == {"half": 2}
    bad = CliRunner().invoke(evaluate, ["restore", str(data), "--occlusion", "ears"])
    assert bad.exit_code == 2
