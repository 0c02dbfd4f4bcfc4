"""The shipped restore-face model: verified weights, a card with the measured results, and (with ../shared)
better than OpenCV inside the mask on faces/val."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from restore_fixtures import chip
from train_fixtures import SHARED_DATA

from vsr.models.registry import CARDS_DIR, REGISTRY, WEIGHTS_DIR, describe_model, load_model_from

RESTORE = sorted(n for n, s in REGISTRY.items() if s.task == "restore")

NEEDS_LANDMARKS = pytest.mark.skipif(
    importlib.util.find_spec("yuface") is None,
    reason="needs yuface, the landmark detector (no wheel for this Python): eye bands then fall back to the "
    "aligned-chip position, which these measurements do not describe",
)


def test_restore_face_is_registered_with_verified_weights_and_card():
    assert "restore-face" in RESTORE
    spec = REGISTRY["restore-face"]
    path = WEIGHTS_DIR / spec.weights.file
    assert path.stat().st_size < 4 * 1024 * 1024
    loaded = load_model_from("restore-face", 1)
    assert loaded.sha256 == spec.weights.sha256
    card = json.loads((CARDS_DIR / "restore-face.json").read_text())
    assert card["sha256"] == spec.weights.sha256
    assert (CARDS_DIR / "restore-face.md").read_text().count(spec.weights.sha256) == 1
    assert "non-commercial" in spec.weights.licence
    metrics = describe_model(spec)["metrics"]
    for kind in ("eyes", "half", "mouth", "random"):
        assert metrics[kind]["psnr_masked"] == card["results"][kind]["psnr_masked"]
        assert set(metrics[kind]["telea"]) == {"psnr_masked", "ssim_masked", "psnr", "ssim"}


def test_restore_face_restores_a_chip():
    from vsr.pipelines.restore.run import RestoreOptions, Restorer

    restorer = Restorer(RestoreOptions(detect=False, device="cpu"))
    image = chip(0)
    mask = np.zeros((64, 64), bool)
    mask[15:26, 10:54] = True
    out = restorer.restore(image, mask)
    assert np.array_equal(out[~mask], image[~mask])
    # a trained model continues the skin around the band rather than painting noise
    assert np.abs(out[mask].astype(float) - image[mask].astype(float)).mean() < 60


@NEEDS_LANDMARKS
@pytest.mark.skipif(not (SHARED_DATA / "faces" / "val").is_dir(), reason="needs ../shared/data/faces/val")
def test_beats_opencv_inside_the_mask_on_faces_val():
    from vsr.pipelines.restore.evaluate import evaluate_restore

    # Measured on these 24 images: eyes +3.22 dB, half +1.92 dB (on all 500: +3.75, +2.49; see the card).
    for kind, margin in (("eyes", 2.5), ("half", 1.5)):
        r = evaluate_restore(SHARED_DATA / "faces" / "val", kind, limit=24, device="cpu")
        best = max(b.psnr_masked for b in r.baselines.values())
        assert r.psnr_masked > best + margin, (kind, r.psnr_masked, best)
