"""Long videos in committed segments, so that a crash in hour three costs minutes (``--resume``).

A run on an input longer than one segment (``--segment-seconds``, 60 by default) encodes its video in
pieces: segment ``k`` holds the frames whose time from the first frame lies in ``[k*S, (k+1)*S)``.
Each piece is computed by a fresh stage (``run_stage(piece_of=...)``) and encoded by a fresh encoder
into its own file (starting with a keyframe) in a hidden work folder beside the output,
``.NAME.vsr-work/``; once the file is fsynced, ``manifest.json`` (written atomically) lists it with its
frame count, first/last pts and sha256, beside the run's fingerprint (input identity, models, resolved
options, software versions).  At the end the segments' packets are joined into the output with the
input's audio and subtitles copied (``SegmentJoiner``: no re-encode), checked and published.

Because a segment's work depends only on its own frames, a run resumed at segment ``k`` (the reader
seeks to the keyframe before its first frame) does exactly what an uninterrupted run does from ``k``
on.  The boundaries are a time grid, not the input's keyframes: the grid needs no pass over the file
before starting and gives even segments on streams with sparse or no keyframes; the cost is decoding
up to one input GOP more when resuming.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vsr.errors import OutputError, UsageError

MANIFEST = "manifest.json"
SEGMENT_CONTAINER = ("mp4", ".mp4")  # keeps each packet's dts and a fine time base for every codec we write
_VOLATILE_OPTIONS = ("output", "report", "overwrite", "quiet", "verbose", "resume")


def work_folder_for(output: Path) -> Path:
    """The hidden folder beside ``output`` that holds a segmented run's committed segments."""
    return output.resolve().parent / f".{output.name}.vsr-work"


def _boot_id() -> str | None:
    """This boot's id: a pid recorded before a power cut or reboot says nothing about the processes now."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


# -- the plan: which segment a frame belongs to ---------------------------------------------------------------
class SegmentPlan:
    """Frame -> segment number on a grid of ``seconds`` from the run's first frame (exact, in pts)."""

    def __init__(self, seconds: float, time_base: Fraction, origin_pts: int | None = None) -> None:
        self.seconds = Fraction(seconds).limit_denominator(1000)
        self.time_base = Fraction(time_base)
        self.origin_pts = origin_pts  # set by the first frame of a fresh run

    def __call__(self, frame) -> int:
        if self.origin_pts is None:
            self.origin_pts = frame.pts
        return max(0, int((frame.pts - self.origin_pts) * self.time_base / self.seconds))


# -- the manifest -------------------------------------------------------------------------------------------------
@dataclass
class SegmentRecord:
    """One committed segment: its file in the work folder, frames, first/last source pts, sha256."""

    index: int
    file: str
    frames: int
    first_pts: int
    last_pts: int
    sha256: str


@dataclass
class Manifest:
    """What a segmented run has committed, and the fingerprint a ``--resume`` must match."""

    fingerprint: dict[str, Any]
    pid: int
    boot_id: str | None
    first_pts: int | None = None
    first_time: float | None = None
    segments: list[SegmentRecord] = field(default_factory=list)
    version: int = 1

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    def save(self, folder: Path) -> None:
        from vsr.atomic import write_atomic

        write_atomic(folder / MANIFEST, json.dumps(dataclasses.asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        """The manifest in ``folder``, or None when it is missing or unreadable (a run killed at its start)."""
        try:
            data = json.loads((folder / MANIFEST).read_text())
            data["segments"] = [SegmentRecord(**s) for s in data.get("segments", [])]
            return cls(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def owner_alive(self) -> bool:
        """Whether the process that wrote this manifest still runs (same boot, pid alive, not us)."""
        from vsr.atomic import process_alive

        if self.pid == os.getpid() or (self.boot_id and self.boot_id != _boot_id()):
            return False
        return process_alive(self.pid)


def input_identity(path: Path) -> dict[str, Any]:
    """Size, mtime and the sha256 of the first and last MiB: a changed input is caught without a full hash."""
    st = path.stat()
    mib = 1 << 20
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(mib)).hexdigest()
        f.seek(max(0, st.st_size - mib))
        tail = hashlib.sha256(f.read(mib)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head, "tail_sha256": tail}


def fingerprint(config, built) -> dict[str, Any]:
    """Everything that decides the output's bytes: the input, the models, the resolved options and devices,
    the software versions.  A ``--resume`` continues only a run whose fingerprint is the same."""
    from vsr.pipelines.enhance_report import resolved_options, software_versions

    options = {k: v for k, v in resolved_options(config).items() if k not in _VOLATILE_OPTIONS}
    options["input"] = str(Path(config.input).resolve())  # the same file, however the command names it
    ups = {id(u): u for u in built.upscalers.values()}.values()
    return {
        "input": input_identity(Path(config.input)),
        "models": {role: {"name": m.name, "sha256": m.sha256} for role, m in built.models.items()},
        "mode": built.mode,
        "device": sorted({f"{u.device}/{u.precision}" for u in ups}),
        "options": options,
        "versions": software_versions(),
    }


def first_difference(old: Any, new: Any, where: str = "") -> str | None:
    """``"options.crf: 18 -> 20"`` for the first field that differs between two fingerprints, else None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    return None if old == new else f"{where or 'fingerprint'}: {old!r} -> {new!r}"


# -- the work folder --------------------------------------------------------------------------------------------
class WorkFolder:
    """The ``.NAME.vsr-work`` folder of one output, as a context manager around the run: claimed at the
    start, committed to after each segment, kept on an interruption (for ``--resume``), removed on
    success or on a failure."""

    def __init__(self, output: Path, say: Callable[[str], None]) -> None:
        self.output = Path(output)
        self.path = work_folder_for(self.output)
        self.say = say  # progress lines (not when quiet)
        self.warnings: list[str] = []  # for the run's report and summary
        self.manifest: Manifest | None = None

    def clear_stale(self) -> None:
        """Remove a dead run's work folder (saying so); refuse to touch a live one's."""
        if not self.path.exists():
            return
        found = Manifest.load(self.path)
        if found is not None and found.owner_alive():
            raise OutputError(
                f"{self.output} is being written by another vsr process (pid {found.pid}); "
                "wait for it to finish or stop it"
            )
        done = f"{len(found.segments)} finished segment(s)" if found else "no readable manifest"
        shutil.rmtree(self.path, ignore_errors=True)
        self.warnings.append(
            f"removed the work folder of an interrupted run ({self.path.name}: {done}); "
            "pass --resume to continue such a run instead"
        )

    def claim(self, fingerprint: dict[str, Any], resume: bool) -> Manifest:
        """Take the folder for this run: continue its manifest with ``resume`` (same fingerprint), else
        start empty.  Only segments whose files are intact (sha256) are kept."""
        found = Manifest.load(self.path) if self.path.exists() else None
        if found is not None and found.owner_alive():
            raise OutputError(
                f"{self.output} is being written by another vsr process (pid {found.pid}); "
                "wait for it to finish or stop it"
            )
        if resume and found is not None:
            diff = first_difference(found.fingerprint, fingerprint)
            if diff:
                raise UsageError(
                    f"--resume: cannot continue the interrupted run of {self.output}: {diff} since then; "
                    "run without --resume to start over"
                )
            found.segments = self._intact(found.segments)
            found.pid, found.boot_id = os.getpid(), _boot_id()
            manifest = found
            if manifest.segments:
                self.say(
                    f"resuming after segment {len(manifest.segments)} ({manifest.frames} frames done) "
                    f"from {self.path.name}"
                )
        else:
            if self.path.exists() and not resume:
                self.clear_stale()
            elif self.path.exists():
                self.warnings.append(f"--resume: {self.path.name} has no readable manifest; started over")
                shutil.rmtree(self.path, ignore_errors=True)
            manifest = Manifest(fingerprint, os.getpid(), _boot_id())
        self.path.mkdir(exist_ok=True)
        keep = {MANIFEST} | {s.file for s in manifest.segments}
        for p in self.path.iterdir():  # a segment being written when the run died, temporaries
            if p.name not in keep:
                p.unlink()
        manifest.save(self.path)
        self.manifest = manifest
        return manifest

    def _intact(self, segments: list[SegmentRecord]) -> list[SegmentRecord]:
        """The leading segments whose files exist with their recorded sha256."""
        from vsr.digest import sha256_of

        kept = []
        for s in segments:
            path = self.path / s.file
            if not path.is_file() or sha256_of(path) != s.sha256:
                self.warnings.append(f"--resume: segment {s.index} in {self.path.name} was damaged; redone")
                break
            kept.append(s)
        return kept

    def __enter__(self) -> WorkFolder:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        """Remove the folder this run claimed, after success or a failure; keep it when the run was
        interrupted (Ctrl-C, SIGTERM, SIGHUP) with finished segments, and say how to continue."""
        if self.manifest is None:
            return  # never claimed (a one-pass run, or refused): not ours to remove
        done = len(self.manifest.segments)
        if kind is None or issubclass(kind, Exception) or not done:
            self.remove()
            return
        kept = (
            f"{self.output} was not created; {done} finished segment(s) kept in {self.path}: "
            "run the same command with --resume to continue"
        )
        if isinstance(exc, KeyboardInterrupt):  # its type (and so the exit code) stays; the CLI prints this
            exc.args = (kept,)
        else:
            self.say(kept)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# -- the writer that commits segments ---------------------------------------------------------------------------
class SegmentWriter:
    """The encode thread's sink for a segmented run: one ``VideoWriter`` per segment, committed to the
    manifest (file fsynced, sha256 recorded) as soon as the next segment's first frame arrives."""

    def __init__(
        self, work: WorkFolder, plan: SegmentPlan, open_segment: Callable[[Path], Any], first_time_of
    ) -> None:
        self.work = work
        self.plan = plan
        self.open_segment = open_segment
        self._first_time_of = first_time_of  # frame -> seconds (the reader's clock)
        self._writer = None
        self._record: SegmentRecord | None = None
        self.first_index: int | None = None  # the first segment this run encoded
        self.seconds = 0.0  # busy time of this run's segment encoders
        self.written = 0  # segments this run encoded

    @property
    def manifest(self) -> Manifest:
        assert self.work.manifest is not None
        return self.work.manifest

    def write(self, frame) -> None:
        index = self.plan(frame)
        if self._record is None or index != self._record.index:
            self._commit()
            name = f"seg-{index:06d}{SEGMENT_CONTAINER[1]}"
            self._writer = self.open_segment(self.work.path / name)
            self._record = SegmentRecord(index, name, 0, frame.pts, frame.pts, "")
            self.first_index = index if self.first_index is None else self.first_index
            if self.manifest.first_pts is None:
                self.manifest.first_pts, self.manifest.first_time = frame.pts, self._first_time_of(frame)
        self._writer.write(frame)
        self._record.frames += 1
        self._record.last_pts = max(self._record.last_pts, frame.pts)

    def _commit(self) -> None:
        if self._writer is None or self._record is None:
            return
        from vsr.digest import sha256_of

        writer, record = self._writer, self._record
        self._writer = None
        writer.close()
        self.seconds += writer.report.seconds
        path = self.work.path / record.file
        with open(path, "rb+") as f:  # on disk before the manifest says it is done (power cuts)
            os.fsync(f.fileno())
        record.sha256 = sha256_of(path)
        self.manifest.segments.append(record)
        self.manifest.save(self.work.path)
        self._record = None
        self.written += 1

    def close(self) -> None:
        """Commit the last segment."""
        self._commit()

    def abort(self) -> None:
        """Drop the segment being written (its file is not in the manifest; a resume removes it)."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def files(self) -> list[Path]:
        return [self.work.path / s.file for s in self.manifest.segments]
