"""What makes an output "done": a fingerprint of its input and options, kept in a sidecar beside it.

The fingerprint holds the input's identity (size, mtime and a sha256 of its first and last MiB, or of the
whole file with ``--hash full``), the model(s) with their sha256, the options that change the output,
and the vsr version.  The sidecar ``OUTPUT.vsr.json`` holds the fingerprint, the state of the attempt
(``running`` from before the first frame, then ``done`` with the run's report, or ``failed``) and the
output's size, frames and duration.  A file is skipped when its sidecar is done with the same
fingerprint and the output still probes to the recorded frames and duration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vsr import __version__
from vsr.atomic import write_atomic
from vsr.config import EnhanceConfig
from vsr.errors import VsrError

SIDECAR_FORMAT = "vsr-batch-sidecar/1"
QUICK_BYTES = 1 << 20
# The EnhanceConfig fields that do not change the output: where it goes and what is said about it, the
# input limits (they refuse files, they change no output), and how fast it is made (device, precision,
# batch size, tiling, compiling, encoders at once: rounding or keyframe placement at most; moving a batch
# to another machine must not redo it).  The models count by their sha256 (``models``).  Every other
# field is an output option, a new one included: it redoes files until it is listed here.
NOT_OUTPUT = (
    "input", "output", "model", "face", "report", "altered_mask", "overwrite", "quiet", "verbose",
    "segment_seconds", "resume", "limits",
    "device", "precision", "frame_path", "batch_size", "tile", "compile", "encoders",
)  # fmt: skip
FACE_NOT_OUTPUT = ("face_model",)  # a model: in ``models``


def output_options(config: EnhanceConfig) -> dict[str, Any]:
    """The options of ``config`` that change the output (face mode's among them), by name."""
    from vsr.media.writer import default_codec

    options = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in NOT_OUTPUT}
    options["codec"] = config.codec or default_codec(config.output)
    if config.mode != "frame":
        face = config.face
        options["face"] = {
            f.name: getattr(face, f.name) for f in fields(face) if f.name not in FACE_NOT_OUTPUT
        }
    return options


def sidecar_path(output: Path) -> Path:
    """``clip_x2.mp4`` -> ``clip_x2.mp4.vsr.json`` beside it."""
    return output.with_name(output.name + ".vsr.json")


def input_identity(path: Path, mode: str = "quick") -> dict[str, Any]:
    """Size, mtime and sha256 (first and last MiB for ``quick``, everything for ``full``) of a file."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if mode == "full":
            for chunk in iter(lambda: f.read(QUICK_BYTES), b""):
                h.update(chunk)
        else:
            h.update(f.read(QUICK_BYTES))
            if st.st_size > QUICK_BYTES:
                f.seek(max(QUICK_BYTES, st.st_size - QUICK_BYTES))
                h.update(f.read(QUICK_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": mode, "sha256": h.hexdigest()}


class ModelIdentity:
    """sha256 of a registry model or weights file, computed once per path for the whole plan."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}

    def __call__(self, name_or_path: str) -> dict[str, Any]:
        from vsr.models.registry import REGISTRY

        spec = REGISTRY.get(name_or_path)
        if spec is not None:
            sha = spec.weights.sha256 if spec.weights else f"interpolation:{spec.arch.get('kernel')}"
            return {"name": name_or_path, "sha256": sha}
        path = Path(name_or_path)
        key = str(path.resolve())
        if key not in self._files:
            from vsr.digest import sha256_of

            if not path.is_file():
                return {"name": name_or_path, "sha256": None}  # the worker reports the missing file
            self._files[key] = sha256_of(path)
        return {"name": key, "sha256": self._files[key]}


def models_used(config: EnhanceConfig) -> dict[str, str]:
    """The models a run of ``config`` would load: the main one, and the face model when faces may run."""
    from vsr.models.registry import DEFAULT_FACE_MODEL, DEFAULT_MODEL

    used = {"model": config.model or DEFAULT_MODEL[config.scale]}
    if config.mode != "frame":
        face = config.face.face_model or DEFAULT_FACE_MODEL.get(config.scale)
        if face is not None:
            used["face_model"] = face
        if config.face.background in ("lanczos", "bicubic"):
            used["background"] = config.face.background
    return used


def fingerprint(config: EnhanceConfig, hash_mode: str, models: ModelIdentity) -> dict[str, Any]:
    """The fingerprint of enhancing ``config.input`` into ``config.output`` with ``config``'s options."""
    fp = {
        "input": input_identity(config.input, hash_mode),
        "models": {role: models(name) for role, name in models_used(config).items()},
        "options": output_options(config),
        "vsr": __version__,
    }
    return json.loads(json.dumps(fp, default=str))  # as a sidecar reads back (tuples -> lists, paths -> str)


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Which parts of a fingerprint differ ("input", "options.scale", "models.model", "vsr")."""
    keys = []
    for part in sorted(set(old) | set(new)):
        a, b = old.get(part), new.get(part)
        if part in ("options", "models") and isinstance(a, dict) and isinstance(b, dict):
            keys.extend(f"{part}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        elif a != b:
            keys.append(part)
    return keys


# -- sidecars ---------------------------------------------------------------------------------------------------
def read_sidecar(output: Path) -> dict[str, Any] | None:
    """The sidecar's content, or None when there is none or it is not ours (unreadable, other format)."""
    try:
        data = json.loads(sidecar_path(output).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == SIDECAR_FORMAT else None


def write_sidecar(target: Path, state: str, fp: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Atomically write the sidecar for the output ``target`` in ``state`` (running, done, failed)."""
    data = {"format": SIDECAR_FORMAT, "state": state, "fingerprint": fp, **fields}
    write_atomic(sidecar_path(target), json.dumps(data, indent=1, default=str) + "\n")
    return data


def output_facts(output: Path) -> dict[str, Any]:
    """What the quick validation compares: size and mtime, and frames and duration from the header."""
    from vsr.media.probe import extent

    st = output.stat()
    frames, duration = extent(output)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": frames, "duration": duration}


def output_matches(output: Path, recorded: dict[str, Any] | None) -> bool:
    """Does ``output`` still exist with the recorded size, frames and duration?

    The recorded frames and duration come from probing this very file when it was written; while its
    size and mtime are unchanged it is that file, so it is not opened again (a re-run over thousands of
    done files costs a ``stat`` each).  A changed mtime (a copy, a touch, a rewrite) means a probe.
    """
    if not recorded or not output.is_file():
        return False
    try:
        st = output.stat()
        if st.st_size != recorded.get("size"):
            return False
        if st.st_mtime_ns == recorded.get("mtime_ns"):
            return True
        facts = output_facts(output)
    except (OSError, VsrError):
        return False
    dur_a, dur_b = facts["duration"], recorded.get("duration")
    same_duration = dur_a == dur_b or (dur_a is not None and dur_b is not None and abs(dur_a - dur_b) < 1e-3)
    return facts["frames"] == recorded.get("frames") and same_duration


@dataclass
class Decision:
    """What to do with one job: ``skip`` (done), ``recover`` (finished but unrecorded), or ``run``."""

    action: str
    reason: str
    ours: bool  # the output (if any) was written by vsr batch, so it may be replaced


def decide(output: Path, fp: dict[str, Any]) -> Decision:
    """Compare ``output``'s sidecar with the fingerprint ``fp`` of what this run would do."""
    side = read_sidecar(output)
    if side is None:
        if output.exists() or output.is_symlink():
            return Decision("run", "output exists but was not written by vsr batch", ours=False)
        return Decision("run", "new", ours=True)
    old = side.get("fingerprint") or {}
    if old != fp:
        return Decision("run", "changed: " + ", ".join(changed_keys(old, fp)), ours=True)
    state = side.get("state")
    if state == "done":
        if output_matches(output, side.get("output")):
            return Decision("skip", "done", ours=True)
        return Decision("run", "output missing or does not match its sidecar", ours=True)
    if state == "running" and output.is_file():
        # Killed after the output was published (enhance renames only after its checks pass) but before
        # the sidecar said so: the output is this attempt's if it was last written after the "running"
        # sidecar (both times from the filesystem's clock; an older output was finished before it).
        if output.stat().st_mtime_ns > sidecar_path(output).stat().st_mtime_ns:
            return Decision("recover", "finished before the last run was interrupted", ours=True)
    return Decision("run", f"previous attempt {state}", ours=True)
