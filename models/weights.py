"""Loading weights safely and strictly.

Released weights are ``.safetensors`` files whose sha256 is checked before use;
trainer checkpoints are plain dicts read with ``torch.load(weights_only=True)``.
Key mismatches are reported by name, never silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vsr.digest import sha256_of
from vsr.errors import WeightsError

# Keys in a .safetensors header's metadata that describe the architecture (all strings there).
ARCH_KEYS = ("arch", "scale", "blocks", "channels", "batch_norm", "in_channels", "downsamples", "dilated")


def verify_sha256(path: Path, expected: str) -> str:
    """Raise ``WeightsError`` unless ``path`` hashes to ``expected``; return the digest."""
    actual = sha256_of(path)
    if actual != expected.lower():
        raise WeightsError(
            f"{path}: sha256 mismatch (expected {expected[:12]}…, got {actual[:12]}…): the file is corrupt or "
            "was replaced; reinstall the package or re-export the weights"
        )
    return actual


def arch_to_metadata(arch: dict[str, Any]) -> dict[str, str]:
    """Architecture dict -> safetensors metadata (string values)."""
    return {"vsr": json.dumps({k: arch[k] for k in ARCH_KEYS if k in arch})}


def arch_from_metadata(meta: dict[str, str] | None, path: Path) -> dict[str, Any]:
    """safetensors metadata -> architecture dict, with a clear error if it is missing."""
    if not meta or "vsr" not in meta:
        raise WeightsError(
            f"{path}: no vsr architecture metadata in the file; export it with 'vsr train export CKPT OUT.safetensors'"
        )
    try:
        return dict(json.loads(meta["vsr"]))
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"{path}: unreadable vsr metadata ({exc})") from exc


def read_safetensors_raw(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (tensors as stored, header metadata) from a .safetensors file, on the CPU."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise WeightsError(f"{path}: not a readable .safetensors file ({exc})") from exc
    return state, meta


def read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (state_dict, arch) from one of vsr's .safetensors files (tensors as float32 on the CPU)."""
    state, meta = read_safetensors_raw(path)
    return {k: v.float() for k, v in state.items()}, arch_from_metadata(meta, path)


def read_pickled_tensors(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never a full unpickle.

    A file that holds any other pickled object (a class instance, a function) is refused, since
    unpickling it would run code from the file.
    """
    import pickle
    import re

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        raise WeightsError(
            f"{path}: refused: the file holds pickled Python objects other than tensors"
            + (f" ({found.group(1)})" if found else "")
            + "; vsr only reads tensors (torch.load weights_only) and never runs code from a weights file; "
            "convert it to .safetensors with the tool that made it"
        ) from None
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable PyTorch weights file ({exc})") from None


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (generator state_dict, arch) from a trainer checkpoint; prefers the EMA weights."""
    ckpt = read_pickled_tensors(path)
    if not is_trainer_checkpoint(ckpt):
        raise WeightsError(f"{path}: not a vsr trainer checkpoint (needs 'arch' and 'params'/'params_ema')")
    state = ckpt.get("params_ema") or ckpt["params"]
    return state, dict(ckpt["arch"])


def is_trainer_checkpoint(ckpt: Any) -> bool:
    """A ``vsr train`` checkpoint: a dict with the architecture and the generator's parameters."""
    return isinstance(ckpt, dict) and "arch" in ckpt and bool({"params_ema", "params"} & ckpt.keys())


def load_state_strict(module: Any, state: dict[str, Any], source: Path | str) -> None:
    """``load_state_dict(strict=True)`` with a readable error naming missing/unexpected/mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
                parts.append(f"{label}: {', '.join(keys[:3])}{more}")
        raise WeightsError(f"{source}: weights do not fit the network; " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def write_safetensors(state: dict[str, Any], arch: dict[str, Any], path: Path, half: bool = True) -> str:
    """Write release weights atomically (fp16 by default) and return their sha256."""
    import os

    from safetensors.torch import save_file

    from vsr.atomic import atomic_path

    tensors = {
        k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu() for k, v in state.items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=arch_to_metadata(arch))
        os.chmod(tmp, 0o644)  # released weights are read by every user of an installed package
    return sha256_of(path)
