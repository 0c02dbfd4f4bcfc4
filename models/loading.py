"""One loading policy for every weights file given to ``--model``, ``--face-model`` or ``vsr eval``.

1. vsr reads the tensors itself: ``.safetensors`` with safetensors, ``.pth`` / ``.pt`` / ``.ckpt`` with
   ``torch.load(weights_only=True)``; a file that would need a full unpickle is refused
   (``vsr.models.weights.read_pickled_tensors``).
2. The usual nesting is unwrapped: ``params_ema`` (preferred: BasicSR's EMA weights), ``params``,
   ``state_dict``, ... and a ``module.`` / ``netG.`` prefix that every key shares.
3. Our own files (vsr metadata in a ``.safetensors`` header, or a ``vsr train`` checkpoint) keep the
   registry path (``vsr.models.registry``); anything else goes to spandrel (``vsr.models.zoo``), which
   recognises the architecture from the tensor names and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsr.errors import WeightsError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
# Keys under which training frameworks nest the network's state dict, most preferred first.
NESTING_KEYS = (
    "params_ema",
    "params-ema",
    "params",
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "netG",
)
# Prefixes that wrappers (DataParallel, BasicSR's netG) put on every key.
SHARED_PREFIXES = ("module.", "netG.")


@dataclass(frozen=True)
class WeightsFile:
    """The tensors of one weights file, unwrapped, and what the file says about itself."""

    path: Path
    state: dict[str, Any]
    arch: dict[str, Any] | None  # vsr's architecture dict when the file is one of ours, else None
    metadata: dict[str, str] = field(default_factory=dict)  # .safetensors header metadata
    found: str = ""  # what was at the top level, for messages

    @property
    def ours(self) -> bool:
        return self.arch is not None


def is_weights_path(name: str) -> bool:
    """Whether ``--model NAME`` names a weights file (by its extension) rather than a registry entry."""
    return Path(name).suffix.lower() in WEIGHT_SUFFIXES


def read_weights(path: Path | str) -> WeightsFile:
    """Read a weights file's tensors without running any code from it; see the module docstring."""
    import torch

    from vsr.models.weights import is_trainer_checkpoint, read_pickled_tensors, read_safetensors_raw

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise WeightsError(f"{path}: not a weights file (expected {', '.join(WEIGHT_SUFFIXES)})")
    if path.suffix.lower() == ".safetensors":
        state, meta = read_safetensors_raw(path)
        found = describe_found(state)
        if "vsr" in meta:
            from vsr.models.weights import arch_from_metadata

            return WeightsFile(path, state, arch_from_metadata(meta, path), meta, found)
        return WeightsFile(path, _strip_prefixes(state), None, meta, found)
    raw = read_pickled_tensors(path)
    found = describe_found(raw)
    if is_trainer_checkpoint(raw):
        state = raw.get("params_ema") or raw["params"]
        return WeightsFile(path, dict(state), dict(raw["arch"]), {}, found)
    state = _unwrap(raw)
    tensors = (
        {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    )
    return WeightsFile(path, _strip_prefixes(tensors), None, {}, found)


def describe_found(obj: Any) -> str:
    """'top-level keys a, b, c (+4 more); 12 tensors': what a file holds, for one-line errors."""
    import torch

    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}, not a dict of tensors"
    keys = [str(k) for k in obj]
    shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

    def count(o: Any) -> int:
        if isinstance(o, torch.Tensor):
            return 1
        if isinstance(o, dict):
            return sum(count(v) for v in o.values())
        if isinstance(o, list | tuple):
            return sum(count(v) for v in o)
        return 0

    return f"top-level keys {shown or '(none)'}; {count(obj)} tensors"


def _unwrap(obj: Any) -> Any:
    """The network's state dict inside the usual framework nesting (one level, or a lone key)."""
    if not isinstance(obj, dict):
        return obj
    for key in NESTING_KEYS:
        if isinstance(obj.get(key), dict) and obj[key]:
            return obj[key]
    if len(obj) == 1 and isinstance(next(iter(obj.values())), dict):
        return next(iter(obj.values()))
    return obj


def _strip_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    for prefix in SHARED_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state
