"""Third-party weights through spandrel (the ``zoo`` extra): tiny Real-ESRGAN (RRDBNet), SRVGGNetCompact,
SwinIR and RestoreFormer built with spandrel's own architecture classes and random weights, saved as
``.pth`` and ``.safetensors``, run through ``vsr enhance`` (frame and face mode), tiled and untiled,
``vsr eval`` and ``vsr models --inspect``; GFPGAN at its real shape (slow).

Needs spandrel with a torchvision that matches torch, which the main (CPU torch) venv does not have:
these tests skip there and run with ``make zoo-test`` (a second venv; ``VSR_REQUIRE_ZOO=1`` turns the
skip into a failure so CI cannot pass them silently).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    import spandrel
except (ImportError, RuntimeError) as exc:  # RuntimeError: torchvision built for another torch
    if os.environ.get("VSR_REQUIRE_ZOO"):
        raise
    pytest.skip(
        f"needs the zoo extra (spandrel + a matching torchvision), not importable here ({type(exc).__name__}); "
        "run `make zoo-test`",
        allow_module_level=True,
    )

from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.RestoreFormer import RestoreFormer
from spandrel.architectures.SwinIR import SwinIR

from vsr.cli import main
from vsr.models.registry import load_model_from
from vsr.pipelines.face.detect import Detection
from vsr.pipelines.upscale import Upscaler

CPU = torch.device("cpu")


def _real_esrgan_names(state: dict[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    """spandrel's ESRGAN keys (``model.1.sub.0.RDB1.conv1.0``) -> Real-ESRGAN's RRDBNet keys (``body.0.rdb1.conv1``)."""
    tail = iter(("conv_up1", "conv_up2", "conv_hr", "conv_last"))
    renamed, seen = {}, {}
    for key, value in state.items():
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key):
            new = f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
        elif key.startswith(f"model.1.sub.{blocks}."):
            new = "conv_body." + key.rsplit(".", 1)[1]
        elif key.startswith("model.0."):
            new = "conv_first." + key.rsplit(".", 1)[1]
        else:
            layer = key.split(".")[1]
            if layer not in seen:
                seen[layer] = next(tail)
            new = f"{seen[layer]}.{key.rsplit('.', 1)[1]}"
        renamed[new] = value.contiguous()
    return renamed


def _save_pth(path: Path, state: dict, nest: str | None = "params_ema") -> Path:
    torch.save({nest: state} if nest else state, path)
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, Path]:
    """Tiny random-weight models of each family, as their owners publish them."""
    root = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    rrdb = _real_esrgan_names(ESRGAN(num_filters=8, num_blocks=1, scale=4).state_dict(), blocks=1)
    compact = {k: v.contiguous() for k, v in Compact(num_feat=8, num_conv=2, upscale=2).state_dict().items()}
    swinir = SwinIR(
        img_size=16,
        embed_dim=12,
        depths=[2],
        num_heads=[2],
        window_size=4,
        upscale=2,
        upsampler="pixelshuffledirect",
    ).state_dict()
    restoreformer = RestoreFormer(
        n_embed=16, embed_dim=8, ch=32, ch_mult=(1,) * 6, num_res_blocks=1, z_channels=8
    ).state_dict()
    save_file(rrdb, str(root / "RealESRGAN_x4_tiny.safetensors"))
    save_file(compact, str(root / "compact_x2.safetensors"))
    return {
        "rrdb_pth": _save_pth(root / "RealESRGAN_x4_tiny.pth", rrdb),
        "rrdb_st": root / "RealESRGAN_x4_tiny.safetensors",
        "compact": root / "compact_x2.safetensors",
        "swinir": _save_pth(root / "swinir_x2.pth", swinir, nest="params"),
        "restoreformer": _save_pth(root / "restoreformer.pth", restoreformer, nest=None),
    }


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def _frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 128 + 60 * np.sin(x / 4) * np.cos(y / 5) + rng.normal(0, 10, (h, w))
    return np.clip(np.stack([base, 255 - base, base * 0.7 + 30], -1), 0, 255).astype(np.uint8)


# -- recognition and faithfulness ----------------------------------------------------------------------------

CASES = [
    ("rrdb_pth", "ESRGAN", 4),
    ("rrdb_st", "ESRGAN", 4),
    ("compact", "RealESRGAN Compact", 2),
    ("swinir", "SwinIR", 2),
]


@pytest.mark.parametrize(("key", "arch", "scale"), CASES)
def test_each_family_is_recognised_and_runs_as_spandrel_runs_it(zoo, key, arch, scale):
    loaded = load_model_from(str(zoo[key]), None)
    assert (loaded.arch, loaded.scale, loaded.purpose) == (arch, scale, "SR") and loaded.params > 0
    frame = _frame(19, 23)  # odd sizes: SwinIR's window multiple needs padding
    ours = Upscaler(loaded.module, loaded.scale, CPU)([frame])[0]
    reference = spandrel.ModelLoader().load_from_file(zoo[key]).eval()
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    theirs = (reference(x)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert ours.shape == theirs.shape == (19 * scale, 23 * scale, 3)
    assert np.abs(ours.astype(int) - theirs).max() <= 1


def test_pth_and_safetensors_of_the_same_weights_agree(zoo):
    frame = _frame(12, 15)
    a = Upscaler(load_model_from(str(zoo["rrdb_pth"]), 4).module, 4, CPU)([frame])[0]
    b = Upscaler(load_model_from(str(zoo["rrdb_st"]), 4).module, 4, CPU)([frame])[0]
    assert np.array_equal(a, b)


@pytest.mark.parametrize("key", ["rrdb_st", "compact", "swinir"])
def test_tiled_equals_untiled_within_rounding(zoo, key):
    loaded = load_model_from(str(zoo[key]), None)
    frame = _frame(45, 38, seed=3)
    whole = Upscaler(loaded.module, loaded.scale, CPU)([frame])[0]
    tiled = Upscaler(loaded.module, loaded.scale, CPU, tile=16)
    out = tiled([frame])[0]
    assert tiled.stats.tiled_frames == 1 and tiled.tile % loaded.module.size_multiple == 0
    assert np.abs(out.astype(int) - whole).max() <= 1


def test_inspect_reports_architecture_scale_requirements_precision_and_licence(zoo, capsys):
    code, out, err = run_cli(capsys, "models", "--inspect", str(zoo["swinir"]), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["architecture"] == "SwinIR" and info["loader"] == "spandrel" and info["scale"] == 2
    assert info["input"]["multiple_of"] == 4 and info["input"]["minimum"] == 16
    assert info["precision"] == {"fp32": True, "fp16": False, "bf16": True}
    assert info["licence"] == "unknown: check the source" and len(info["sha256"]) == 64
    code, out, _ = run_cli(capsys, "models", "--inspect", str(zoo["restoreformer"]))
    assert code == 0 and "generative face restorer" in out and "aligned 512 px face" in out


def test_an_unknown_architecture_gets_one_line_naming_what_was_found(tmp_path, capsys):
    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.stem.weight": torch.zeros(4, 3, 3, 3), "head.bias": torch.zeros(4)}, str(path))
    code, _, err = run_cli(capsys, "models", "--inspect", str(path))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "architecture not recognised (top-level keys encoder.stem.weight, head.bias; 2 tensors)" in err
    assert "SwinIR" in err and "GFPGAN" in err  # what is supported


# -- vsr enhance ------------------------------------------------------------------------------------------------


def test_enhance_takes_the_scale_from_the_model_and_refuses_a_disagreeing_scale(
    zoo, video_factory, tmp_path, capsys
):
    src = video_factory("zoo.mp4", width=48, height=32, frames=4)
    out, report = tmp_path / "x4.mp4", tmp_path / "r.json"
    code, _, err = run_cli(
        capsys,
        "enhance",
        str(src),
        str(out),
        "--model",
        str(zoo["rrdb_pth"]),
        "--mode",
        "frame",
        "--report",
        str(report),
        "-q",
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["scale"] == 4 and (data["output"]["width"], data["output"]["height"]) == (192, 128)
    assert data["models"][0]["name"] == str(zoo["rrdb_pth"]) and data["frames_out"] == 4
    code, _, err = run_cli(
        capsys,
        "enhance",
        str(src),
        str(tmp_path / "x2.mp4"),
        "--model",
        str(zoo["rrdb_pth"]),
        "--scale",
        "2",
        "-q",
    )
    assert code == 2 and "--scale 2 disagrees with the model" in err and "x4 ESRGAN" in err
    assert not (tmp_path / "x2.mp4").exists()


def test_enhance_tiled_frame_mode_with_a_windowed_model(zoo, video_factory, tmp_path, capsys):
    src = video_factory("zoo_odd.mp4", width=46, height=34, frames=3)
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "enhance", str(src), str(tmp_path / "o.mp4"), "--model", str(zoo["swinir"]), "--mode", "frame",
        "--tile", "16", "--report", str(report), "-q",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["models"][0]["tile"] == 16 and (data["output"]["width"], data["output"]["height"]) == (92, 68)


class LandmarkDetector:
    """One face at a fixed place, with five landmarks (as yuface gives them)."""

    name = "stub-landmarks"

    def __call__(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        cx, cy, s = w / 2, h / 2, min(h, w) * 0.5
        lm = np.float32([[cx - s * 0.2, cy - s * 0.1], [cx + s * 0.2, cy - s * 0.1], [cx, cy + s * 0.05],
                         [cx - s * 0.15, cy + s * 0.25], [cx + s * 0.15, cy + s * 0.25]])  # fmt: skip
        return [Detection((cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2), 0.95, lm)]


@pytest.fixture
def stub_detector(monkeypatch):
    from vsr.pipelines.face import stage

    monkeypatch.setattr(stage, "make_detector", lambda *args, **kwargs: LandmarkDetector())


def test_face_mode_with_a_third_party_sr_face_model(zoo, video_factory, tmp_path, capsys, stub_detector):
    src = video_factory("zoo_face.mp4", width=64, height=48, frames=3)
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "enhance", str(src), str(tmp_path / "o.mp4"), "--mode", "face", "--scale", "2",
        "--face-model", str(zoo["compact"]), "--report", str(report), "-q",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(report.read_text())
    assert (
        data["mode"] == "face"
        and {m["role"]: m["name"] for m in data["models"]}["face"] == str(zoo["compact"])
        and data["faces"]["faces"]["crops"] == 3
    )
    assert "face_restorer" not in data


def test_face_mode_with_a_generative_face_restorer_says_so(
    zoo, video_factory, tmp_path, capsys, stub_detector
):
    src = video_factory("zoo_restore.mp4", width=64, height=48, frames=2)
    report = tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, "enhance", str(src), str(tmp_path / "o.mp4"), "--mode", "face", "--scale", "2", "--model", "bicubic",
        "--face-model", str(zoo["restoreformer"]), "--report", str(report),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(report.read_text())
    face = next(m for m in data["models"] if m["role"] == "face")
    assert face["generative_face_restorer"] is True and data["faces"]["faces"]["crops"] == 2
    assert any("generative face restorer" in w and "invents facial detail" in w for w in data["warnings"])
    assert "note: a generative face restorer was used" in err  # the summary's note
    code, _, err = run_cli(
        capsys, "enhance", str(src), str(tmp_path / "m.mp4"), "--model", str(zoo["restoreformer"]), "-q"
    )
    assert code == 2 and "face restorer: pass it as --face-model" in err


# -- vsr eval ---------------------------------------------------------------------------------------------------


def test_eval_images_and_video_accept_third_party_files(zoo, video_factory, tmp_path, capsys):
    import cv2

    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), _frame(40, 36, seed=i))
    code, out, err = run_cli(
        capsys, "eval", "images", str(folder), "--scale", "2", "--model", str(zoo["compact"]), "--json", "-q"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == str(zoo["compact"]) and data["n"] == 2
    assert set(data["baselines"]) == {"bicubic", "lanczos"} and 10 < data["psnr_rgb"] < 60
    clip = video_factory("zoo_eval.mp4", width=48, height=32, frames=3)
    code, out, err = run_cli(
        capsys, "eval", "video", str(clip), "--model", str(zoo["rrdb_st"]), "--json", "-q"
    )  # no --scale: the model's x4
    assert code == 0, err
    data = json.loads(out)
    assert data["model"] == str(zoo["rrdb_st"]) and data["scale"] == 4 and data["frames"] == 3


# -- GFPGAN at its real shape --------------------------------------------------------------------------------


@pytest.mark.slow
def test_gfpgan_at_real_shape_restores_an_aligned_face_deterministically(tmp_path):
    """86 M parameters, 512 x 512 input: about 15 s per face on one CPU thread."""
    from spandrel.architectures.GFPGAN import GFPGAN

    from vsr.pipelines.face.align import FaceRestorer

    torch.manual_seed(0)
    path = _save_pth(tmp_path / "GFPGANv1.4.pth", GFPGAN().state_dict())
    loaded = load_model_from(str(path), 4)  # a 1x restorer accepts any frame scale
    assert (loaded.arch, loaded.purpose, loaded.scale) == ("GFPGAN", "FaceSR", 1)
    assert loaded.generative_face_restorer and loaded.module.face_size == 512 and not loaded.module.tileable
    restorer = FaceRestorer(Upscaler(loaded.module, 1, CPU, batch_size=1), loaded.arch)
    crop = _frame(40, 40)
    eyes = np.float32([[14, 16], [26, 16], [20, 22], [15, 28], [25, 28]])
    first = restorer.restore([crop], [eyes], scale=4)
    again = restorer.restore([crop], [eyes], scale=4)
    assert first[0][0].shape == (160, 160, 3) and first[0][1].max() > 0.99
    assert np.array_equal(first[0][0], again[0][0])  # fixed noise: no flicker from frame to frame
