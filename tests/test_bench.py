"""``vsr bench``: every stage runs and is timed, the result serialises, the FLOP count is right."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from vsr.cli import cli
from vsr.errors import UsageError
from vsr.models.srresnet import SRResNet
from vsr.pipelines.bench import BenchConfig, parse_batch_sweep, parse_random_srresnet, parse_synthetic
from vsr.pipelines.roofline import conv_flops


def _bench(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["bench", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_bench_synthetic_frame_mode_times_every_stage():
    data = _bench("--synthetic", "64x48:8", "--scale", "2", "--model", "bicubic", "--json")
    assert (data["width"], data["height"], data["frames"], data["scale"]) == (64, 48, 8, 2)
    assert data["device"] == "cpu" and data["mode"] == "frame"
    for stage in ("decode", "decode_yuv", "model", "device_path", "encode", "end_to_end", "reference"):
        assert data["stages"][stage]["frames"] == 8, stage
        assert data["stages"][stage]["fps"] > 0, stage
    ratios = data["ratios"]
    assert ratios["end_to_end_over_model"] > 0 and ratios["end_to_end_over_reference"] > 0
    assert data["flops_per_frame"] is None  # interpolation: no convolutions, no roofline


def test_bench_random_srresnet_face_mode_reports_roofline_and_detection():
    pytest.importorskip("cv2")
    data = _bench(
        "--synthetic",
        "48x32:4",
        "--scale",
        "2",
        "--random-srresnet",
        "1,8",
        "--mode",
        "face",
        "--detector",
        "haar",
        "--no-end-to-end",
        "--json",
    )
    assert "untrained" in data["model"]
    assert data["stages"]["detect"]["fps"] > 0 and data["faces_detected"] is not None
    assert data["stages"]["model_device"]["fps"] > 0
    assert data["flops_per_frame"] == conv_flops(SRResNet(2, 1, 8, batch_norm=False), 32, 48)
    assert data["matrix_tflops"] > 0 and 0 < data["roofline_fraction"] < 1
    assert "end_to_end" not in data["stages"]


def test_table_is_readable():
    result = CliRunner().invoke(
        cli, ["bench", "--synthetic", "32x32:2", "--scale", "2", "--model", "bicubic", "--no-end-to-end"]
    )
    assert result.exit_code == 0, result.output
    assert "reference loop" in result.output and "encode" in result.output


def _hand_flops(scale: int, blocks: int, channels: int, h: int, w: int) -> int:
    c, hw = channels, h * w
    total = 2 * c * 3 * 81 * hw  # head: 9x9, 3 -> C
    total += blocks * 2 * (2 * c * c * 9 * hw)  # two 3x3 C -> C per residual block
    total += 2 * c * c * 9 * hw  # body tail
    for stage in range(scale // 2):  # C -> 4C 3x3 at each resolution before its pixel shuffle
        total += 2 * 4 * c * c * 9 * hw * 4**stage
    total += 2 * 3 * c * 81 * hw * scale * scale  # tail: 9x9, C -> 3 at the output resolution
    return total


@pytest.mark.parametrize("scale,blocks,channels,h,w", [(4, 16, 64, 270, 480), (2, 3, 8, 17, 23)])
def test_conv_flops_match_hand_count(scale, blocks, channels, h, w):
    net = SRResNet(scale, blocks, channels)
    assert conv_flops(net, h, w) == _hand_flops(scale, blocks, channels, h, w)
    # The module itself is untouched (counted on a copy on the meta device).
    assert next(net.parameters()).device.type == "cpu"


def test_srresnet_16x64_x4_at_480x270_flops():
    # The target model: 575 GFLOP a frame (400 fps is 230 TFLOP/s), 38 % of it in the two
    # layers at the output resolution (the last upsampling conv and the 9x9 tail).
    assert conv_flops(SRResNet(4, 16, 64), 270, 480) == pytest.approx(574.95e9, rel=1e-4)


def test_bad_options_are_usage_errors():
    for spec in ("64", "64x", "axb", "15x16", "64x48:0", "63x48"):
        with pytest.raises(UsageError, match="--synthetic"):
            parse_synthetic(spec)
    assert parse_synthetic("480x270:600") == (480, 270, 600)
    assert parse_synthetic("480x270") == (480, 270, 120)
    with pytest.raises(UsageError, match="--random-srresnet"):
        parse_random_srresnet("16")
    with pytest.raises(UsageError, match="not both"):
        BenchConfig().validate()
    with pytest.raises(UsageError, match="exclude"):
        BenchConfig(synthetic=(32, 32, 2), model="bicubic", random_srresnet=(1, 8)).validate()
    result = CliRunner().invoke(cli, ["bench", "--synthetic", "nope"])
    assert result.exit_code != 0
    assert parse_batch_sweep("4, 8,16") == (4, 8, 16) and parse_batch_sweep("") == ()
    with pytest.raises(UsageError, match="--batch-sweep"):
        parse_batch_sweep("8,x")
    with pytest.raises(UsageError, match="--batch-sweep"):
        BenchConfig(synthetic=(32, 32, 2), batch_sweep=(8, 0)).validate()


def test_batch_sweep_times_the_model_at_each_batch_size():
    data = _bench(
        "--synthetic", "48x32:6", "--scale", "2", "--random-srresnet", "1,8", "--batch-sweep", "1,4",
        "--no-end-to-end", "--json",
    )  # fmt: skip
    for b in (1, 4):
        assert (
            data["stages"][f"model_batch{b}"]["frames"] == 6 and data["stages"][f"model_batch{b}"]["fps"] > 0
        )
    assert "model_batch2" not in data["stages"]


def test_random_srresnet_weights_never_reach_the_registry(tmp_path):
    from vsr.models.registry import REGISTRY, load_model_from
    from vsr.pipelines.bench_stages import build_random_srresnet

    path = build_random_srresnet(1, 8, 2, tmp_path)
    assert path.startswith(str(tmp_path))
    assert not any("random" in name for name in REGISTRY)
    loaded = load_model_from(path, 2)
    x = torch.rand(1, 3, 8, 8)
    assert loaded.module(x).shape == (1, 3, 16, 16)


def test_bench_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom vsr.cli import main\ntry:\n    main(['bench', '--help'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "assert 'torch' not in sys.modules and 'av' not in sys.modules\nprint('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
