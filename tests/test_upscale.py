"""Batched inference: tiling is exact, out-of-memory never drops a frame, dtypes round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsr.errors import UsageError
from vsr.models.srresnet import SRResNet
from vsr.pipelines.device import resolve_device, resolve_precision
from vsr.pipelines.upscale import Upscaler


def _random_srresnet(scale: int = 2) -> SRResNet:
    torch.manual_seed(0)
    net = SRResNet(scale, blocks=3, channels=12).eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net


def _frames(n: int, h: int, w: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("scale", [2, 4])
def test_tiled_equals_untiled(scale):
    net = _random_srresnet(scale)
    frames = _frames(3, 53, 71)
    whole = Upscaler(net, scale, torch.device("cpu"))(frames)
    tiled_up = Upscaler(net, scale, torch.device("cpu"), tile=20)
    tiled = tiled_up(frames)
    assert tiled_up.stats.tiled_frames == 3
    for a, b in zip(whole, tiled, strict=True):
        assert a.shape == (53 * scale, 71 * scale, 3)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_tiles_without_enough_overlap_differ():
    """The overlap is what makes tiling exact: with none, seams appear (so the test above can fail)."""
    net = _random_srresnet(2)
    frames = _frames(1, 48, 48)
    whole = Upscaler(net, 2, torch.device("cpu"))(frames)[0]
    seamy = Upscaler(net, 2, torch.device("cpu"), tile=16, tile_overlap=0)(frames)[0]
    assert np.abs(whole.astype(int) - seamy.astype(int)).max() > 5


class _FlakyMemory(torch.nn.Module):
    """Raises CUDA-style out-of-memory when asked for more than ``limit`` pixels at once."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.receptive_radius = 2
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        if x.shape[0] * x.shape[2] * x.shape[3] > self.limit:
            raise torch.OutOfMemoryError("simulated")
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") * self.weight


def test_out_of_memory_halves_batch_then_tiles_and_keeps_every_frame():
    model = _FlakyMemory(limit=40 * 40)
    frames = _frames(5, 48, 64)
    up = Upscaler(model, 2, torch.device("cpu"), batch_size=4)
    out = up(frames)
    assert len(out) == 5
    for a, b in zip(frames, out, strict=True):
        np.testing.assert_array_equal(b, a.repeat(2, axis=0).repeat(2, axis=1))
    assert up.stats.batch_size == 1 and up.stats.tile > 0 and up.stats.oom_retries >= 3
    assert any("batch size" in w for w in up.stats.warnings) and any("tiling" in w for w in up.stats.warnings)


def test_uint16_frames_keep_their_depth():
    from vsr.models.resample import Interpolation

    frames = [np.full((8, 10, 3), 1000, np.uint16)]
    out = Upscaler(Interpolation(2, "cubic"), 2, torch.device("cpu"))(frames)
    assert out[0].dtype == np.uint16 and out[0].shape == (16, 20, 3)
    assert int(out[0].min()) == int(out[0].max()) == 1000


def test_device_and_precision_resolution():
    cpu = resolve_device("cpu")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(UsageError, match="fp16 needs a CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(UsageError):
        resolve_device("tpu")
    # training keeps fp32 on the CPU, and names the key the value came from
    assert resolve_precision("auto", cpu, purpose="train") == "fp32"
    with pytest.raises(UsageError, match="train.precision bf16 needs a CUDA"):
        resolve_precision("bf16", cpu, purpose="train", flag="train.precision")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            resolve_device("cuda")


def test_bf16_on_cpu_is_close_to_fp32():
    net = _random_srresnet(2)
    frames = _frames(2, 24, 24)
    a = Upscaler(net, 2, torch.device("cpu"), precision="fp32")(frames)
    b = Upscaler(net, 2, torch.device("cpu"), precision="bf16")(frames)
    assert np.mean([np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b, strict=True)]) < 3


@pytest.mark.needs_cuda
def test_cuda_fp16_matches_cpu_fp32():
    net = _random_srresnet(2)
    frames = _frames(4, 40, 40)
    a = Upscaler(net, 2, torch.device("cpu"))(frames)
    b = Upscaler(net, 2, torch.device("cuda"), precision="fp16")(frames)
    assert np.mean([np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b, strict=True)]) < 2
