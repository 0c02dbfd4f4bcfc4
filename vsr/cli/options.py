"""Shared click option helpers: every option can also come from ``VSR_<OPTION>``.

A value that came from the environment is named by its variable in errors (``VSR_SCALE=3`` must not
send the user looking for a ``--scale 3`` they never typed): click's own errors through ``EnvOption``,
the config's ``ConfigError``s (which name the flag) through ``with_env_hints``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import click
from click.core import ParameterSource

from vsr.errors import UsageError


def _from_env(param: click.Parameter, ctx: click.Context | None) -> bool:
    return (
        ctx is not None
        and isinstance(param, click.Option)
        and bool(param.envvar)
        and param.name is not None
        and ctx.get_parameter_source(param.name) == ParameterSource.ENVIRONMENT
    )


class EnvOption(click.Option):
    """An option whose error messages name its environment variable when the value came from there."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        hint = super().get_error_hint(ctx)
        return f"'{self.envvar}' (the environment variable for {hint})" if _from_env(self, ctx) else hint


def option(*decls: str, **kwargs: Any):
    """``click.option`` whose environment variable is ``VSR_`` + the long name (``--batch-size`` -> ``VSR_BATCH_SIZE``)."""
    long = next(d for d in decls if d.startswith("--"))
    kwargs.setdefault("envvar", "VSR_" + long[2:].split("/")[0].replace("-", "_").upper())
    kwargs.setdefault("show_envvar", False)
    kwargs.setdefault("cls", EnvOption)
    return click.option(*decls, **kwargs)


def name_env_sources(message: str, ctx: click.Context) -> str:
    """Add ``(from VSR_X)`` after the first mention of each flag in ``message`` whose value came from VSR_X."""
    for param in ctx.command.params:
        if _from_env(param, ctx):
            for opt in param.opts:
                pattern = rf"(?<![\w-]){re.escape(opt)}(?![\w-])"
                message = re.sub(pattern, lambda m, p=param: f"{m[0]} (from {p.envvar})", message, count=1)
    return message


def with_env_hints(command: click.Command) -> click.Command:
    """Make a command's (and its subcommands') usage errors name the VSR_ variables their values came from."""
    if getattr(command, "_vsr_env_hints", False):
        return command
    callback = command.callback
    if callback is not None:

        @functools.wraps(callback)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except UsageError as exc:
                named = name_env_sources(str(exc), click.get_current_context())
                if named == str(exc):
                    raise
                raise type(exc)(named) from exc

        command.callback = wrapped
    command._vsr_env_hints = True  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        with_env_hints(sub)
    return command


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
