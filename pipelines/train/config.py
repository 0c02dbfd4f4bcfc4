"""Typed training configuration: dataclasses with documented fields and validation.

One ``TrainConfig`` is built (``config_toml.resolve``) from, in increasing
priority, the defaults, the saved config of the run being resumed, a TOML file
and command-line flags.
Every field carries a one-line doc and, where there is one, its flag, so
``vsr train --print-config`` writes a documented TOML file and every
validation message names both the TOML key and the flag.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsr.config import PRECISIONS
from vsr.errors import ConfigError

DATA_KINDS = ("chokepoint", "images", "videos", "patches")
STAGES = ("psnr", "gan")
TASKS = ("sr", "restore")
DOWNSCALE_KERNELS = ("cubic", "linear", "area")
OCCLUSIONS = ("half", "eyes", "block")
COMPILE_MODES = ("auto", "off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _f(default: Any, doc: str, flag: str | None = None, factory: bool = False) -> Any:
    meta = {"doc": doc, "flag": flag}
    if factory:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    """Where samples come from and how HR crops are cut."""

    sources: list[str] = _f(
        list,
        "training data, each 'KIND:PATH' with KIND chokepoint|images|videos|patches"
        " (patches: a 'vsr train prep' folder, held on the device)",
        "--data",
        True,
    )
    val: list[str] = _f(list, "validation data 'KIND:PATH'; empty = split sources by sequence", "--val", True)
    val_fraction: float = _f(
        0.1, "share of sequences/videos/images held out for validation when val is empty"
    )
    val_samples: int = _f(64, "at most this many validation crops per evaluation")
    hr_size: int = _f(128, "HR crop side in pixels (a multiple of the scale)", "--hr-size")
    workers: int = _f(2, "DataLoader worker processes (0 = load in the main process)", "--workers")
    flip: bool = _f(True, "random horizontal flips")
    rot90: bool = _f(False, "random transposes too (with flips: all 8 rotations and mirrors of a crop)")
    pool_size: int = _f(
        1024,
        "patches: JPEG/H.264-degraded samples made on the host at start and drawn at those odds (0 = none)",
    )
    min_face: int = _f(
        24, "skip faces whose box side is smaller than this (pixels): upscaled tiny faces teach blur"
    )
    face_jitter: float = _f(0.05, "random shift/scale of face boxes, as a fraction of the box side")
    frame_every: int = _f(15, "videos (and chokepoint sequences without XML): use every Nth frame")
    frames_per_video: int = _f(100, "videos: at most this many sampled frames per file")
    video_faces: bool = _f(False, "videos: train on detected faces instead of whole-frame patches")
    detector: str = _f(
        "auto", "face detector for sequences without XML and video_faces (see vsr enhance --detector)"
    )


@dataclass
class DegradeConfig:
    """How an HR crop becomes its LR input; each sample draws its own parameters from its seed."""

    kernels: list[str] = _f(lambda: list(DOWNSCALE_KERNELS), "downscale kernels to draw from", factory=True)
    kernel_weights: list[float] = _f(lambda: [2.0, 1.0, 1.0], "relative odds of each kernel", factory=True)
    blur_prob: float = _f(0.3, "probability of a Gaussian blur before downscaling")
    blur_sigma: list[float] = _f(lambda: [0.2, 1.5], "blur sigma range (HR pixels)", factory=True)
    noise_prob: float = _f(0.3, "probability of Gaussian noise after downscaling")
    noise_sigma: list[float] = _f(lambda: [1.0, 10.0], "noise sigma range (of 255)", factory=True)
    jpeg_prob: float = _f(0.3, "probability of JPEG compression (OpenCV)")
    jpeg_quality: list[int] = _f(lambda: [40, 95], "JPEG quality range", factory=True)
    h264_prob: float = _f(0.1, "probability of a real H.264 round trip (libx264 via PyAV)")
    h264_crf: list[int] = _f(lambda: [20, 35], "H.264 CRF range", factory=True)
    occlusion_prob: float = _f(
        0.0,
        "probability of a synthetic occlusion painted on the input (restoration; target stays clean; 0 = off)",
    )
    occlusions: list[str] = _f(lambda: list(OCCLUSIONS), "occlusion kinds: half, eyes, block", factory=True)


@dataclass
class ModelConfig:
    """Generator (SRResNet) and discriminator sizes."""

    blocks: int = _f(16, "generator residual blocks", "--blocks")
    channels: int = _f(64, "generator feature channels", "--channels")
    batch_norm: bool = _f(True, "BatchNorm in the generator's residual blocks")
    disc_channels: int = _f(64, "discriminator width of the first stage")
    disc_stages: int = _f(4, "discriminator stages (each halves the size)")
    disc_batch_norm: bool = _f(True, "BatchNorm in the discriminator's stages after the first (as in SRGAN)")


@dataclass
class OptimConfig:
    """Adam, learning-rate schedule, clipping, EMA."""

    lr: float | None = _f(None, "generator learning rate; unset = 2e-4 for psnr, 1e-4 for gan", "--lr")
    disc_lr: float | None = _f(None, "discriminator learning rate; unset = the generator's")
    betas: list[float] = _f(lambda: [0.9, 0.99], "Adam betas", factory=True)
    weight_decay: float = _f(0.0, "Adam weight decay")
    schedule: str = _f("cosine", "learning-rate schedule after warmup: cosine | multistep | constant")
    warmup_steps: int = _f(0, "linear warmup steps")
    milestones: list[float] = _f(
        lambda: [0.5, 0.75], "multistep: fractions of the steps where lr *= gamma", factory=True
    )
    gamma: float = _f(0.5, "multistep decay factor")
    min_lr_ratio: float = _f(0.01, "cosine: final lr as a fraction of lr")
    grad_clip: float = _f(1.0, "clip gradient norm to this (0 = off)")
    ema_decay: float = _f(0.999, "EMA decay of the released generator weights (0 = off)")


@dataclass
class LossConfig:
    """Pixel, adversarial, feature-matching and (optional) perceptual losses."""

    pixel: str = _f("l1", "pixel loss: l1 | mse")
    pixel_weight: float = _f(1.0, "pixel loss weight")
    adversarial: str = _f("relativistic", "gan stage: vanilla | relativistic (relativistic average, ESRGAN)")
    adv_weight: float = _f(5e-3, "gan stage: adversarial loss weight")
    feature_match_weight: float = _f(1.0, "gan stage: discriminator feature-matching weight")
    vgg_weights: str | None = _f(
        None, "gan stage: VGG19 state dict (.pth/.safetensors) enabling the perceptual loss"
    )
    vgg_layer: str = _f("conv5_4", "perceptual loss layer (convX_Y, before its ReLU)")
    perceptual_weight: float = _f(1.0, "perceptual loss weight (only with vgg_weights)")


@dataclass
class RestoreConfig:
    """Task ``restore`` (face inpainting, ``vsr.pipelines.restore.task``): occlusions and the generator's shape."""

    kinds: list[str] = _f(
        lambda: ["half", "eyes", "mouth", "rect", "strokes"], "occlusion kinds to draw from", factory=True
    )
    kind_weights: list[float] = _f(
        lambda: [3.0, 3.0, 1.0, 1.0, 1.0], "relative odds of each kind", factory=True
    )
    fills: list[str] = _f(lambda: ["solid", "noise", "texture"], "occluder fills to draw from", factory=True)
    grey_prob: float = _f(0.15, "probability of a grey (luma replicated to RGB) training sample")
    jitter: float = _f(0.04, "random shift/scale of the face chip, as a fraction of its side")
    hole_weight: float = _f(6.0, "pixel loss weight inside the mask (outside it is 1)")
    detect: bool = _f(
        True, "place eyes/mouth/half bands on detected landmarks (else the aligned-chip positions)"
    )
    downsamples: int = _f(3, "generator encoder levels (sides must be multiples of 2**downsamples)")
    dilated: int = _f(4, "dilated gated convolutions at the generator's bottleneck")


@dataclass
class TrainConfig:
    """Everything one ``vsr train`` run needs; ``vsr.pipelines.train.loop.train`` runs it."""

    task: str = _f("sr", "sr (super-resolution, SRResNet) or restore (face inpainting, InpaintNet)", "--task")
    scale: int = _f(4, "upscaling factor: 2 or 4 (task sr)", "--scale")
    stage: str = _f("psnr", "psnr (pixel loss only) or gan (adversarial, from a psnr checkpoint)", "--stage")
    init: str | None = _f(
        None, "checkpoint or .safetensors to start the generator from (gan: the psnr run)", "--init"
    )
    steps: int = _f(100_000, "total optimiser steps of the run", "--steps")
    batch_size: int = _f(16, "samples per step", "--batch-size")
    seed: int = _f(
        0, "seed: data order, crops and degradations are a pure function of (seed, step)", "--seed"
    )
    device: str = _f("auto", "auto | cpu | cuda | cuda:N", "--device")
    precision: str = _f(
        "auto", "auto (bf16 on CUDA if supported, else fp32) | fp32 | bf16 | fp16", "--precision"
    )
    out: str = _f("runs/train", "output folder (checkpoints, metrics.csv, samples/, config.toml)", "--out")
    resume: bool = _f(False, "continue from OUT/last.ckpt", "--resume")
    log_every: int = _f(100, "write a metrics.csv row every N steps", "--log-every")
    val_every: int = _f(
        2000, "validate and write a sample grid every N steps (0 = only at the end)", "--val-every"
    )
    save_every: int = _f(5000, "write OUT/last.ckpt and OUT/step_NNNNNNN.ckpt every N steps", "--save-every")
    sample_count: int = _f(4, "rows in each sample grid")
    time_limit: float = _f(
        0.0,
        "wall-clock budget of this command in seconds: steps are planned to end inside it (0 = off;"
        " saved as 0: a saved run is its planned steps)",
        "--time-limit",
    )
    compile: str = _f(
        "auto",
        "torch.compile mode of the generator: auto (default on CUDA, off on CPU) | off | MODE",
        "--compile",
    )
    data: DataConfig = field(default_factory=DataConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    restore: RestoreConfig = field(default_factory=RestoreConfig)

    @property
    def arch(self) -> dict[str, Any]:
        """The generator's architecture dict, as checkpoints and .safetensors metadata store it."""
        m = self.model
        if self.task == "restore":
            r = self.restore
            return {
                "arch": "inpaint",
                "scale": 1,
                "in_channels": 3,
                "channels": m.channels,
                "downsamples": r.downsamples,
                "dilated": r.dilated,
            }
        return {
            "arch": "srresnet",
            "scale": self.scale,
            "blocks": m.blocks,
            "channels": m.channels,
            "batch_norm": m.batch_norm,
        }

    @property
    def lr(self) -> float:
        """The generator's peak learning rate (stage default when unset)."""
        return self.optim.lr if self.optim.lr is not None else (2e-4 if self.stage == "psnr" else 1e-4)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (str, int, float, bool, list, None): safe for TOML and ``weights_only`` checkpoints.

        ``resume`` is written as false and ``time_limit`` as 0: they say how a command ran, not what the run is.
        """
        return {**dataclasses.asdict(self), "resume": False, "time_limit": 0.0}

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` naming the TOML key and flag for any value that cannot work."""
        d, g, m, o, lo = self.data, self.degrade, self.model, self.optim, self.loss
        _check(self.task in TASKS, "task", f"must be sr or restore, got {self.task!r}")
        _check(self.scale in (2, 4), "scale", f"must be 2 or 4, got {self.scale}")
        _check(self.stage in STAGES, "stage", f"must be psnr or gan, got {self.stage!r}")
        for key in ("steps", "batch_size", "log_every", "save_every"):
            _check(getattr(self, key) >= 1, key, f"must be at least 1, got {getattr(self, key)}")
        _check(self.val_every >= 0, "val_every", f"must be 0 or more, got {self.val_every}")
        _check(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        _check(self.compile in COMPILE_MODES, "compile", f"must be one of {', '.join(COMPILE_MODES)}")
        _check(
            self.time_limit >= 0, "time_limit", f"must be 0 (off) or positive seconds, got {self.time_limit}"
        )
        _check(bool(d.sources), "data.sources", "is empty: give at least one --data KIND:PATH")
        for key in ("data.sources", "data.val"):
            for spec in _get(self, key):
                parse_source(spec, key)
        resident = [parse_source(s)[0] == "patches" for s in d.sources]
        _check(
            all(resident) or not any(resident),
            "data.sources",
            "mixes patches: with other kinds; the device-resident patch path takes patches: folders only",
        )
        _check(
            not any(resident) or g.occlusion_prob == 0,
            "degrade.occlusion_prob",
            "must be 0 with patches: data (the device path paints no occlusions); use images:DIR",
        )
        _check(
            d.hr_size >= 8 and d.hr_size % self.scale == 0,
            "data.hr_size",
            f"must be a multiple of the scale ({self.scale}) and at least 8, got {d.hr_size}",
        )
        _check(
            d.hr_size >= 2**m.disc_stages or self.stage == "psnr",
            "data.hr_size",
            f"must be at least 2**model.disc_stages = {2**m.disc_stages} for the discriminator",
        )
        _check(0 <= d.val_fraction < 1, "data.val_fraction", f"must be in [0, 1), got {d.val_fraction}")
        for key in ("data.workers", "data.min_face", "data.val_samples", "data.pool_size"):
            _check(_get(self, key) >= 0, key, f"must be 0 or more, got {_get(self, key)}")
        for key in (
            "data.frame_every",
            "data.frames_per_video",
            "model.blocks",
            "model.channels",
            "model.disc_channels",
            "model.disc_stages",
        ):
            _check(_get(self, key) >= 1, key, f"must be at least 1, got {_get(self, key)}")
        _check(0 <= d.face_jitter < 0.5, "data.face_jitter", f"must be in [0, 0.5), got {d.face_jitter}")
        _check_weighted_choice("degrade.kernels", g.kernels, DOWNSCALE_KERNELS, g.kernel_weights, "kernel")
        for key in ("blur_prob", "noise_prob", "jpeg_prob", "h264_prob", "occlusion_prob"):
            _check(
                0 <= getattr(g, key) <= 1, f"degrade.{key}", f"must be a probability, got {getattr(g, key)}"
            )
        for key, lo_, hi_ in (
            ("blur_sigma", 0, 20),
            ("noise_sigma", 0, 255),
            ("jpeg_quality", 1, 100),
            ("h264_crf", 0, 51),
        ):
            r = getattr(g, key)
            _check(
                len(r) == 2 and lo_ <= r[0] <= r[1] <= hi_,
                f"degrade.{key}",
                f"must be [low, high] within [{lo_}, {hi_}], got {r}",
            )
        _check(
            all(k in OCCLUSIONS for k in g.occlusions) and (bool(g.occlusions) or g.occlusion_prob == 0),
            "degrade.occlusions",
            f"must list kinds from {', '.join(OCCLUSIONS)}, got {g.occlusions}",
        )
        _check(o.lr is None or o.lr > 0, "optim.lr", f"must be positive, got {o.lr}")
        _check(o.disc_lr is None or o.disc_lr > 0, "optim.disc_lr", f"must be positive, got {o.disc_lr}")
        _check(
            len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas),
            "optim.betas",
            f"must be two values in [0, 1), got {o.betas}",
        )
        _check(
            o.schedule in ("cosine", "multistep", "constant"),
            "optim.schedule",
            f"must be cosine, multistep or constant, got {o.schedule!r}",
        )
        _check(o.warmup_steps >= 0, "optim.warmup_steps", f"must be 0 or more, got {o.warmup_steps}")
        _check(
            all(0 < x < 1 for x in o.milestones),
            "optim.milestones",
            f"must be fractions in (0, 1), got {o.milestones}",
        )
        _check(o.grad_clip >= 0, "optim.grad_clip", f"must be 0 (off) or positive, got {o.grad_clip}")
        _check(0 <= o.ema_decay < 1, "optim.ema_decay", f"must be in [0, 1), got {o.ema_decay}")
        _check(lo.pixel in ("l1", "mse"), "loss.pixel", f"must be l1 or mse, got {lo.pixel!r}")
        _check(
            lo.adversarial in ("vanilla", "relativistic"),
            "loss.adversarial",
            f"must be vanilla or relativistic, got {lo.adversarial!r}",
        )
        for key in ("pixel_weight", "adv_weight", "feature_match_weight", "perceptual_weight"):
            _check(getattr(lo, key) >= 0, f"loss.{key}", f"must be 0 or more, got {getattr(lo, key)}")
        _check(
            lo.vgg_weights is None or Path(lo.vgg_weights).is_file(),
            "loss.vgg_weights",
            f"file not found: {lo.vgg_weights}",
        )
        # A resumed run restores the generator from its checkpoint; its init file may be gone by then.
        _check(
            self.init is None or self.resume or Path(self.init).is_file(),
            "init",
            f"file not found: {self.init}",
        )
        if self.task == "restore":
            self._validate_restore()
        return self

    def _validate_restore(self) -> None:
        from vsr.pipelines.restore.occlusion import FILLS, KINDS

        r = self.restore
        _check_weighted_choice("restore.kinds", r.kinds, KINDS, r.kind_weights, "kind")
        _check(
            bool(r.fills) and all(f in FILLS for f in r.fills),
            "restore.fills",
            f"must be a non-empty list of {', '.join(FILLS)}, got {r.fills}",
        )
        _check(0 <= r.grey_prob <= 1, "restore.grey_prob", f"must be a probability, got {r.grey_prob}")
        _check(0 <= r.jitter < 0.5, "restore.jitter", f"must be in [0, 0.5), got {r.jitter}")
        _check(r.hole_weight >= 0, "restore.hole_weight", f"must be 0 or more, got {r.hole_weight}")
        _check(r.downsamples >= 1, "restore.downsamples", f"must be at least 1, got {r.downsamples}")
        _check(r.dilated >= 0, "restore.dilated", f"must be 0 or more, got {r.dilated}")
        side = 2**r.downsamples
        _check(
            self.data.hr_size % side == 0 and self.data.hr_size >= 2**self.model.disc_stages,
            "data.hr_size",
            f"must be a multiple of 2**restore.downsamples = {side} (and at least 2**model.disc_stages)"
            f" for task restore, got {self.data.hr_size}",
        )


def _get(cfg: TrainConfig, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def flag_of(key: str) -> str | None:
    """The command-line flag of a dotted config key, if it has one."""
    cls: Any = TrainConfig
    *parents, leaf = key.split(".")
    for part in parents:
        cls = typing.get_type_hints(cls)[part]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return fields[leaf].metadata.get("flag") if leaf in fields else None


def key_label(key: str) -> str:
    """'data.hr_size (--hr-size)': how messages name a setting."""
    flag = flag_of(key)
    return f"{key} ({flag})" if flag else key


def _check_weighted_choice(
    key: str, chosen: list[str], allowed: tuple[str, ...], weights: list[float], what: str
) -> None:
    """A non-empty list of allowed names (``key``) and one non-negative weight each (``key``'s ``_weights``)."""
    _check(
        bool(chosen) and all(c in allowed for c in chosen),
        key,
        f"must be a non-empty list of {', '.join(allowed)}, got {chosen}",
    )
    _check(
        len(weights) == len(chosen) and all(w >= 0 for w in weights) and sum(weights) > 0,
        f"{key[:-1]}_weights",  # degrade.kernels -> degrade.kernel_weights
        f"needs one non-negative weight per {what}, not all zero",
    )


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key_label(key)} {message}")


def parse_source(spec: str, key: str = "data.sources") -> tuple[str, Path]:
    """'KIND:PATH' -> (kind, path), with a ConfigError naming the flag for a bad spec."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in DATA_KINDS or not path:
        raise ConfigError(
            f"{key_label(key)}: {spec!r} is not KIND:PATH with KIND one of {', '.join(DATA_KINDS)}"
        )
    return kind, Path(path)
