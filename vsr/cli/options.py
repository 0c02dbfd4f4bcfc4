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


def scale_or_model_scale(flag: Any, *models: str | None) -> int:
    """``--scale`` when given, else the scale of the first weights file among ``models``, else the default.

    A third-party model knows its own scale; only a ``--scale`` the user typed (or set in ``VSR_SCALE``)
    is checked against it, later, as a usage error naming both.
    """
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source("scale")
    if source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
        return int(flag)
    from vsr.models.loading import is_weights_path
    from vsr.models.registry import native_scale

    for name in models:
        if name and is_weights_path(name) and (own := native_scale(name)) is not None:
            return own
    return int(flag)
