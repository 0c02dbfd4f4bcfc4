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

``compile=True`` runs whole-frame batches through ``torch.compile`` at one fixed shape per stream: a short
last batch is filled up to the batch size, so the network compiles once; tiles and any other shape run
eagerly.  Compiling is an optimisation, never a requirement: any failure, or an out-of-memory backoff,
leaves the rest of the run eager, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from vsr.errors import ResourceError, one_line
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
    compiled_batches: int = 0  # batches run by the compiled network (``compile=True``)
    compile_seconds: float = 0.0  # the first compiled call: tracing, code generation and that batch
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
        compile: bool = False,
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
        self.compile = compile  # still wanted: a compile failure or an out-of-memory backoff clears it
        self._compiled: tuple | None = None  # (compiled module, the (shape, dtype) it was compiled for)
        # The compiled module sees one memory layout (it is specialised on strides too): channels_last unless
        # the model opts out.  That is the layout of the host path's frames (HWC arrays, permuted) and of
        # the device path's on CUDA; on a CPU it is also the faster one (2x8 SRResNet, 480x270 x4, batch 2:
        # 3.4 fps compiled against 2.35 fps with NCHW input).
        learned_layout = self.has_params and getattr(module, "channels_last", True)
        self._layout = torch.channels_last if learned_layout else torch.contiguous_format

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
        if self.compile:
            return self._forward_compiled(x)
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
        if self.compile:  # a smaller batch is another shape: compiling it again would cost more memory
            self.compile, self._compiled = False, None
            self.stats.warnings.append("out of memory: the model runs uncompiled from now on")
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

    def _forward(self, x: torch.Tensor, network=None) -> torch.Tensor:
        """``x`` through ``network`` (default: the eager module), padded to its needs and cropped back."""
        h, w = x.shape[-2:]
        x = pad_to_requirements(x, self.multiple, self.minimum)
        with self._autocast():
            y = (self.module if network is None else network)(x).float()
        return y[..., : h * self.scale, : w * self.scale]

    def _forward_compiled(self, x: torch.Tensor) -> torch.Tensor:
        """An untiled batch through the compiled module, at the one shape it was compiled for.

        A short batch is filled up with copies of its last frame (their outputs dropped), so a stream
        compiles once, not once per odd batch; any other shape runs eagerly.  The first call compiles
        (here, not lazily later), and if compiling or running the compiled module fails in any way but out
        of memory, this batch and the rest of the run go eagerly, with one warning.
        """
        n = x.shape[0]
        key = ((max(n, self.batch_size), *x.shape[1:]), x.dtype)
        if self._compiled is not None and key != self._compiled[1]:
            return self._forward(x)
        full = _fill_batch(x, self.batch_size, self._layout)
        first, started, failure = self._compiled is None, time.perf_counter(), None
        try:
            if first:
                network = torch.compile(self.module, dynamic=False, mode=compile_mode(self.device))
                with _fail_at_recompile_limit():
                    y = self._forward(full, network)
                self._compiled = (network, key)
            else:
                with _no_recompiles():
                    y = self._forward(full, self._compiled[0])
        except torch.OutOfMemoryError:
            raise  # the caller's backoff halves the batch (and stops compiling)
        except Exception as exc:  # noqa: BLE001 - a compiler's failure must never fail a run
            failure = exc
        if first:  # a failed compile took its time too
            self.stats.compile_seconds += time.perf_counter() - started
        if failure is not None:
            self.compile, self._compiled = False, None
            reason = (
                f"this process has compiled {type(self.module).__name__} "
                f"{getattr(torch._dynamo.config, 'recompile_limit', '?')} times, torch's recompile limit"
                if _recompile_limit_hit(failure)
                else _reason(failure)
            )
            self.stats.warnings.append(f"torch.compile failed, the model runs uncompiled: {reason}")
            return self._forward(x)
        self.stats.compiled_batches += 1
        return y[:n]

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


def compile_mode(device: torch.device) -> str:
    """The ``torch.compile`` mode for ``device``: inductor's default everywhere.

    What a super-resolution network gains from compiling is fused epilogues (bias, PReLU, residual adds,
    the output cast) around a few large convolutions per batch, each far longer than its launch, so CUDA
    graphs ("reduce-overhead") buy little; and they replay into static output buffers that the next call
    overwrites, while the device frame path keeps a batch's output in flight (YUV conversion, download)
    as the next batch runs, so every output would have to be cloned.  "max-autotune" searches kernels for
    minutes, which ``--compile auto`` (on for every CUDA run) must not make every user pay; the default
    mode keeps cuDNN's convolutions.  On a CPU compiling is only ever asked for, never automatic
    (``vsr.pipelines.device.resolve_compile`` has the measurement).  Unmeasured on a GPU so far.
    """
    return "default"


def _fill_batch(x: torch.Tensor, n: int, layout: torch.memory_format) -> torch.Tensor:
    """``x`` (N,C,H,W) with its last frame repeated up to ``n`` frames, in memory ``layout``."""
    if x.shape[0] < n:
        x = torch.cat([x, x[-1:].expand(n - x.shape[0], *x.shape[1:])])
    return x.contiguous(memory_format=layout)


def _fail_at_recompile_limit():
    """Around the first compiled call: torch compiles one code object (the network class's ``forward``) at
    most ``recompile_limit`` (8) times per process, then runs it eagerly with a log warning; a batch worker
    that met that many resolutions would report eager batches as compiled.  Here reaching the limit raises
    (the caller falls back, with a warning saying why) and torch's own multi-line warning is held back."""
    config = torch._dynamo.config
    if not hasattr(config, "fail_on_recompile_limit_hit"):  # an older torch: the limit stays silent
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(config.patch(fail_on_recompile_limit_hit=True))
    log = logging.getLogger("torch._dynamo.convert_frame")
    level = log.level
    log.setLevel(logging.ERROR)
    stack.callback(log.setLevel, level)
    return stack


def _recompile_limit_hit(exc: BaseException) -> bool:
    return any(type(e).__name__ == "FailOnRecompileLimitHit" for e in _chain(exc))


def _chain(exc: BaseException | None):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _no_recompiles():
    """Around later compiled calls: a guard that fails raises (and the caller falls back) instead of
    compiling again behind the caller's back.  torch < 2.6 has no stances: nothing to enter."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    return set_stance("fail_on_recompile") if set_stance else contextlib.nullcontext()


def _reason(exc: BaseException) -> str:
    """The first line of a compiler's error (they run to pages), short enough for a warning."""
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    reason = one_line(Exception(first))
    return reason if len(reason) <= 200 else reason[:197] + "..."


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
