"""Training data at GPU speed: patch tiles decoded once into a uint8 tensor on the device, degraded there.

Used for ``--data patches:DIR`` sources (``vsr train prep`` folders).  Per step the host draws every
random choice of the batch (vectorised, a few microseconds), sends them in one small pinned copy, and
the device cuts the crops, flips/transposes them, blurs (separable Gaussian, per-sample sigma),
downscales (the MATLAB-style cubic/linear kernels of ``vsr.models.resample`` as matrices, or area
averaging) and adds noise, all without a host sync.  JPEG and H.264 have no batched device codec
with per-sample quality, so a pool of ``data.pool_size`` samples is degraded on the host cores at
start with the CPU path's own ``degrade`` (real JPEG via OpenCV, real H.264 via PyAV), and a batch
slot draws from the pool at the odds a CPU sample would be compressed.

The seeded-sample contract, against the CPU path (``data.TrainSamples``):
- which tile a sample position reads is the same function of (seed, position) (``EpochOrder``);
- its crop, flips and degradation parameters are a pure function of (seed, position), from a
  counter-based stream (not the CPU path's per-sample numpy generator, so not the same values);
- the noise *pattern* comes from a device generator seeded by (seed, the step's first position):
  it depends on the batch size too, and on CUDA on the kernels chosen;
- compressed samples are pool entries (``pool_size`` of them, fixed at start, each reused), not
  fresh draws; a run with the same seed and batch size resumes bit-identically on the CPU.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.util
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vsr.errors import ConfigError, DataError
from vsr.pipelines.train.config import TrainConfig, key_label, parse_source
from vsr.pipelines.train.data import EpochOrder, Item, UnreadableImage, read_rgb

# Stream numbers, distinct from data.py's (_TRAIN, _VAL, _ORDER = 0, 1, 2).
_FAST, _POOL, _NOISE = 3, 4, 5
# Columns of the per-sample uniform draws.
_Y, _X, _FLIP, _ROT, _BLUR, _BLUR_SIGMA, _KERNEL, _NOISE_ON, _NOISE_SIGMA, _GREY, _COMPRESS, _PICK = range(12)
_MASK64 = (1 << 64) - 1


def is_resident(cfg: TrainConfig) -> bool:
    """Whether a run's training data takes this path (every source is ``patches:``; validated)."""
    return bool(cfg.data.sources) and all(parse_source(s)[0] == "patches" for s in cfg.data.sources)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, stream: int, positions: np.ndarray, columns: int) -> np.ndarray:
    """(len(positions), columns) floats in [0, 1): a pure function of (seed, stream, position, column)."""
    with np.errstate(over="ignore"):
        key = _mix64(np.array([(seed * 0x9E3779B97F4A7C15 + stream) & _MASK64], np.uint64))
        pos = positions.astype(np.uint64)[:, None] * np.uint64(columns) + np.arange(columns, dtype=np.uint64)
        bits = _mix64(_mix64(pos ^ key) + key)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def noise_seed(seed: int, position: int) -> int:
    """The device noise generator's seed for the step whose first sample is at ``position``."""
    return int(uniforms(seed, _NOISE, np.array([position]), 1)[0, 0] * 2**62)


def resize_matrix(in_len: int, out_len: int, kernel: str, antialias: bool = True) -> torch.Tensor:
    """(out_len, in_len) matrix of ``vsr.models.resample``'s weights: one axis resized as a matrix product."""
    from vsr.models.resample import contributions

    idx, w = contributions(in_len, out_len, kernel, antialias)
    m = torch.zeros(out_len, in_len, dtype=torch.float64)
    rows = torch.arange(out_len)[:, None].expand_as(idx)
    m.index_put_((rows.reshape(-1), idx.reshape(-1)), w.double().reshape(-1), accumulate=True)
    return m.float()


def gaussian_taps(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, 2 radius + 1) normalised Gaussian taps; sigma 0 gives the identity (a delta)."""
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    s = sigma.clamp(min=1e-3)[:, None]
    taps = torch.exp(-0.5 * (t[None, :] / s) ** 2)
    return taps / taps.sum(dim=1, keepdim=True)


def load_tiles(items: list[Item], workers: int | None = None) -> np.ndarray:
    """Decode every tile once (threads: OpenCV releases the GIL): (N, S, S, 3) uint8."""
    paths = [Path(i.path) for i in items]

    def read(path: Path) -> np.ndarray:
        try:
            return read_rgb(path)
        except UnreadableImage:
            raise DataError(f"patch {path} cannot be decoded; run 'vsr train prep' again") from None

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or min(16, os.cpu_count() or 1)) as ex:
        tiles = list(ex.map(read, paths))
    shape = tiles[0].shape
    for path, tile in zip(paths, tiles, strict=True):
        if tile.shape != shape or shape[0] != shape[1]:
            raise DataError(
                f"patch {path} is {tile.shape[1]}x{tile.shape[0]}, the set's tiles are {shape[1]}x{shape[0]}"
            )
    return np.stack(tiles)


def _single_thread() -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _degrade_one(job: tuple) -> np.ndarray:
    """A pool worker: the CPU path's ``degrade`` of one crop with its own seeded generator."""
    from vsr.pipelines.train.degrade import degrade

    hr, scale, dcfg, seeds = job
    return degrade(hr, scale, dcfg, np.random.default_rng(list(seeds))).lr


class ResidentPatches:
    """The training set of a ``patches:`` run, held on ``device``; ``batches`` yields the loop's batches."""

    def __init__(self, items: list[Item], cfg: TrainConfig, device: torch.device, notes: list[str]) -> None:
        self.cfg, self.device, self.count = cfg, device, len(items)
        host = load_tiles(items)
        self.tile = host.shape[1]
        size = cfg.data.hr_size
        if size > self.tile:
            raise ConfigError(
                f"{key_label('data.hr_size')} {size} is larger than the patches ({self.tile} px); "
                "use a smaller crop or prep bigger patches"
            )
        self.order = EpochOrder(cfg.seed, self.count)
        self.tiles = torch.from_numpy(host).to(device)  # (N, S, S, 3) uint8
        g = cfg.degrade
        self.kernels = list(g.kernels)
        w = np.asarray(g.kernel_weights, np.float64)
        self.kernel_cdf = np.cumsum(w / w.sum())
        lr_size = size // cfg.scale
        self.matrices = {
            k: resize_matrix(size, lr_size, k).to(device) for k in self.kernels if k in ("cubic", "linear")
        }
        self.blur_radius = max(1, int(np.ceil(3 * g.blur_sigma[1])))
        self.pool_hr, self.pool_lr, self.compress_prob = self._make_pool(host, notes)

    def __len__(self) -> int:
        return self.count

    # ---- the pool of JPEG/H.264-degraded samples ----

    def _make_pool(self, host: np.ndarray, notes: list[str]):
        cfg, g = self.cfg, self.cfg.degrade
        p_jpeg, p_h264 = g.jpeg_prob, g.h264_prob
        if p_h264 > 0 and importlib.util.find_spec("av") is None:
            notes.append("PyAV is not installed: the patch path's pool has no H.264 samples (JPEG only)")
            p_h264 = 0.0
        compress = 1 - (1 - p_jpeg) * (1 - p_h264)
        n = cfg.data.pool_size
        if n == 0 or compress == 0:
            return None, None, 0.0
        jpeg_only = dataclasses.replace(g, jpeg_prob=1.0, h264_prob=0.0)
        h264_only = dataclasses.replace(g, jpeg_prob=0.0, h264_prob=1.0)
        jobs, crops = [], []
        for j in range(n):
            u = uniforms(cfg.seed, _POOL, np.array([j]), 6)[0]
            crop = self._host_crop(host, u)
            crops.append(crop)
            kind = jpeg_only if u[5] * (p_jpeg + p_h264) < p_jpeg else h264_only
            jobs.append((crop, cfg.scale, kind, (cfg.seed, _POOL, j)))
        workers = cfg.data.workers
        if workers:
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_single_thread
            ) as ex:
                lrs = list(ex.map(_degrade_one, jobs, chunksize=max(1, n // (4 * workers))))
        else:
            lrs = [_degrade_one(job) for job in jobs]
        hr = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous().to(self.device)
        lr = torch.from_numpy(np.stack(lrs)).permute(0, 3, 1, 2).contiguous().to(self.device)
        return hr, lr, compress

    def _host_crop(self, host: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A pool crop: tile, offset, flip, transpose from four uniforms."""
        size, span = self.cfg.data.hr_size, self.tile - self.cfg.data.hr_size + 1
        tile = host[min(int(u[0] * self.count), self.count - 1)]
        y, x = int(u[1] * span), int(u[2] * span)
        crop = tile[y : y + size, x : x + size]
        if self.cfg.data.flip and u[3] < 0.5:
            crop = crop[:, ::-1]
        if self.cfg.data.rot90 and u[4] < 0.5:
            crop = crop.transpose(1, 0, 2)
        return np.ascontiguousarray(crop)

    # ---- per-step draws (host) and the batch (device) ----

    def draws(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ints (B, 8), floats (B, 2)) for sample positions: every random choice of the batch."""
        cfg, g = self.cfg, self.cfg.degrade
        u = uniforms(cfg.seed, _FAST, positions, 12)
        span = self.tile - cfg.data.hr_size + 1
        item = np.array([self.order(int(p)) for p in positions], np.int64)
        flip = (u[:, _FLIP] < 0.5) & cfg.data.flip
        rot = (u[:, _ROT] < 0.5) & cfg.data.rot90
        kernel = np.searchsorted(self.kernel_cdf, u[:, _KERNEL], side="right").clip(0, len(self.kernels) - 1)
        blur = np.where(
            u[:, _BLUR] < g.blur_prob,
            g.blur_sigma[0] + u[:, _BLUR_SIGMA] * (g.blur_sigma[1] - g.blur_sigma[0]),
            0,
        )
        noise = np.where(
            u[:, _NOISE_ON] < g.noise_prob,
            g.noise_sigma[0] + u[:, _NOISE_SIGMA] * (g.noise_sigma[1] - g.noise_sigma[0]),
            0,
        )
        grey = u[:, _GREY] < 0.5
        pool = self.pool_hr is not None
        use_pool = (u[:, _COMPRESS] < self.compress_prob) & pool
        pick = (u[:, _PICK] * (len(self.pool_hr) if pool else 1)).astype(np.int64)
        ints = np.stack(
            [
                item,
                (u[:, _Y] * span).astype(np.int64),
                (u[:, _X] * span).astype(np.int64),
                flip,
                rot,
                kernel,
                grey,
                np.where(use_pool, pick, -1),
            ],
            axis=1,
        ).astype(np.int64)
        return ints, np.stack([blur, noise], axis=1).astype(np.float32)

    def _send(self, array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(array)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    def batch(self, positions: np.ndarray, generator: torch.Generator) -> dict:
        """The batch of these sample positions, made on the device (no host sync)."""
        ints_np, floats_np = self.draws(positions)
        ints, floats = self._send(ints_np), self._send(floats_np)
        size, scale = self.cfg.data.hr_size, self.cfg.scale
        ar = torch.arange(size, device=self.device)
        rows = ints[:, 1, None] + ar[None, :]
        cols = ints[:, 2, None] + ar[None, :]
        hr = self.tiles[ints[:, 0, None, None], rows[:, :, None], cols[:, None, :]]  # (B, S, S, 3)
        hr = hr.permute(0, 3, 1, 2).float()
        view = (-1, 1, 1, 1)
        hr = torch.where(ints[:, 3].bool().view(view), hr.flip(-1), hr)
        hr = torch.where(ints[:, 4].bool().view(view), hr.transpose(-1, -2), hr)
        x = hr
        if (floats_np[:, 0] > 0).any():
            x = self._blur(x, floats[:, 0])
        lr = None
        for k, name in enumerate(self.kernels):
            if not (ints_np[:, 5] == k).any():
                continue
            if name == "area":
                down = F.avg_pool2d(x, scale)
            else:
                m = self.matrices[name]
                down = torch.matmul(torch.matmul(m, x), m.T)
            down = down.clamp(0, 255).round()
            lr = down if lr is None else torch.where((ints[:, 5] == k).view(view), down, lr)
        assert lr is not None
        if (floats_np[:, 1] > 0).any():
            n = torch.randn(lr.shape, generator=generator, device=self.device)
            n = torch.where(ints[:, 6].bool().view(view), n[:, :1].expand_as(n), n)
            lr = (lr + n * floats[:, 1].view(view)).clamp(0, 255).round()
        if self.pool_hr is not None and (ints_np[:, 7] >= 0).any():
            use = (ints[:, 7] >= 0).view(view)
            pick = ints[:, 7].clamp(min=0)
            hr = torch.where(use, self.pool_hr[pick].float(), hr)
            lr = torch.where(use, self.pool_lr[pick].float(), lr)
        return {
            "lr": lr / 255,
            "hr": hr / 255,
            "mask": torch.zeros((len(positions), 1, size, size), device=self.device),
            "skipped": [],
        }

    def _blur(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian with per-sample sigma (reflect borders, as OpenCV's BORDER_REFLECT_101), rounded."""
        b, c, h, w = x.shape
        r = self.blur_radius
        taps = gaussian_taps(sigma, r).repeat_interleave(c, dim=0)  # (B*C, K)
        y = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
        y = F.conv2d(y, taps[:, None, :, None], groups=b * c)
        y = F.conv2d(y, taps[:, None, None, :], groups=b * c)
        return y.reshape(b, c, h, w).clamp(0, 255).round()

    def batches(self, position: int, steps: int, batch_size: int) -> Iterator[dict]:
        """``steps`` batches starting at sample ``position`` (the loop stops early at its planned end)."""
        generator = torch.Generator(device=self.device)
        for step in range(steps):
            first = position + step * batch_size
            generator.manual_seed(noise_seed(self.cfg.seed, first))
            yield self.batch(np.arange(first, first + batch_size), generator)
