"""Steps at GPU speed: channels_last, torch.compile (guarded), fused Adam; CPU runs stay exactly as before.

``Speed.of(cfg, device)`` decides once per run; the loop asks it to prepare modules and inputs, to
build the optimisers, and for the generator's training-time forward (compiled or not).  On the CPU
nothing changes (plain memory format, eager, the default Adam), so CPU runs and their bit-identical
resume are untouched.  ``torch.compile`` is lazy: if its first call fails (no compiler, an
unsupported op, also in the backward), the run says so and continues eagerly instead of dying.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from vsr.pipelines.train.config import TrainConfig


@dataclass(frozen=True)
class Speed:
    """How a run's steps are executed on its device."""

    channels_last: bool
    compile_mode: str | None  # a torch.compile mode, or None for eager
    fused_adam: bool

    @staticmethod
    def of(cfg: TrainConfig, device: torch.device) -> Speed:
        cuda = device.type == "cuda"
        mode = {"auto": "default" if cuda else None, "off": None}.get(cfg.compile, cfg.compile)
        return Speed(channels_last=cuda, compile_mode=mode, fused_adam=cuda)

    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        """Put a module's weights in the run's memory format (NHWC on CUDA: what the tensor cores want)."""
        return m.to(memory_format=torch.channels_last) if self.channels_last else m

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Image batches (N, C, H, W) in the run's memory format; other tensors as they are."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def adam(self, params: Iterable[torch.nn.Parameter], **kwargs) -> torch.optim.Adam:
        """Adam, fused (one kernel for all parameters) on CUDA."""
        return torch.optim.Adam(params, **kwargs, **({"fused": True} if self.fused_adam else {}))

    def forward(self, m: torch.nn.Module, notes: Callable[[str], None]) -> Callable[..., torch.Tensor]:
        """The training-time forward of ``m``: compiled for the run's fixed shapes, or ``m`` itself."""
        if self.compile_mode is None:
            return m
        return _Compiled(m, self.compile_mode, notes)


class _Compiled:
    """``torch.compile(m)`` that falls back to eager (once, with a note) if its first use fails.

    The backward graph is compiled lazily, at the first backward: so the first call also runs a
    trial forward and backward through the compiled module (its gradients are discarded: the loop
    zeroes them before its own backward), and a failure in either falls back to eager.
    """

    def __init__(self, m: torch.nn.Module, mode: str, note: Callable[[str], None]) -> None:
        self.m, self.note, self.ok = m, note, None
        self.fn = torch.compile(m, mode=mode, dynamic=False)

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        if self.ok is None:
            try:
                trial = self.fn(*args, **kwargs)
                if torch.is_grad_enabled() and trial.requires_grad:
                    trial.float().mean().backward()
            except Exception as exc:  # compiler missing or failing: the run is still worth finishing
                self.ok = False
                self.note(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); training eagerly")
            else:
                self.ok = True
        return self.fn(*args, **kwargs) if self.ok else self.m(*args, **kwargs)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, on the device, in one foreach call; buffers copied."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers(), strict=True):
            e.copy_(b)
