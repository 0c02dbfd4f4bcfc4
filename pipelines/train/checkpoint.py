"""Trainer checkpoints: plain dicts, written atomically, read with ``weights_only=True``.

Layout of a checkpoint (``OUT/last.ckpt``, ``OUT/step_NNNNNNN.ckpt``)::

    format       1
    step         optimiser steps completed
    arch         {"arch": "srresnet", "scale", "blocks", "channels", "batch_norm"}
    config       TrainConfig.to_dict() of the run that wrote it
    params       generator state dict (parameters and BatchNorm buffers)
    params_ema   EMA generator state dict (what ``vsr train export`` releases)
    disc         discriminator state dict (gan stage) or None
    optimizers   {"g": Adam state, "d": Adam state or None}
    schedule     {"kind", "lr"}: the lr is a pure function of the step, nothing else to restore
    scaler       GradScaler state (fp16) or None
    rng          {"torch", "cuda", "numpy", "python"} generator states
    data         {"position": next sample position, "seed", "items", "skipped"}
    val          last validation metrics (may be empty)

A write goes to a temporary file beside the target, is fsynced, then renamed
over it: Ctrl-C or a full disk leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vsr.errors import ConfigError, OutputError, ResourceError, WeightsError
from vsr.pipelines.train.config import TrainConfig, key_label

FORMAT = 1
# Changing these makes a checkpoint unusable for --resume.
INCOMPATIBLE = (
    "task",
    "scale",
    "stage",
    "model.blocks",
    "model.channels",
    "model.batch_norm",
)
INCOMPATIBLE_RESTORE = ("restore.downsamples", "restore.dilated")
INCOMPATIBLE_GAN = ("model.disc_channels", "model.disc_stages")
# Changing these still resumes, but the run is no longer identical to an uninterrupted one.
INEXACT = (
    "seed",
    "batch_size",
    "data.hr_size",
    "data.sources",
    "data.val",
    "degrade",
    "loss",
    "optim",
    "restore",
)


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (temp file beside it, fsync, rename)."""
    from vsr.atomic import atomic_path

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(state, f)
    except BaseException as exc:  # KeyboardInterrupt included: atomic_path never leaves a partial file
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ResourceError(f"disk full while writing {path}; the previous checkpoint is intact") from exc
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write checkpoint {path} ({exc.strerror or exc})") from exc
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a trainer checkpoint (``weights_only=True``), checking it is one."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # pickle, zip and torch errors for a damaged file
        raise WeightsError(f"{path}: not a readable trainer checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or not {"arch", "params", "step", "config"} <= ckpt.keys():
        raise WeightsError(f"{path}: not a vsr trainer checkpoint (needs arch, params, step, config)")
    return ckpt


def saved_config(out: Path) -> dict[str, Any]:
    """The config of the run in ``out`` (from ``out/last.ckpt``), the base that ``--resume`` overrides."""
    last = out / "last.ckpt"
    if not last.is_file():
        raise ConfigError(f"{key_label('resume')}: no checkpoint to resume at {last}")
    return load_checkpoint(last)["config"]


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_resume(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> list[str]:
    """Raise ConfigError naming the key if ``cfg`` cannot continue the run ``saved`` came from; else warnings."""
    old, new = {"task": "sr", **_flat(saved)}, _flat(cfg.to_dict())  # runs from before tasks were sr
    keys = INCOMPATIBLE + (INCOMPATIBLE_GAN if cfg.stage == "gan" else ())
    keys += INCOMPATIBLE_RESTORE if cfg.task == "restore" else ()
    for key in keys:
        if old.get(key) != new.get(key):
            raise ConfigError(
                f"--resume: {path} was trained with {key_label(key)} = {old.get(key)!r} but this run has "
                f"{new.get(key)!r}; use the same value or a new --out"
            )
    changed = sorted(
        k
        for k in new
        if k in old and old[k] != new[k] and any(k == p or k.startswith(p + ".") for p in INEXACT)
    )
    if changed:
        return [f"resuming with changed {', '.join(changed)}: the run will differ from an uninterrupted one"]
    return []


def rng_state() -> dict[str, Any]:
    """Every global generator's state, in types ``weights_only`` loading accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def export_weights(ckpt_path: Path, out: Path, half: bool = True) -> str:
    """Write the EMA generator of a checkpoint as release ``.safetensors`` plus ``OUT.sha256``; return the sha256."""
    from vsr.models.registry import build_model
    from vsr.models.weights import load_state_strict, write_safetensors

    ckpt = load_checkpoint(ckpt_path)
    state = ckpt.get("params_ema") or ckpt["params"]
    arch = dict(ckpt["arch"])
    # Refuse to release weights that do not fit their own architecture.
    load_state_strict(build_model(arch, int(arch.get("scale", 1))), state, ckpt_path)
    if not out.parent.is_dir():
        raise OutputError(f"output folder does not exist: {out.parent}")
    try:
        digest = write_safetensors(state, arch, out, half=half)
        out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")
    except OSError as exc:
        raise OutputError(f"cannot write {out} ({exc.strerror or exc})") from exc
    return digest
