"""The batch plan: every input file, its output and its options, checked as a whole before anything runs.

Inputs are files, folders (their video files; subfolders with ``--recursive``), globs, or a manifest:
``.txt`` (one path a line, ``#`` comments), ``.csv`` (a header with ``input`` and optional override
columns) or ``.jsonl`` (one object a line).  Manifest paths are relative to the manifest's folder and must
stay inside it.  Outputs keep the input's path relative to its root under ``--out-dir``.
Any problem (a bad manifest row, two inputs for one output, an output over an input, a path escaping its
root) raises one ``PlanError`` line: nothing has run yet.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from vsr.config import EnhanceConfig
from vsr.errors import PlanError, VsrError
from vsr.pipelines.batch.config import BatchConfig

# Extensions picked up when scanning a folder (a file named explicitly may have any extension).
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mkv .mov .webm .avi .mts .m2ts .ts .mpg .mpeg .wmv .flv .3gp .ogv .mxf .dv".split()
)
OUTPUT_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm")
# Manifest columns: output name, then the per-file enhance overrides.
OVERRIDES = ("scale", "mode", "model", "codec", "crf")
MANIFEST_KEYS = ("input", "output", *OVERRIDES)


@dataclass
class Job:
    """One file to enhance: where it comes from, where it goes, with which options."""

    input: Path  # absolute (symlinks kept as given)
    output: Path  # absolute, under --out-dir
    config: EnhanceConfig  # this file's options (defaults plus manifest overrides), input/output filled
    origin: str  # "argument" or "FILE:LINE" of the manifest row

    @property
    def name(self) -> str:
        return self.input.name


@dataclass
class Plan:
    """The validated jobs, in order, plus the inputs that were listed more than once."""

    jobs: list[Job]
    duplicates: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    path: Path  # absolute, lexical
    rel: Path  # path under its root, for the output name
    origin: str
    overrides: dict = field(default_factory=dict)
    output: str | None = None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def absolute(path: Path | str) -> Path:
    """``path`` made absolute without resolving symlinks (so a link's own location is what is checked)."""
    return Path(os.path.abspath(path))


def _scan(root: Path, recursive: bool, exclude: Path, origin: str) -> list[_Entry]:
    """Video files in ``root`` (and below with ``recursive``); symlinks leading out of ``root`` are refused."""
    real_root = root.resolve()
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        keep = []
        for d in sorted(dirs):
            sub = here / d
            if d.startswith(".") or absolute(sub).resolve() == exclude:
                continue  # hidden folders and the output folder (a re-run must not enhance its outputs)
            if sub.is_symlink():
                if not _inside(sub.resolve(), real_root):
                    raise PlanError(
                        f"{sub} is a symlink out of the input folder {root}; pass its target explicitly"
                    )
                continue  # the target is inside the root: its files are reached without the link
            keep.append(d)
        dirs[:] = keep if recursive else []
        for name in sorted(files):
            p = here / name
            if name.startswith(".") or p.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            if p.is_symlink() and not _inside(p.resolve(), real_root):
                raise PlanError(
                    f"{p} is a symlink out of the input folder {root} (to {p.resolve()}); "
                    "pass its target explicitly"
                )
            found.append(_Entry(absolute(p), p.relative_to(root), origin))
    return found


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _from_argument(arg: str, recursive: bool, exclude: Path) -> list[_Entry]:
    path = Path(arg)
    if path.is_dir():
        return _scan(path, recursive, exclude, "argument")
    if path.exists() or path.is_symlink():
        return [_Entry(absolute(path), Path(path.name), "argument")]
    if glob.has_magic(arg):
        root = _glob_root(arg)
        matches = sorted(glob.glob(arg, recursive=True))
        entries = []
        for m in matches:
            p = Path(m)
            if p.is_dir():
                entries.extend(_scan(p, recursive, exclude, "argument"))
            elif not p.name.startswith("."):
                entries.append(_Entry(absolute(p), p.relative_to(root), "argument"))
        if not entries:
            raise PlanError(f"no files match {arg!r}")
        return entries
    raise PlanError(f"INPUT not found: {arg}; check the path (folders need no wildcard)")


# -- manifests --------------------------------------------------------------------------------------------------
def _manifest_rows(manifest: Path) -> list[tuple[int, dict]]:
    """(line number, row dict) for every row of a .txt, .csv or .jsonl manifest."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlanError(f"--manifest {manifest}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"--manifest {manifest}: cannot read it ({exc})") from None
    kind = manifest.suffix.lower()
    rows: list[tuple[int, dict]] = []
    if kind == ".txt":
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append((n, {"input": line}))
    elif kind == ".csv":
        reader = csv.DictReader(text.splitlines())
        fields = reader.fieldnames or []
        if "input" not in fields:
            raise PlanError(f"{manifest}:1: the header needs an 'input' column (got {', '.join(fields)})")
        unknown = [f for f in fields if f not in MANIFEST_KEYS]
        if unknown:
            raise PlanError(
                f"{manifest}:1: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(MANIFEST_KEYS)}"
            )
        for row in reader:
            if None in row:
                raise PlanError(f"{manifest}:{reader.line_num}: more cells than header columns")
            rows.append((reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}))
    elif kind == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PlanError(f"{manifest}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise PlanError(f"{manifest}:{n}: each line must be a JSON object")
            unknown = [k for k in row if k not in MANIFEST_KEYS]
            if unknown:
                raise PlanError(
                    f"{manifest}:{n}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(MANIFEST_KEYS)}"
                )
            rows.append((n, {k: v for k, v in row.items() if v is not None}))
    else:
        raise PlanError(f"--manifest {manifest}: use a .txt, .csv or .jsonl file")
    return rows


def _from_manifest(manifest: Path) -> list[_Entry]:
    root = absolute(manifest.parent)
    real_root = root.resolve()
    entries = []
    for n, row in _manifest_rows(manifest):
        where = f"{manifest}:{n}"
        raw = row.get("input")
        if not isinstance(raw, str) or not raw.strip():
            raise PlanError(f"{where}: the row has no input path")
        path = absolute(root / raw)  # an absolute path stays absolute
        if not _inside(path, root) or not _inside(path.resolve(), real_root):
            raise PlanError(f"{where}: {raw} is outside the manifest's folder {root}; move the manifest up")
        if not path.is_file():
            raise PlanError(f"{where}: input not found: {raw}")
        out = row.get("output")
        if out is not None and (not isinstance(out, str) or not out.strip()):
            raise PlanError(f"{where}: output must be a file name")
        overrides = {k: row[k] for k in OVERRIDES if k in row}
        entries.append(_Entry(path, path.relative_to(root), where, overrides, out))
    return entries


# -- options and outputs ----------------------------------------------------------------------------------------
def _apply_overrides(defaults: EnhanceConfig, overrides: dict, where: str) -> EnhanceConfig:
    values = {}
    try:
        for key, value in overrides.items():
            if key in ("scale", "crf"):
                if isinstance(value, bool) or not str(value).strip().lstrip("-").isdigit():
                    raise PlanError(f"{where}: {key} must be an integer, got {value!r}")
                values[key] = int(value)
            else:
                values[key] = str(value)
        return replace(defaults, **values).validate()
    except VsrError as exc:
        if isinstance(exc, PlanError):
            raise
        raise PlanError(f"{where}: {exc}") from None


def _output_for(entry: _Entry, cfg: BatchConfig, config: EnhanceConfig, out_dir: Path) -> Path:
    from vsr.media.writer import container_for

    if entry.output is not None:
        rel = Path(entry.output)
        target = absolute(out_dir / rel)
        if rel.is_absolute() or not _inside(target, out_dir) or target == out_dir:
            raise PlanError(f"{entry.origin}: output {entry.output} must be a name inside --out-dir")
    else:
        ext = entry.path.suffix.lower() if entry.path.suffix.lower() in OUTPUT_EXTENSIONS else ".mp4"
        model = Path(config.model).stem if config.model else "default"
        stem = entry.rel.stem + cfg.suffix.format(scale=config.scale, model=model)
        target = absolute(out_dir / entry.rel.parent / (stem + ext))
    try:
        container_for(target)
    except VsrError as exc:
        raise PlanError(f"{entry.origin}: {exc}") from None
    return target


def build_plan(cfg: BatchConfig) -> Plan:
    """Expand the inputs, resolve every file's output and options, and check the plan as a whole."""
    out_dir = absolute(cfg.out_dir)
    exclude = out_dir.resolve()
    entries: list[_Entry] = []
    for arg in cfg.inputs:
        entries.extend(_from_argument(arg, cfg.recursive, exclude))
    if cfg.manifest is not None:
        entries.extend(_from_manifest(Path(cfg.manifest)))
    if not entries:
        raise PlanError("no video files found in the inputs (folders: add --recursive for subfolders)")

    plan = Plan(jobs=[])
    by_output: dict[Path, _Entry] = {}
    real_inputs = {e.path.resolve(): e for e in entries}
    for entry in entries:
        config = _apply_overrides(cfg.defaults, entry.overrides, entry.origin)
        output = _output_for(entry, cfg, config, out_dir)
        first = by_output.get(output)
        if first is not None:
            if first.path.resolve() == entry.path.resolve():
                plan.duplicates.append(f"{entry.path} ({entry.origin}) is listed again; enhanced once")
                continue
            raise PlanError(
                f"two inputs would write {output}: {first.path} and {entry.path}; "
                "rename one, or give outputs in a --manifest"
            )
        real_out = output.resolve()
        if real_out in real_inputs:
            raise PlanError(
                f"the output for {entry.path} would overwrite the input {real_inputs[real_out].path}; "
                "choose another --out-dir or --suffix"
            )
        by_output[output] = entry
        job_config = replace(config, input=entry.path, output=output, report=None, quiet=True)
        plan.jobs.append(Job(entry.path, output, job_config, entry.origin))
    return plan
