"""Shared click option helpers: every option can also come from ``VSR_<OPTION>``."""

from __future__ import annotations

from typing import Any

import click


def option(*decls: str, **kwargs: Any):
    """``click.option`` whose environment variable is ``VSR_`` + the long name (``--batch-size`` -> ``VSR_BATCH_SIZE``)."""
    long = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", "VSR_" + long[2:].split("/")[0].replace("-", "_").upper())
    kwargs.setdefault("show_envvar", False)
    return click.option(*decls, **kwargs)


class BatchSize(click.ParamType):
    """A positive integer or ``auto`` (-> None)."""

    name = "N|auto"

    def convert(self, value: Any, param, ctx) -> int | None:
        if value is None or value == "auto":
            return None
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a positive integer or 'auto'", param, ctx)
        if n < 1:
            self.fail(f"{n} is not a positive integer", param, ctx)
        return n


def compute_options(func):
    """``--device``, ``--precision`` and ``--batch-size``: how a command runs its model."""
    func = option(
        "--batch-size", type=BatchSize(), default="auto", show_default=True, help="Frames per model call."
    )(func)
    func = option(
        "--precision",
        type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
        default="auto",
        show_default=True,
        help="auto = fp16 on CUDA, fp32 on CPU.",
    )(func)
    return option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")(func)
