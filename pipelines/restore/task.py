"""``vsr train --task restore``: face inpainting as a task of the one training loop.

The loop (``vsr.pipelines.train.loop``) keeps data order, optimisers, EMA, checkpoints, resume,
progress, metrics.csv and export; this task supplies:

- the batch maker: the whole face chip resized to ``data.hr_size`` (randomly shifted/scaled by
  ``restore.jitter`` and flipped when training, some samples grey), then one synthetic occlusion
  (``occlusion.occlude``, placed on the detector's landmarks of the chip); tensors ``input``
  (occluded), ``mask`` (1 = missing) and ``hr`` (the clean chip);
- ``InpaintNet`` and a ``PatchDiscriminator`` that sees image + mask;
- the pixel loss, weighted ``restore.hole_weight`` inside the mask, and the discriminator's
  inputs: the clean chip vs the prediction composited into the known pixels;
- the collapse guards for metrics.csv: ``div_ratio`` (per step) and ``val_div`` (validation):
  the mean pairwise distance between different people's restored regions over that between their
  true regions, 1 = as varied as real faces, near 0 = the same output for everyone.
  Discriminator accuracy (``d_acc_real``, ``d_acc_fake``) is logged by the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from vsr.pipelines.restore.occlusion import make_mask, occlude
from vsr.pipelines.train.config import TrainConfig
from vsr.pipelines.train.data import UnreadableImage
from vsr.pipelines.train.data import _to_tensor as _tensor
from vsr.pipelines.train.validate import _to_uint8 as _uint8

Batch = dict[str, torch.Tensor]
PLACED_KINDS = ("half", "eyes", "mouth")


def to_chip(image: np.ndarray, size: int) -> np.ndarray:
    """An aligned face image resized to the model's side (area interpolation), RGB uint8."""
    interp = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def diversity_ratio(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean pairwise L1 distance of outputs over the mask overlap of each pair, over the targets' (no grad)."""
    with torch.no_grad():
        m = mask[:, 0]
        inter = m[:, None] * m[None]
        d_out = (out[:, None] - out[None]).abs().mean(2)
        d_true = (target[:, None] - target[None]).abs().mean(2)
        return (d_out * inter).sum() / (d_true * inter).sum().clamp_min(1e-8)


def _luma_rgb(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[:, :, None], 3, axis=2)


class RestoreTask:
    """Face inpainting: (occluded image, mask) -> InpaintNet -> compared with the clean chip."""

    name = "restore"
    gan_needs_init = False  # L1 + adversarial from the first step is the recipe

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self._landmarks: dict[int, np.ndarray | None] = {}  # per item, on the unjittered chip
        self._detector: Any = None

    # ---- the batch maker ----
    def sample_maker(self):
        return self.make_sample

    def _chip_landmarks(self, index: int, chip: np.ndarray) -> np.ndarray | None:
        if not self.cfg.restore.detect:
            return None
        if index not in self._landmarks:
            from vsr.pipelines.restore.occlusion import detect_landmarks
            from vsr.pipelines.train.data import make_detector

            if self._detector is None:
                # Chips are small and the face fills them: no 2x upsampling (6 ms instead of ~100 ms a
                # chip here, every face of a 104-chip sample of faces/train still found).
                self._detector = make_detector(self.cfg.data.detector, "restore.detect is on", upsample=1)
            self._landmarks[index] = detect_landmarks(self._detector, chip)
        return self._landmarks[index]

    def make_sample(
        self, dataset, index: int, image: np.ndarray, rng: np.random.Generator, train: bool
    ) -> dict:
        size, r = self.cfg.data.hr_size, self.cfg.restore
        chip = to_chip(image, size)
        landmarks = self._chip_landmarks(index, chip)
        if train and r.jitter > 0:
            ds, dx, dy = rng.uniform(-r.jitter, r.jitter, size=3)
            k = 1 + ds
            c = (size - 1) / 2
            m = np.float32([[k, 0, c - k * c + dx * size], [0, k, c - k * c + dy * size]])
            chip = cv2.warpAffine(
                chip, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
            )
            if landmarks is not None:
                landmarks = landmarks @ m[:, :2].T + m[:, 2]
        if train and self.cfg.data.flip and rng.random() < 0.5:
            chip = np.ascontiguousarray(chip[:, ::-1])
            if landmarks is not None:
                landmarks = landmarks[[1, 0, 2, 4, 3]] * np.float32([-1, 1]) + np.float32([size - 1, 0])
        if rng.random() < r.grey_prob:
            chip = _luma_rgb(chip)
        weights = np.asarray(r.kind_weights, np.float64)
        kind = r.kinds[int(rng.choice(len(r.kinds), p=weights / weights.sum()))]
        fill = r.fills[int(rng.integers(len(r.fills)))]
        texture = None
        if fill == "texture" and len(dataset.items) > 1:
            other = (index + 1 + int(rng.integers(len(dataset.items) - 1))) % len(dataset.items)
            try:
                texture = dataset.image_at(other)
            except UnreadableImage:
                texture = None
        occ = occlude(chip, kind, rng, landmarks if kind in PLACED_KINDS else None, fill, texture)
        return {
            "input": _tensor(occ.image),
            "mask": torch.from_numpy(occ.mask.astype(np.float32))[None],
            "hr": _tensor(chip),
        }

    # ---- networks ----
    def generator(self) -> torch.nn.Module:
        from vsr.models.registry import build_model

        return build_model(self.cfg.arch, 1)

    def discriminator(self) -> torch.nn.Module:
        from vsr.models.inpaint import PatchDiscriminator

        m = self.cfg.model
        return PatchDiscriminator(3, m.disc_channels, m.disc_stages)

    # ---- the step ----
    def forward(self, gen: torch.nn.Module, batch: Batch) -> torch.Tensor:
        return gen(batch["input"], batch["mask"])

    def pixel_loss(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        m, hr = batch["mask"], batch["hr"]
        diff = (out - hr).abs() if self.cfg.loss.pixel == "l1" else (out - hr) ** 2
        channels = out.shape[1]
        hole = (diff * m).sum() / (m.sum() * channels).clamp_min(1)
        valid = (diff * (1 - m)).sum() / ((1 - m).sum() * channels).clamp_min(1)
        w = self.cfg.restore.hole_weight
        return (w * hole + valid) / (w + 1)

    def disc_inputs(self, out: torch.Tensor, batch: Batch) -> tuple[tuple, tuple]:
        from vsr.models.inpaint import composite

        m = batch["mask"]
        return (batch["hr"], m), (composite(batch["hr"], out, m), m)

    def guards(self, out: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return {"div_ratio": diversity_ratio(out, batch["hr"], batch["mask"])}

    # ---- validation ----
    @torch.no_grad()
    def _restore(
        self, ema: torch.nn.Module, inp: torch.Tensor, mask: torch.Tensor, batch_size: int
    ) -> torch.Tensor:
        from vsr.models.inpaint import composite

        device = next(ema.parameters()).device
        outs = []
        for i in range(0, len(inp), batch_size):
            x, m = inp[i : i + batch_size].to(device), mask[i : i + batch_size].to(device)
            outs.append(composite(x, ema(x, m).float(), m).cpu())
        return torch.cat(outs)

    def validate(self, ema: torch.nn.Module, val: Batch, batch_size: int) -> dict[str, float]:
        """val_psnr/val_ssim (whole chip), val_psnr_masked/val_ssim_masked (inside the mask), val_div."""
        from vsr.pipelines.restore.measure import measure

        was_training = ema.training
        ema.eval()
        out = self._restore(ema, val["input"], val["mask"], batch_size)
        sums: dict[str, float] = {}
        for o, h, m in zip(_uint8(out), _uint8(val["hr"]), val["mask"][:, 0].numpy() > 0.5, strict=True):
            for k, v in measure(o, h, m).items():
                sums[f"val_{k}"] = sums.get(f"val_{k}", 0.0) + min(v, 100.0)
        result = {k: v / len(out) for k, v in sums.items()}
        # Collapse guard: one eye band (aligned-chip position) for every validation face.
        size = val["hr"].shape[-1]
        band, _, _ = make_mask("eyes", (size, size), np.random.default_rng([self.cfg.seed, 7]))
        band_t = torch.from_numpy(band.astype(np.float32))[None, None].expand(len(out), 1, size, size)
        same = self._restore(ema, val["hr"] * (1 - band_t), band_t, batch_size)
        result["val_div"] = float(diversity_ratio(same, val["hr"], band_t))
        ema.train(was_training)
        return result

    def val_line(self, val: dict[str, float]) -> str:
        return (
            f"val PSNR in the mask {val['val_psnr_masked']:.2f} dB (whole {val['val_psnr']:.2f}),"
            f" SSIM in the mask {val['val_ssim_masked']:.4f}, diversity {val['val_div']:.2f}"
        )

    @torch.no_grad()
    def sample_grid(self, path: Path, ema: torch.nn.Module, batch: Batch, k: int) -> None:
        """occluded | restored | original, one row per sample."""
        from vsr.pipelines.train.validate import write_columns_png

        was_training = ema.training
        ema.eval()
        out = self._restore(ema, batch["input"][:k], batch["mask"][:k], k)
        ema.train(was_training)
        write_columns_png(path, [batch["input"][:k].cpu(), out.clamp(0, 1), batch["hr"][:k].cpu()])
