"""``--compile``: the compiled model gives the eager frames, compiles once per stream, and never fails a run.

One real ``torch.compile`` (a 2x8 SRResNet on 28x20 frames: ~18 s cold on 2 cores, ~4 s from inductor's
cache); every other test stands in ``FakeCompile`` for ``torch.compile`` (the module itself, recording the
shapes it is given), which tests the Upscaler's part (shapes, fallbacks, the report) without a compiler.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vsr.cli import cli
from vsr.config import EnhanceConfig
from vsr.errors import ConfigError
from vsr.models.srresnet import SRResNet
from vsr.pipelines.device import resolve_compile
from vsr.pipelines.upscale import Upscaler

CPU = torch.device("cpu")
HAS_CXX = shutil.which("g++") is not None  # inductor's CPU code generation needs a C++ compiler


def _net() -> SRResNet:
    torch.manual_seed(0)
    return SRResNet(2, blocks=2, channels=8, batch_norm=False).eval()


def _frames(n: int, h: int = 20, w: int = 28, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    assert len(a) == len(b)
    return max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(a, b, strict=True))


class FakeCompile:
    """Stands in for ``torch.compile``: the "compiled" module is the module, recording each input shape;
    ``fail`` is raised from every compiled call instead (a compiler that breaks at its first call)."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.compiles = 0
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, module, **kwargs):
        self.compiles += 1
        self.kwargs = kwargs

        def run(x):
            self.shapes.append(tuple(x.shape))
            if self.fail is not None:
                raise self.fail
            return module(x)

        return run


@pytest.fixture
def fake_compile(monkeypatch) -> FakeCompile:
    fake = FakeCompile()
    monkeypatch.setattr(torch, "compile", fake)
    return fake


# -- the real compiler, once ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_run():
    """5 frames at batch 2 (the last batch short) through a really compiled model, and eagerly."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()  # a fresh cache: this run's compilations are counted from zero
    graphs = counters["stats"]["unique_graphs"]
    net, frames = _net(), _frames(5)
    eager = Upscaler(net, 2, CPU, batch_size=2)(frames)
    up = Upscaler(net, 2, CPU, batch_size=2, compile=True)
    out = up(frames)
    return up, out, eager, counters["stats"]["unique_graphs"] - graphs


def test_compiled_output_equals_eager_and_compiles_once(real_run):
    up, out, eager, graphs = real_run
    if HAS_CXX:
        assert up.stats.warnings == [] and up.stats.compiled_batches == 3 and up.stats.compile_seconds > 0
        assert graphs == 1  # batches of 2, 2 and 1 frames: one graph, the short batch filled up to 2
        assert up.stats.batches == 3
        # Inductor fuses and reorders float32 arithmetic (~1e-6 of the [0, 1] range); after x255 and
        # rounding that can move a value lying within ~1e-4 of a half-level by one level, never more.
        assert _max_diff(out, eager) <= 1
        assert np.mean([np.mean(a != b) for a, b in zip(out, eager, strict=True)]) < 0.01
    else:  # no C++ compiler: inductor cannot build CPU kernels, so the run falls back, and still delivers
        (warning,) = up.stats.warnings
        assert warning.startswith("torch.compile failed") and up.stats.compiled_batches == 0
        assert _max_diff(out, eager) == 0


def test_reaching_torchs_recompile_limit_runs_eagerly_and_says_so(monkeypatch):
    """Torch compiles a network class's forward a limited number of times per process (8), then silently
    runs it eagerly: a batch worker past that many resolutions must not report its batches as compiled.
    (A limit of 0 is reached at the first compilation, before any code is generated: no compiler needed;
    the shape is one no other test compiles, which would be a cached graph, rightly run compiled.)"""
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 0)
    frames = _frames(3, h=12, w=18, seed=1)
    up = Upscaler(_net(), 2, CPU, batch_size=2, compile=True)
    out = up(frames)
    (warning,) = up.stats.warnings
    assert "SRResNet 0 times, torch's recompile limit" in warning and up.stats.compiled_batches == 0
    assert _max_diff(out, Upscaler(_net(), 2, CPU, batch_size=2)(frames)) == 0
    assert not up.compile  # and the rest of the run goes eagerly without trying again


# -- the Upscaler's part, with a stand-in compiler ----------------------------------------------------------------------
def test_short_batch_is_filled_with_its_last_frame_and_other_shapes_run_eagerly(fake_compile):
    net = _net()
    up = Upscaler(net, 2, CPU, batch_size=3, compile=True)
    frames = _frames(5)
    assert _max_diff(up(frames), Upscaler(net, 2, CPU, batch_size=3)(frames)) == 0
    assert fake_compile.compiles == 1 and fake_compile.kwargs == {"dynamic": False, "mode": "default"}
    assert fake_compile.shapes == [(3, 3, 20, 28)] * 2  # 3 frames, then 2 filled up to 3
    other = _frames(2, 24, 16, seed=1)  # another resolution: eager, no second compile
    assert _max_diff(up(other), Upscaler(net, 2, CPU)(other)) == 0
    assert fake_compile.compiles == 1 and len(fake_compile.shapes) == 2
    assert up.stats.compiled_batches == 2 and up.stats.batches == 3 and up.stats.warnings == []


def test_tiled_frames_run_eagerly(fake_compile):
    net, frames = _net(), _frames(2, 40, 40)
    up = Upscaler(net, 2, CPU, tile=16, compile=True)
    out = up(frames)
    assert up.stats.tiled_frames == 2 and fake_compile.compiles == 0 and fake_compile.shapes == []
    assert up.stats.compiled_batches == 0 and up.stats.compile_seconds == 0
    assert _max_diff(out, Upscaler(net, 2, CPU)(frames)) <= 1  # tiles: exact within rounding


def test_a_compiler_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    fake = FakeCompile(fail=RuntimeError("InvalidCxxCompiler: No working C++ compiler found\n  traceback..."))
    monkeypatch.setattr(torch, "compile", fake)
    net, frames = _net(), _frames(5)
    up = Upscaler(net, 2, CPU, batch_size=2, compile=True)
    out = up(frames)
    assert _max_diff(out, Upscaler(net, 2, CPU, batch_size=2)(frames)) == 0  # the failed batch too
    assert up.stats.warnings == [
        "torch.compile failed, the model runs uncompiled: InvalidCxxCompiler: No working C++ compiler found"
    ]
    assert fake.compiles == 1 and len(fake.shapes) == 1  # tried once, then eager for the rest
    assert up.stats.compiled_batches == 0 and up.compile is False


def test_out_of_memory_backs_off_to_eager(monkeypatch):
    fake = FakeCompile(fail=torch.OutOfMemoryError("simulated"))
    monkeypatch.setattr(torch, "compile", fake)
    net, frames = _net(), _frames(4)
    up = Upscaler(net, 2, CPU, batch_size=4, compile=True)
    assert _max_diff(up(frames), Upscaler(net, 2, CPU)(frames)) == 0
    assert up.stats.batch_size == 2 and up.stats.oom_retries == 1 and len(fake.shapes) == 1
    assert "out of memory: the model runs uncompiled from now on" in up.stats.warnings


# -- flags, policy, reports -----------------------------------------------------------------------------------------------
def test_compile_flag_is_validated_and_auto_means_cuda_with_weights(tmp_path):
    with pytest.raises(ConfigError, match="--compile must be one of auto, on, off"):
        EnhanceConfig(tmp_path / "in.mp4", tmp_path / "out.mp4", compile="yes").validate()
    cuda = torch.device("cuda")  # a device object needs no GPU
    assert resolve_compile("auto", cuda, learned=True) is True
    assert resolve_compile("auto", cuda, learned=False) is False  # interpolation: nothing to fuse
    assert resolve_compile("auto", CPU, learned=True) is False  # not repaid on a CPU
    assert resolve_compile("on", CPU, learned=False) is True and resolve_compile("off", cuda, True) is False
    for command in (["enhance", "in.mp4", "out.mp4"], ["bench", "in.mp4"]):
        result = CliRunner().invoke(cli, [*command, "--compile", "x"])
        assert result.exit_code == 2 and "'--compile'" in result.output, result.output


def test_report_says_whether_the_model_ran_compiled(video_factory, tmp_path, fake_compile):
    src = video_factory("compile.mp4", width=28, height=20, frames=5, audio_tracks=0)
    for compile, frame_path in (("on", "yuv"), ("auto", "rgb")):
        report = tmp_path / f"{compile}.json"
        args = (
            f"--model general-x2 --mode frame --batch-size 2 --frame-path {frame_path} --compile {compile} -q"
        )
        result = CliRunner().invoke(
            cli,
            ["enhance", str(src), str(tmp_path / f"{compile}.mp4"), *args.split(), "--report", str(report)],
        )
        assert result.exit_code == 0, result.output
        data = json.loads(report.read_text())
        (model,) = data["models"]
        assert data["options"]["compile"] == compile and data["frames_out"] == 5
        if compile == "on":  # the device frame path: planes converted on the device, the same compiled shape
            assert data["frame_path"] == "yuv" and model["compiled"] is True and model["compile_seconds"] > 0
            assert fake_compile.shapes == [(2, 3, 20, 28)] * 3
        else:  # auto on a CPU: eager
            assert model["compiled"] is False and model["compile_seconds"] == 0
    assert fake_compile.compiles == 1


def test_bench_times_model_eager_and_compiled_side_by_side(fake_compile):
    args = "bench --synthetic 32x24:4 --scale 2 --random-srresnet 1,8 --batch-size 2 --no-end-to-end --json".split()
    on = json.loads(CliRunner().invoke(cli, [*args, "--compile", "on"], catch_exceptions=False).output)
    for stage in ("model", "model_compiled", "device_path", "device_path_compiled"):
        assert on["stages"][stage]["frames"] == 4 and on["stages"][stage]["fps"] > 0, stage
    assert on["compile_seconds"] is not None and on["ratios"]["compiled_over_eager_model"] > 0
    assert fake_compile.compiles == 1 and on["warnings"] == []
    off = json.loads(CliRunner().invoke(cli, [*args, "--compile", "off"], catch_exceptions=False).output)
    assert "model_compiled" not in off["stages"] and off["compile_seconds"] is None
    assert off["ratios"]["compiled_over_eager_model"] is None
