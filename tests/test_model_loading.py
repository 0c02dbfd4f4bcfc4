"""The loading policy without spandrel: tensors only, nesting unwrapped, our files on the registry path,
clear lines for refused pickles, empty files and a missing zoo extra; what Upscaler honours of a model
(size multiples and minimum, precision support, tileability); aligned face restoration geometry."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from vsr.cli import main
from vsr.errors import ModelError, WeightsError
from vsr.models.loading import read_weights
from vsr.models.registry import load_model_from
from vsr.models.srresnet import SRResNet
from vsr.models.weights import write_safetensors
from vsr.pipelines.upscale import Upscaler, pad_to_requirements

CPU = torch.device("cpu")
ARCH = {"arch": "srresnet", "scale": 4, "blocks": 1, "channels": 8, "batch_norm": False}


class Pickled:
    """Not a tensor: a file holding one of these needs a full unpickle, which vsr refuses."""


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_a_pth_with_a_pickled_object_is_refused_without_running_it(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"params": {"conv.weight": torch.zeros(1)}, "extra": Pickled()}, path)
    with pytest.raises(WeightsError, match=r"refused: .*pickled Python objects other than tensors.*Pickled"):
        load_model_from(str(path), 4)
    code, _, err = run_cli(capsys, "models", "--inspect", str(path))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "weights_only" in err


def test_nesting_is_unwrapped_preferring_ema_and_shared_prefixes_are_dropped(tmp_path):
    ema, raw = {"module.a.weight": torch.ones(2)}, {"module.a.weight": torch.zeros(2)}
    path = tmp_path / "basicsr.pth"
    torch.save({"params": raw, "params_ema": ema, "iter": 5}, path)
    weights = read_weights(path)
    assert not weights.ours and list(weights.state) == ["a.weight"]
    assert torch.equal(weights.state["a.weight"], torch.ones(2))  # the EMA weights, not the raw ones
    assert "params, params_ema, iter" in weights.found and "2 tensors" in weights.found
    torch.save({"state_dict": {"netG.b": torch.ones(1), "netG.c": torch.ones(1)}}, path)
    assert sorted(read_weights(path).state) == ["b", "c"]


def test_our_files_keep_the_registry_path_and_the_scale_comes_from_them(tmp_path):
    torch.manual_seed(0)
    net = SRResNet(4, 1, 8, batch_norm=False)
    st = tmp_path / "own.safetensors"
    write_safetensors(net.state_dict(), ARCH, st, half=False)
    ckpt = tmp_path / "run.ckpt"
    torch.save({"arch": ARCH, "params": net.state_dict(), "step": 3}, ckpt)
    x = torch.rand(1, 3, 6, 7)
    for path in (st, ckpt):
        assert read_weights(path).ours
        loaded = load_model_from(str(path), None)  # no spandrel involved: this runs in the main venv
        assert loaded.scale == 4 and loaded.arch == "srresnet" and not loaded.generative_face_restorer
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(x), net.eval()(x))


def test_inspect_describes_our_own_file(tmp_path, capsys):
    path = tmp_path / "own.safetensors"
    write_safetensors(SRResNet(4, 1, 8, batch_norm=False).state_dict(), ARCH, path, half=False)
    code, out, err = run_cli(capsys, "models", "--inspect", str(path))
    assert code in (0, None), err
    assert "srresnet (loaded by vsr)" in out and "x4" in out and "unknown: check the source" in out


def test_a_file_without_tensors_gets_one_line_naming_what_was_found(tmp_path):
    path = tmp_path / "notes.pth"
    torch.save({"step": 3, "lr": 0.1}, path)
    with pytest.raises(
        WeightsError, match=r"no tensors found \(top-level keys step, lr; 0 tensors\); supported:"
    ):
        load_model_from(str(path), 2)


def test_without_spandrel_a_third_party_file_says_how_to_install_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(8, 3, 3, 3)}}, path)
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import fails as if it were not installed
    with pytest.raises(
        ModelError,
        match=r"RealESRGAN_x4plus.pth is not one of vsr.s own models; .*need the zoo extra \(spandrel\).*pip install 'vsr-faces\[zoo\]'",
    ):
        load_model_from(str(path), 4)


def test_a_torchvision_that_does_not_match_torch_is_named(tmp_path, monkeypatch):
    class BrokenTorchvision:
        def find_spec(self, name, path=None, target=None):
            if name == "spandrel":
                raise RuntimeError("operator torchvision::nms does not exist")
            return None

    path = tmp_path / "m.safetensors"
    from safetensors.torch import save_file

    save_file({"conv.weight": torch.zeros(1, 1, 1, 1)}, str(path))
    monkeypatch.delitem(sys.modules, "spandrel", raising=False)
    monkeypatch.setattr(sys, "meta_path", [BrokenTorchvision(), *sys.meta_path])
    with pytest.raises(ModelError, match=r"torchvision does not match torch .*torchvision::nms"):
        load_model_from(str(path), 4)


# -- what Upscaler honours ------------------------------------------------------------------------------------


class NeedsMultiple(torch.nn.Module):
    """Nearest x2 with a 3x3 blur that refuses inputs not a multiple of 8 or below 24 px (like windowed models)."""

    size_multiple = 8
    size_minimum = 24
    receptive_radius = 1

    def __init__(self) -> None:
        super().__init__()
        self.blur = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect", bias=False)
        torch.nn.init.constant_(self.blur.weight, 1 / 27)

    def forward(self, x):
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0 and min(x.shape[-2:]) >= 24, x.shape
        return torch.nn.functional.interpolate(self.blur(x), scale_factor=2, mode="nearest")


def test_size_requirements_are_met_by_padding_and_cropping_back_also_when_tiled():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    whole = Upscaler(NeedsMultiple(), 2, CPU)([frame])[0]
    assert whole.shape == (74, 106, 3)
    tiled = Upscaler(NeedsMultiple(), 2, CPU, tile=16)
    out = tiled([frame])[0]
    assert tiled.tile == 16 and tiled.overlap == 8 and tiled.stats.tiled_frames == 1
    # tiles start on multiples of 8 and the last one is padded as the whole frame is: identical
    assert np.array_equal(out, whole)


def test_pad_to_requirements_reflects_then_replicates():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    y = pad_to_requirements(x, multiple=4, minimum=6)
    assert y.shape == (1, 1, 8, 8)
    assert y[0, 0, 0].tolist() == [0, 1, 2, 1, 0, 0, 0, 0]  # reflect (abc|ba), then the edge repeated


def test_unsupported_precision_falls_back_to_fp32_with_a_warning():
    module = NeedsMultiple()
    module.supports_bf16 = False
    module.arch = "Windowed"
    up = Upscaler(module, 2, CPU, precision="bf16")
    assert (
        up.precision == "fp32" and "Windowed does not support bf16: running it in fp32" in up.stats.warnings
    )
    assert Upscaler(NeedsMultiple(), 2, CPU, precision="bf16").precision == "bf16"


def test_a_model_that_must_see_whole_inputs_is_never_tiled():
    module = NeedsMultiple()
    module.tileable = False
    up = Upscaler(module, 2, CPU, tile=16)
    assert up.tile == 0 and any("--tile 16 ignored" in w for w in up.stats.warnings)
    up([np.zeros((40, 40, 3), np.uint8)])
    assert up.stats.tiled_frames == 0


# -- aligned face restoration ---------------------------------------------------------------------------------


def _face_crop(side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A smooth crop with five landmark blobs; returns (crop, landmarks in crop coordinates)."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    crop = np.stack([100 + 40 * np.sin(x / 9), 120 + 30 * np.cos(y / 7), 90 + 0 * x], -1)
    points = np.float32([[24, 28], [40, 28.5], [32, 37], [26, 44], [38, 44]])
    for px, py in points:
        crop[(x - px) ** 2 + (y - py) ** 2 <= 2.5] = 255
    return np.clip(crop, 0, 255).astype(np.uint8), points


def test_alignment_puts_the_landmarks_on_the_template_and_warps_back_in_place():
    from vsr.pipelines.face.align import FFHQ_TEMPLATE_512, FaceRestorer

    crop, points = _face_crop()
    seen: list[np.ndarray] = []

    def identity(images):
        seen.extend(images)
        return images

    restorer = FaceRestorer(identity, "identity", size=512)
    ((face, coverage),) = restorer.restore([crop], [points], scale=4)
    aligned = seen[0]
    assert aligned.shape == (512, 512, 3)
    for tx, ty in FFHQ_TEMPLATE_512:  # each landmark blob lands on its template point
        assert aligned[int(ty), int(tx)].min() > 200
    assert face.shape == (256, 256, 3) and coverage.shape == (256, 256)
    # warped back: the blobs are where the crop had them, at 4x
    for px, py in points:
        assert face[int(py * 4 + 1.5), int(px * 4 + 1.5)].min() > 200
    import cv2

    reference = cv2.resize(crop, (256, 256), interpolation=cv2.INTER_CUBIC).astype(int)
    inside = coverage > 0.99
    assert inside.mean() > 0.2 and (coverage == 0).any()  # the template covers the face, not the whole crop
    assert np.median(np.abs(face.astype(int) - reference)[inside]) <= 3


def test_similarity_transform_recovers_a_known_one_and_refuses_degenerate_points():
    from vsr.pipelines.face.align import FFHQ_TEMPLATE_512, similarity_transform

    angle, k, shift = 0.3, 0.4, np.array([12.0, -7.5])
    rot = k * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = FFHQ_TEMPLATE_512.astype(np.float64)
    dst = src @ rot.T + shift
    np.testing.assert_allclose(similarity_transform(src, dst), np.hstack([rot, shift[:, None]]), atol=1e-9)
    np.testing.assert_allclose(similarity_transform(src[:2], dst[:2]) @ [*src[0], 1], dst[0], atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.ones((5, 2)), dst)


def test_face_box_eyes_stand_in_for_missing_landmarks():
    from vsr.pipelines.face.align import crop_landmarks
    from vsr.pipelines.face.geometry import face_box_from_eyes

    box = face_box_from_eyes((30.0, 40.0), (50.0, 40.0))
    eyes = crop_landmarks(None, box, 10, 20)
    np.testing.assert_allclose(eyes, [[20, 20], [40, 20]], atol=1e-4)
