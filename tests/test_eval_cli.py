"""``vsr eval`` end to end on generated images and a generated clip, run in-process through ``vsr.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vsr.cli import main

KEYS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "sharpness")


def _reject_constant(name: str) -> None:
    raise AssertionError(f"non-standard JSON token {name}")


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run ``vsr eval ARGS``; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(["eval", *args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def parse(stdout: str) -> dict:
    return json.loads(stdout, parse_constant=_reject_constant)


def _picture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth structure plus fine detail, so interpolation has something to get wrong."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 128 + 60 * np.sin(x / (3 + seed)) * np.cos(y / 5) + rng.normal(0, 12, (h, w))
    rgb = np.stack([base, base * 0.8 + 20, 255 - base], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"img{i}.png"), _picture(42, 37, i))  # not multiples of 2: modcrop
    cv2.imwrite(str(folder / "grey.png"), _picture(40, 40, 5)[..., 0])
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "notes.txt").write_text("ignored")
    return folder


def _check_scores(scores: dict) -> None:
    assert set(KEYS) <= set(scores)
    assert 15 < scores["psnr_y"] < 60 and 15 < scores["psnr_rgb"] < 60
    assert 0 < scores["ssim_y"] <= 1 and 0 < scores["ssim_rgb"] <= 1
    # interpolation from a 2x smaller image is blurrier than the original
    assert 0.2 < scores["sharpness"] < 1


def test_images_json_has_every_key_and_bicubic_model_equals_the_baseline(capsys, image_dir, tmp_path) -> None:
    grid = tmp_path / "grid.png"
    code, out, err = run(
        capsys,
        "images",
        str(image_dir),
        "--scale",
        "2",
        "--model",
        "bicubic",
        "--json",
        "--grid",
        str(grid),
        "-q",
    )
    assert code == 0, err
    data = parse(out)
    assert data["model"] == "bicubic" and data["scale"] == 2 and data["kind"] == "images"
    assert data["n"] == 4 and data["skipped"] == 1 and data["skipped_files"] == ["broken.png"]
    _check_scores(data)
    assert set(data["baselines"]) == {"bicubic", "lanczos"}
    for scores in data["baselines"].values():
        _check_scores(scores)
    assert {k: data[k] for k in KEYS} == {k: data["baselines"]["bicubic"][k] for k in KEYS}
    assert data["per_image"]["names"] == ["grey.png", "img0.png", "img1.png", "img2.png"]
    assert len(data["per_image"]["lanczos"]["psnr_y"]) == 4
    picture = cv2.imread(str(grid))
    assert picture is not None and picture.shape[1] > picture.shape[0]


def test_images_table_with_the_default_model(capsys, image_dir) -> None:
    from vsr.models.registry import DEFAULT_MODEL

    code, out, err = run(capsys, "images", str(image_dir), "--scale", "2", "--limit", "2", "-q")
    assert code == 0, err
    assert f"{DEFAULT_MODEL[2]} (model)" in out and "bicubic" in out and "PSNR-Y" in out


def test_identical_output_gives_null_psnr_and_valid_json(capsys, tmp_path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    cv2.imwrite(str(folder / "flat.png"), np.full((24, 24, 3), 90, np.uint8))
    code, out, err = run(capsys, "images", str(folder), "--scale", "2", "--json", "-q")
    assert code == 0, err
    data = parse(out)
    assert data["psnr_y"] is None and data["psnr_rgb"] is None
    assert data["ssim_y"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "no images in"),
        ("unreadable", "could be read"),
        ("tiny", "too small to evaluate at x4"),
        ("missing", "not found"),
    ],
)
def test_bad_folders_fail_with_one_line(capsys, tmp_path, setup: str, message: str) -> None:
    folder = tmp_path / "data"
    if setup != "missing":
        folder.mkdir()
    if setup == "unreadable":
        (folder / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    if setup == "tiny":
        cv2.imwrite(str(folder / "tiny.png"), np.zeros((3, 3, 3), np.uint8))
    code, out, err = run(capsys, "images", str(folder), "--scale", "4", "--json", "-q")
    assert code == 1
    assert out == ""
    assert err.startswith("vsr: error:") and message in err and err.count("\n") == 1


def test_unknown_model_is_a_model_error(capsys, image_dir) -> None:
    code, _, err = run(capsys, "images", str(image_dir), "--model", "bicubc", "-q")
    assert code == 1 and "did you mean bicubic" in err


def test_faces_real_degradation(capsys, image_dir) -> None:
    code, out, err = run(capsys, "faces", str(image_dir), "--scale", "2", "--degrade", "real", "--json", "-q")
    assert code == 0, err
    data = parse(out)
    assert data["kind"] == "faces" and data["n"] == 4
    assert "H.264" in data["protocol"]["lr"]
    _check_scores(data["baselines"]["bicubic"])


def test_video_reports_per_frame_scores_and_flicker(capsys, video_factory, tmp_path) -> None:
    clip = video_factory("eval_small.mp4", width=64, height=48, frames=6, audio_tracks=0)
    code, out, err = run(
        capsys,
        "video",
        str(clip),
        "--scale",
        "2",
        "--model",
        "bicubic",
        "--json",
        "-q",
        "--grid",
        str(tmp_path / "v.png"),
    )
    assert code == 0, err
    data = parse(out)
    assert data["kind"] == "video" and data["n"] == 6 and data["frames"] == 6
    _check_scores(data)
    for name in ("bicubic", "lanczos"):
        _check_scores(data["baselines"][name])
        assert 0 <= data["baselines"][name]["flicker"] < 20
    assert data["flicker"] == data["baselines"]["bicubic"]["flicker"]
    per_frame = data["per_frame"]
    assert len(per_frame["model"]["ssim_y"]) == 6 and per_frame["model"]["flicker"][0] is None
    assert data["hr_temporal_change"] > 0
    assert (tmp_path / "v.png").is_file()
