"""Batched inference: numpy frames in, upscaled numpy frames out, on CPU or CUDA.

``Upscaler`` is the one place where images meet a network.  It converts
uint8/uint16 to float on the device (the host only copies bytes, from pinned
memory on CUDA), runs channels_last under autocast, and never drops a frame:
on CUDA out-of-memory it halves the batch, then tiles, then retries the same
frames.  Tiles overlap by the model's receptive radius, so tiled output equals
untiled output within rounding.

What a model needs is a property of the module, honoured here rather than by
callers: ``size_multiple`` / ``size_minimum`` (input padded by reflection and
the output cropped back, per tile too; tiles start on multiples so windowed
attention sees the same windows), ``supports_fp16`` / ``supports_bf16``
(otherwise fp32, with a warning), ``tileable`` (False: never tiled) and
``channels_last`` (False: keep NCHW memory on CUDA).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from vsr.errors import ResourceError
from vsr.pipelines.device import DTYPES as _DTYPES


@dataclass
class UpscalerStats:
    """What happened during inference, for the report."""

    batches: int = 0
    frames: int = 0
    oom_retries: int = 0
    tiled_frames: int = 0
    batch_size: int = 0
    tile: int = 0
    seconds: float = 0.0  # busy time: host copies, the network, and back
    warnings: list[str] = field(default_factory=list)


class Upscaler:
    """Run a loaded model over lists of HxWx3 frames (uint8 or uint16), preserving dtype and order."""

    def __init__(
        self,
        module: torch.nn.Module,
        scale: int,
        device: torch.device,
        precision: str = "fp32",
        batch_size: int | None = None,
        tile: int = 0,
        tile_overlap: int | None = None,
    ) -> None:
        self.scale = scale
        self.device = device
        self.module = module.to(device).eval()
        self.has_params = any(True for _ in self.module.parameters())
        self.multiple = max(1, int(getattr(module, "size_multiple", 1)))
        self.minimum = int(getattr(module, "size_minimum", 0))
        self.tileable = bool(getattr(module, "tileable", True))
        warnings: list[str] = []
        supported = {
            "fp16": getattr(module, "supports_fp16", True),
            "bf16": getattr(module, "supports_bf16", True),
        }
        if not supported.get(precision, True):
            name = getattr(module, "arch", type(module).__name__)
            warnings.append(f"{name} does not support {precision}: running it in fp32")
            precision = "fp32"
        self.precision = precision
        self.channels_last = (
            device.type == "cuda" and self.has_params and getattr(module, "channels_last", True)
        )
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.batch_size = batch_size or (8 if device.type == "cuda" else 2)
        overlap = tile_overlap if tile_overlap is not None else int(getattr(module, "receptive_radius", 16))
        self.overlap = _round_up(overlap, self.multiple)
        self.tile = _round_up(tile, self.multiple) if self.tileable else 0
        if tile and not self.tileable:
            warnings.append(
                f"--tile {tile} ignored: {getattr(module, 'arch', 'this model')} must see whole inputs"
            )
        self.stats = UpscalerStats(batch_size=self.batch_size, tile=self.tile, warnings=warnings)
        self._transfer = None  # the device frame path's PlaneTransfer, made on first use

    # -- public ---------------------------------------------------------------------------------------------
    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Upscale ``frames``; returns a list of the same length and dtype."""
        started = time.perf_counter()
        out: list[np.ndarray] = []
        if frames and not self.tile:
            self._auto_tile(frames[0].shape)
        i = 0
        while i < len(frames):
            chunk = frames[i : i + self.batch_size]
            try:
                out.extend(self._run_chunk(chunk))
            except torch.OutOfMemoryError:
                self._shrink_after_oom(chunk[0].shape)
                continue  # retry the same frames with the smaller batch or tiles
            i += len(chunk)
        self.stats.frames += len(frames)
        self.stats.seconds += time.perf_counter() - started
        return out

    def start_planes(self, frames: list[tuple], src, dst) -> PendingFrames:
        """The device frame path: upscale frames given as YUV planes (``src``, a ``YuvFormat``) into planes of
        ``dst``.  The planes are uploaded (pinned ring buffers and a copy stream on CUDA), converted to RGB,
        run, converted back and downloaded on the device; the host touches no pixel.  Returns at once with
        the download in flight: ``wait()`` on the result is the one host sync per batch, so a stage can hand
        the previous batch to the encoder while this one computes.  Out-of-memory backoff as for RGB."""
        from vsr.pipelines.transfer import PlaneTransfer

        if self._transfer is None:
            self._transfer = PlaneTransfer(self.device)
        started = time.perf_counter()
        if frames and not self.tile:
            y = frames[0][0]
            self._auto_tile((y.shape[0], y.shape[1], 3))
        pending, i = [], 0
        while i < len(frames):
            chunk = frames[i : i + self.batch_size]
            try:
                pending.append(self._run_planes(chunk, src, dst))
            except torch.OutOfMemoryError:
                self._shrink_after_oom((chunk[0][0].shape[0], chunk[0][0].shape[1], 3))
                continue
            i += len(chunk)
        self.stats.frames += len(frames)
        self.stats.seconds += time.perf_counter() - started
        return PendingFrames(pending, self.stats)

    # -- internals ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _run_planes(self, chunk: list[tuple], src, dst):
        from vsr.pipelines.yuv import rgb_to_yuv, yuv_to_rgb

        x = yuv_to_rgb(*self._transfer.upload(chunk), src)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self._transfer.download(rgb_to_yuv(self._network(x).clamp_(0, 1), dst))

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """One batch (N, 3, H, W in [0, 1]) through the model, in tiles when frames exceed ``tile``."""
        self.stats.batches += 1
        if self.tile and (x.shape[-1] > self.tile or x.shape[-2] > self.tile):
            self.stats.tiled_frames += x.shape[0]
            return self.forward_tiled(x)
        return self._forward(x)

    def _auto_tile(self, shape: tuple[int, ...]) -> None:
        """Tile when one frame's activations would not fit in a fair share of device memory."""
        if not self.has_params:
            return
        h, w = shape[0], shape[1]
        channels = max(
            (m.out_channels for m in self.module.modules() if isinstance(m, torch.nn.Conv2d)), default=64
        )
        # Live activations at low resolution plus the pre-shuffle tensors at high resolution, fp32.
        need = h * w * channels * 4 * (8 + 2 * self.scale * self.scale)
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = free * 0.5
        else:
            import os

            budget = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.25
        if need * self.batch_size <= budget:
            return
        if need > budget and self.tileable:
            side = max(2 * self.overlap, int((budget / (channels * 4 * (8 + 2 * self.scale**2))) ** 0.5))
            side = _round_up(side, self.multiple)
            self.tile = side
            self.stats.warnings.append(f"frames too large for memory in one piece: tiling at {side}px")
        self.batch_size = max(1, int(budget // need))
        self.stats.batch_size, self.stats.tile = self.batch_size, self.tile

    def _shrink_after_oom(self, shape: tuple[int, ...]) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.stats.oom_retries += 1
        if self.batch_size > 1:
            self.batch_size //= 2
            self.stats.warnings.append(f"out of memory: batch size lowered to {self.batch_size}")
        else:
            side = min(shape[0], shape[1])
            new_tile = _round_up((self.tile or side) // 2, self.multiple)
            if not self.tileable or new_tile < 2 * self.overlap:
                raise ResourceError(
                    f"out of memory even with {self.tile}px tiles; use --device cpu or a smaller model"
                )
            self.tile = new_tile
            self.stats.warnings.append(f"out of memory: tiling frames at {self.tile}px")
        self.stats.batch_size, self.stats.tile = self.batch_size, self.tile

    def _autocast(self):
        if self.precision == "fp32" or not self.has_params:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.precision])

    def _to_device(self, chunk: list[np.ndarray]) -> tuple[torch.Tensor, float, np.dtype]:
        dtype = chunk[0].dtype
        host = torch.from_numpy(np.stack(chunk))
        if dtype == np.uint16:  # torch has limited uint16 support: move the bits as int32
            host = host.to(torch.int32)
        if self.device.type == "cuda":
            host = host.pin_memory()
        x = host.to(self.device, non_blocking=True)
        peak = 65535.0 if dtype == np.uint16 else 255.0
        x = x.permute(0, 3, 1, 2).float().div_(peak)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, peak, dtype

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = pad_to_requirements(x, self.multiple, self.minimum)
        with self._autocast():
            y = self.module(x).float()
        return y[..., : h * self.scale, : w * self.scale]

    @torch.inference_mode()
    def _run_chunk(self, chunk: list[np.ndarray]) -> list[np.ndarray]:
        x, peak, dtype = self._to_device(chunk)
        y = self._network(x).clamp_(0, 1).mul_(peak).round_()
        y = (
            y.to(torch.int32 if dtype == np.uint16 else torch.uint8)
            .permute(0, 2, 3, 1)
            .contiguous()
            .cpu()
            .numpy()
        )
        return [frame.astype(dtype, copy=False) for frame in y]

    @torch.inference_mode()
    def forward_tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Run ``x`` (N,3,H,W in [0,1]) tile by tile with overlap; equals the untiled result within rounding."""
        n, c, h, w = x.shape
        s, t, o = self.scale, self.tile, self.overlap
        out = torch.empty((n, c, h * s, w * s), device=x.device, dtype=torch.float32)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                ya, xa = max(y0 - o, 0), max(x0 - o, 0)
                yb, xb = min(y1 + o, h), min(x1 + o, w)
                tile_out = self._forward(x[:, :, ya:yb, xa:xb])
                oy, ox = (y0 - ya) * s, (x0 - xa) * s
                out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = tile_out[
                    :, :, oy : oy + (y1 - y0) * s, ox : ox + (x1 - x0) * s
                ]
        return out


@dataclass
class PendingFrames:
    """Planes of a batch on their way back from the device; ``wait()`` returns one (Y, U, V) per frame."""

    parts: list  # PendingPlanes, one per model call (more than one after an out-of-memory backoff)
    stats: UpscalerStats

    def wait(self) -> list[tuple]:
        started = time.perf_counter()
        out = [planes for part in self.parts for planes in part.wait()]
        self.stats.seconds += time.perf_counter() - started  # waiting for the device is model time
        return out


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_to_requirements(x: torch.Tensor, multiple: int = 1, minimum: int = 0) -> torch.Tensor:
    """Pad N,C,H,W at the bottom/right so both sides are >= ``minimum`` and multiples of ``multiple``.

    Reflection (``abc|cb``) as far as the image allows, then edge replication for the rest.
    """
    h, w = x.shape[-2:]
    ph = _round_up(max(h, minimum), multiple) - h
    pw = _round_up(max(w, minimum), multiple) - w
    if not (ph or pw):
        return x
    rh, rw = min(ph, h - 1), min(pw, w - 1)
    x = torch.nn.functional.pad(x, (0, rw, 0, rh), mode="reflect")
    if ph > rh or pw > rw:
        x = torch.nn.functional.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x
