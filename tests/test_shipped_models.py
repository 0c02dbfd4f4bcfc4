"""The weights shipped in the package: verified, the right size, refused when tampered with, documented."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vsr.errors import WeightsError
from vsr.models import registry
from vsr.models.registry import REGISTRY, WEIGHTS_DIR, load_model_from
from vsr.pipelines.upscale import Upscaler

# Super-resolution models (restore models have their own checks in test_restore_shipped.py).
SHIPPED = sorted(name for name, spec in REGISTRY.items() if spec.weights is not None and spec.task == "sr")


def test_the_trained_models_are_registered():
    for kind in ("face", "general"):
        for scale in (2, 4):
            assert {f"{kind}-x{scale}", f"{kind}-x{scale}-psnr"} <= set(SHIPPED)
    for scale in (2, 4):
        assert registry.DEFAULT_MODEL[scale] in SHIPPED  # each scale defaults to a trained general model


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_verified_and_upscales(name):
    spec = REGISTRY[name]
    path = WEIGHTS_DIR / spec.weights.file
    assert path.stat().st_size < 16 * 1024 * 1024
    loaded = load_model_from(name, spec.scale)
    assert loaded.sha256 == spec.weights.sha256
    frame = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    out = Upscaler(loaded.module, spec.scale, torch.device("cpu"))([frame])[0]
    assert out.shape == (20 * spec.scale, 28 * spec.scale, 3)
    # a trained model is close to interpolation on smooth content, not noise
    smooth = np.tile(np.linspace(0, 255, 28, dtype=np.uint8)[None, :, None], (20, 1, 3))
    up = Upscaler(loaded.module, spec.scale, torch.device("cpu"))([smooth])[0].astype(float)
    ref = np.tile(np.linspace(0, 255, 28 * spec.scale)[None, :, None], (20 * spec.scale, 1, 3))
    assert np.abs(up - ref)[:, 8:-8].mean() < 8


@pytest.mark.parametrize("name", SHIPPED[:1])
def test_tampered_shipped_file_is_refused(name, tmp_path, monkeypatch):
    spec = REGISTRY[name]
    copy = tmp_path / spec.weights.file
    shutil.copy(WEIGHTS_DIR / spec.weights.file, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_model_from(name, spec.scale)


def test_models_json_lists_the_cards_metrics():
    from click.testing import CliRunner

    from vsr.cli import cli

    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    for name in SHIPPED:
        card = json.loads((registry.CARDS_DIR / f"{name}.json").read_text())
        assert card["sha256"] == rows[name]["sha256"]
        metrics = rows[name]["metrics"]
        assert metrics, name
        for key, res in card["results"].items():
            assert metrics[key]["psnr_y"] == res["psnr_y"]
            assert metrics[key]["bicubic"]["psnr_y"] == res["baselines"]["bicubic"]["psnr_y"]
        assert (registry.CARDS_DIR / f"{name}.md").read_text().count(card["sha256"]) == 1


def _card(name: str) -> dict:
    return json.loads((registry.CARDS_DIR / f"{name}.json").read_text())["results"]


@pytest.mark.parametrize("scale", [2, 4])
def test_default_models_follow_the_measurements(scale):
    """The default is the general model of the scale: the GAN one unless it flickers clearly more (>10 %)
    than the PSNR one on the shared clips, and only models above bicubic on Set5 and Set14 (Y PSNR) qualify.
    The numbers come from the cards, which ``benchmarks/release_models.py`` wrote from ``vsr eval`` runs."""
    gan, psnr = f"general-x{scale}", f"general-x{scale}-psnr"
    default = registry.DEFAULT_MODEL[scale]

    def beats_bicubic(name):
        res = _card(name)
        return all(res[b]["psnr_y"] > res[b]["baselines"]["bicubic"]["psnr_y"] for b in ("Set5", "Set14"))

    def flicker(name):
        res = _card(name)
        return np.mean([r["flicker"] for k, r in res.items() if k.startswith("video:")])

    good = [n for n in (gan, psnr) if n in SHIPPED and beats_bicubic(n)]
    if not good:
        assert default == "lanczos"
    elif len(good) == 1:
        assert default == good[0]
    else:
        assert default == (gan if flicker(gan) <= 1.1 * flicker(psnr) else psnr)


@pytest.mark.parametrize("scale", [2, 4])
def test_default_face_model_is_the_most_faithful_and_beats_the_background_on_faces(scale):
    """Face mode swaps in the face model with the highest faces/val RGB PSNR (identity first: a face is
    not a place to invent detail), and only when it beats both Lanczos and, by more than 0.1 dB, the
    general model that would otherwise upscale the faces; else auto mode stays in frame mode."""
    default = registry.DEFAULT_FACE_MODEL.get(scale)
    shipped = [n for n in (f"face-x{scale}", f"face-x{scale}-psnr") if n in SHIPPED]

    def faces(name):
        return _card(name)["faces_val"]["psnr_rgb"]

    best = max(shipped, key=faces)
    lanczos = _card(best)["faces_val"]["baselines"]["lanczos"]["psnr_rgb"]
    helps = faces(best) > lanczos and faces(best) - faces(registry.DEFAULT_MODEL[scale]) > 0.1
    assert default == (best if helps else None)
