"""The timed stages of ``vsr bench`` (``vsr.pipelines.bench`` runs them in order and keeps the results).

Each function times one thing on frames prepared beforehand, so stages do not pay for each other's work.
"""

from __future__ import annotations

import copy
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vsr.pipelines.roofline import sync_device, timed


@dataclass
class Stage:
    """One timed stage: frames through it, seconds, frames per second."""

    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def decode_frames(path: Path, limit: int | None) -> list[np.ndarray]:
    """Decode up to ``limit`` RGB frames of ``path`` as ``vsr enhance`` does."""
    from vsr.media.reader import VideoReader

    frames: list[np.ndarray] = []
    with VideoReader(path) as reader:
        for frame in reader.frames():
            frames.append(frame.image)
            if limit is not None and len(frames) >= limit:
                break
    return frames


def build_random_srresnet(blocks: int, channels: int, scale: int, folder: Path) -> str:
    """Write an untrained SRResNet to ``folder`` (a bench's temporary folder): throughput figures only.

    The weights are random, so nothing it produces is ever a user's output; ``vsr bench`` deletes the
    folder when it finishes.
    """
    import torch

    from vsr.models.srresnet import SRResNet
    from vsr.models.weights import write_safetensors

    torch.manual_seed(0)
    net = SRResNet(scale, blocks, channels, batch_norm=False)
    path = folder / f"random-srresnet-{blocks}x{channels}-x{scale}.safetensors"
    arch = {"arch": "srresnet", "scale": scale, "blocks": blocks, "channels": channels, "batch_norm": False}
    write_safetensors(net.state_dict(), arch, path, half=False)
    return str(path)


class UtilisationSampler:
    """Mean GPU utilisation (%) while running, via pynvml when it is importable; None otherwise."""

    def __init__(self, device) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - utilisation is optional; no NVML means no figure
            return
        self._thread = threading.Thread(target=self._run, daemon=True, name="nvml")

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append(float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))

    def __enter__(self) -> UtilisationSampler:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(statistics.fmean(self.samples), 1) if self.samples else None


# -- stages ------------------------------------------------------------------------------------------------------------
def time_decode(path: Path, limit: int | None) -> tuple[Stage, Stage]:
    from vsr.media.planes import decode_planes

    start = time.perf_counter()
    n_rgb = len(decode_frames(path, limit))
    rgb = Stage(n_rgb, time.perf_counter() - start)
    start = time.perf_counter()
    n_yuv = sum(1 for _ in decode_planes(path, limit))
    return rgb, Stage(n_yuv, time.perf_counter() - start)


def time_model(upscaler, frames: list[np.ndarray]) -> Stage:
    n = upscaler.batch_size
    upscaler(frames[:n])  # warm-up: kernel selection, allocator
    done = 0

    def run() -> None:
        nonlocal done
        for i in range(0, len(frames), n):
            done += len(upscaler(frames[i : i + n]))

    return Stage(len(frames), timed(run, upscaler.device))


def time_model_device(upscaler, frames: list[np.ndarray], batches: int) -> Stage:
    """The network alone on one device-resident batch, run ``batches`` times: the roofline's numerator."""
    import torch

    x, _, _ = upscaler._to_device(frames[: upscaler.batch_size])
    with torch.inference_mode():
        upscaler._forward(x)

        def run() -> None:
            for _ in range(batches):
                upscaler._forward(x)

        seconds = timed(run, upscaler.device)
    return Stage(batches * x.shape[0], seconds)


def time_device_path(upscaler, planes: list[tuple], fmt) -> Stage:
    """YUV planes -> device -> RGB -> network -> YUV -> host, batched, one host sync per batch: the
    device frame path ``vsr enhance`` runs (``Upscaler.start_planes``), without decoding and encoding."""
    n = upscaler.batch_size
    upscaler.start_planes(planes[:n], fmt, fmt).wait()  # warm-up

    def run() -> None:
        pending = None
        for i in range(0, len(planes), n):
            nxt = upscaler.start_planes(planes[i : i + n], fmt, fmt)
            if pending is not None:
                pending.wait()  # hand batch i-1 to the encoder while batch i computes
            pending = nxt
        if pending is not None:
            pending.wait()

    seconds = timed(run, upscaler.device)
    return Stage(len(planes), seconds)


def time_detect(detection, frames: list[np.ndarray]) -> tuple[Stage, int]:
    """Detection on every frame at the resolution ``vsr enhance`` uses, with its worker threads (a
    ``DetectAhead``: all frames submitted, results taken in order); also the faces found."""
    start = time.perf_counter()
    running = [detection.submit(image) for image in frames]
    found = sum(len(r.result()[0]) for r in running)
    return Stage(len(frames), time.perf_counter() - start), found


def time_encode(path: Path, frames: list[np.ndarray], scale: int, config, tmp: Path, plan=None) -> Stage:
    """Encode upscaled frames (bilinear, made beforehand, one per input frame) as ``vsr enhance`` would,
    with ``plan``'s encoders (an ``EncoderPlan``; None: one)."""
    import cv2

    from vsr.media.reader import Frame, VideoReader
    from vsr.media.writer import EncodeSettings, container_for, open_writer

    out = tmp / "encode-only.mp4"
    with VideoReader(path) as reader:
        info, time_base = reader.info, reader.time_base
    h, w = frames[0].shape[:2]
    # A ring of distinct upscaled pictures keeps memory flat for long runs.
    ring = [cv2.resize(f, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR) for f in frames[:16]]
    settings = EncodeSettings.for_output(out, codec=config.codec, preset=config.preset, audio=False)
    start = time.perf_counter()
    writer = open_writer(
        out, container_for(out), info, w * scale, h * scale, settings, time_base, info.rotation, None,
        encoders=plan,
    )  # fmt: skip
    try:
        for i in range(len(frames)):
            writer.write(Frame(ring[i % len(ring)], pts=i, index=i))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return Stage(len(frames), time.perf_counter() - start)


def run_enhance(
    path: Path, config, model: str, mode: str, tmp: Path, frame_path: str = "auto"
) -> dict[str, Any]:
    """One ``vsr enhance`` run into a temporary output; returns its report.

    The only place ``vsr bench`` calls the pipeline: when the orchestrator's signature changes, change this.
    """
    from vsr.config import EnhanceConfig, FaceOptions
    from vsr.pipelines.enhance import enhance

    cfg = EnhanceConfig(
        input=path,
        output=tmp / f"end-to-end-{mode}-{frame_path}.mp4",
        frame_path=frame_path,
        scale=config.scale,
        model=model,
        device=config.device,
        precision=config.precision,
        batch_size=config.batch_size,
        compile=config.compile,
        codec=config.codec,
        preset=config.preset,
        encoders=config.encoders,
        audio=False,
        overwrite=True,
        quiet=True,
        mode=mode,
        face=FaceOptions(
            detector=config.detector,
            # An untrained network has no face counterpart: it upscales the faces too.  Otherwise the
            # face model is the one `vsr enhance` would pick.
            face_model=model if mode == "face" and config.random_srresnet else None,
            det_every=config.det_every,
        ),
    )
    return enhance(cfg).to_dict()


def time_reference(module, frames: list[np.ndarray], device, precision: str) -> Stage:
    """Batch 1, host-side float conversion, a sync per frame: how popular upscaler scripts run a model.

    A copy of the network in its plain layout, cast to the run's precision (``.half()``, as those scripts do).
    """
    import torch

    from vsr.pipelines.device import DTYPES as _DTYPES

    net = copy.deepcopy(module).to(device).to(memory_format=torch.contiguous_format).eval()
    has_params = any(True for _ in net.parameters())
    dtype = _DTYPES[precision] if has_params else torch.float32
    net = net.to(dtype)

    def one(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
        y = net(x.to(device).to(dtype))
        out = (y.float().clamp(0, 1) * 255.0).round().byte().squeeze(0).permute(1, 2, 0).cpu().numpy()
        sync_device(device)
        return out

    with torch.inference_mode():
        one(frames[0])  # warm-up

        def run() -> None:
            for image in frames:
                one(image)

        seconds = timed(run, device)
    return Stage(len(frames), seconds)
