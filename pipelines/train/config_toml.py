"""TrainConfig from and to TOML: dicts from files, flags and saved checkpoints become a typed config.

``resolve`` layers defaults <- the config of the run being resumed <- a TOML file <- flags.
Values are checked against the dataclass field types (messages name the TOML key and flag);
``to_toml`` is a small writer for exactly the types ``TrainConfig`` uses, with each field's
doc as a comment, which is what ``vsr train --print-config`` prints.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from vsr.errors import ConfigError
from vsr.pipelines.train.config import TrainConfig, key_label

# ---- building a config from dicts (TOML files, flags, saved checkpoints) ----


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check/convert one TOML value against a field's type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{key_label(key)} must be a list, got {value!r}")
        return [_coerce(v, args[0], key) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key_label(key)} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise ConfigError(f"{key_label(key)} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{key_label(key)} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, Path):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{key_label(key)} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in hints:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}")
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                raise ConfigError(f"{key} must be a table ([{key}]), got {value!r}")
            kwargs[name] = _build(hints[name], value, f"{key}.")
        else:
            kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively overlay ``override`` on ``base`` (tables merge, other values replace)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build (not validate) a TrainConfig from a nested dict; unknown keys raise ConfigError."""
    return _build(TrainConfig, values, "")


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file, with errors naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from exc


def dotted_to_nested(flags: dict[str, Any]) -> dict[str, Any]:
    """{'data.hr_size': 64} -> {'data': {'hr_size': 64}}."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


# ---- writing TOML (a small writer for exactly the types above) ----


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # JSON string escapes are all valid in a TOML basic string (and cover control characters).
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_table(obj: Any, lines: list[str], docs: bool) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue
        if docs:
            flag = f" [{f.metadata['flag']}]" if f.metadata.get("flag") else ""
            lines.append(f"# {f.metadata.get('doc', '')}{flag}")
        # TOML has no null: an unset value is written as a comment.
        lines.append(f"# {f.name} =" if value is None else f"{f.name} = {_toml_value(value)}")


def to_toml(cfg: TrainConfig, docs: bool = True) -> str:
    """The config as TOML text (with a comment per key when ``docs``); ``read_toml`` reads it back."""
    lines = ["# vsr train configuration: vsr train --config THIS.toml [flags override it]", ""]
    _toml_table(cfg, lines, docs)
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            lines += ["", f"[{f.name}]"]
            if docs and sub.__doc__:
                lines.append(f"# {sub.__doc__.strip().splitlines()[0]}")
            _toml_table(sub, lines, docs)
    return "\n".join(lines) + "\n"


def resolve(
    file: Path | None = None,
    flags: dict[str, Any] | None = None,
    saved: dict[str, Any] | None = None,
    validate: bool = True,
) -> TrainConfig:
    """defaults <- ``saved`` (the run being resumed) <- TOML ``file`` <- ``flags`` (dotted keys), validated."""
    values = saved or {}
    if file is not None:
        values = merge(values, read_toml(file))
    values = merge(values, dotted_to_nested(flags or {}))
    cfg = from_dict(values)
    return cfg.validate() if validate else cfg
