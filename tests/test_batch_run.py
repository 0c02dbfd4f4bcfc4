"""vsr batch end to end: real worker processes over tiny generated clips (64x48, 6 frames, bicubic).

A corrupt file, a duplicate, names with spaces, unicode and a leading dash; re-runs that do nothing;
a changed option that redoes exactly its files; a worker SIGKILLed mid-file; a hang past --timeout;
``kill -9`` of the whole batch and a re-run; the Ray engine giving the same outputs and exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vsr.atomic import process_alive
from vsr.pipelines.batch.job import FaultHook
from vsr.pipelines.batch.ledger import read_ledger

pytestmark = pytest.mark.slow
CLIP = {"width": 64, "height": 48, "frames": 6, "audio_tracks": 1}
GOOD = ["a.mp4", "with space.mp4", "-dash.mp4", "sub/ünïcode.mp4"]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by the workers: a shared 2-core machine


def clips(root: Path, names: list[str], corrupt: str | None = None) -> Path:
    from vsr.media.sample import SampleSpec, write_sample

    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_sample(root / name, SampleSpec(**CLIP))
    if corrupt:
        (root / corrupt).write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(3000))
    return root


def vsr_batch(capsys, *args: str) -> tuple[int, str, str]:
    from vsr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["batch", *args, "--model", "bicubic"])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def outputs(out_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Relative output path -> (frames, width, height), from the files themselves."""
    from vsr.media.probe import probe

    found = {}
    for p in sorted(out_dir.rglob("*.mp4")):
        info = probe(p)
        found[str(p.relative_to(out_dir))] = (info.frames, info.width, info.height)
    return found


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def attempts(out_dir: Path) -> list[dict]:
    return [r for r in read_ledger(out_dir / "ledger.jsonl") if r.get("event") == "attempt"]


def hook(monkeypatch, tmp_path: Path, match: str, times: int, after: int = 1) -> Path:
    """Make workers hang on ``match`` (``times`` attempts) once ``after`` frames went to the encoder."""
    markers = tmp_path / f"markers-{match.strip('*')}"
    markers.mkdir()
    spec = {"match": match, "dir": str(markers), "times": times, "after": after}
    monkeypatch.setenv(FaultHook.ENV, json.dumps(spec))
    return markers


def long_clip(path: Path) -> None:
    """A clip long enough that x264 has written packets (the temporary output exists) before its end."""
    from vsr.media.sample import SampleSpec, write_sample

    write_sample(path, SampleSpec(**{**CLIP, "frames": LONG}))


LONG = 96


def wait_until(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


def wait_for(markers: Path, seconds: float = 240) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = list(markers.iterdir())
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no worker reached the hook within {seconds}s")


EXPECTED = {
    "a_x2.mp4": (6, 128, 96),
    "with space_x2.mp4": (6, 128, 96),
    "-dash_x2.mp4": (6, 128, 96),
    "sub/ünïcode_x2.mp4": (6, 128, 96),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    return clips(tmp_path_factory.mktemp("batch") / "in", GOOD, corrupt="broken.mp4")


def test_batch_with_a_corrupt_file_a_duplicate_and_odd_names(inputs, tmp_path, capsys):
    out, rep = tmp_path / "out", tmp_path / "report.json"
    args = [str(inputs), "--recursive", str(inputs / "a.mp4"), "--out-dir", str(out), "--report", str(rep)]
    code, _, err = vsr_batch(capsys, *args)
    assert code == 3, err
    assert outputs(out) == EXPECTED
    for rel in EXPECTED:
        side = json.loads((out / (rel + ".vsr.json")).read_text())
        assert side["state"] == "done" and side["report"]["frames_out"] == 6
        assert side["output"]["frames"] == 6 and side["fingerprint"]["models"]["model"]["name"] == "bicubic"
    assert not (out / "broken_x2.mp4").exists() and not (out / "broken_x2.mp4.vsr.json").exists()
    assert temporaries(out) == []
    lines = attempts(out)
    assert sorted((Path(r["input"]).name, r["result"]) for r in lines) == sorted(
        [(Path(n).name, "done") for n in GOOD] + [("broken.mp4", "error")]
    )
    broken = next(r for r in lines if r["result"] == "error")
    assert broken["error_class"] == "InputError" and broken["next"] == "failed" and broken["attempt"] == 1
    report = json.loads(rep.read_text())
    assert report["counts"] == {"done": 4, "failed": 1} and len(report["duplicates"]) == 1
    (failed,) = [f for f in report["files"] if f["status"] == "failed"]
    assert (
        failed["error_class"] == "InputError" and "broken.mp4" in failed["error"] and failed["attempts"] == 1
    )
    assert "failed: " in err and "broken.mp4: InputError" in err

    # the same command again: the good files are skipped, only the failed one is tried again
    code, _, err = vsr_batch(capsys, *args)
    assert code == 3
    report = json.loads(rep.read_text())
    assert report["counts"] == {"skipped": 4, "failed": 1}
    assert [Path(r["input"]).name for r in attempts(out)[len(lines) :]] == ["broken.mp4"]

    # without the bad file: nothing to do, and it says so; no worker is even started
    (inputs / "good.txt").write_text("\n".join(GOOD) + "\n")
    before = len(attempts(out))
    code, _, err = vsr_batch(
        capsys, "--manifest", str(inputs / "good.txt"), "--out-dir", str(out), "--report", str(rep)
    )
    assert code == 0 and "nothing to do: all 4 file(s) are already done" in err
    assert len(attempts(out)) == before and json.loads(rep.read_text())["workers"] == 0

    # --dry-run says what a changed option would redo, and runs nothing
    code, plan, _ = vsr_batch(
        capsys, "--manifest", str(inputs / "good.txt"), "--out-dir", str(out), "--dry-run", "--crf", "30"
    )
    assert code == 0 and plan.count("planned\tchanged: options.crf") == 4
    assert len(attempts(out)) == before


def test_a_changed_option_redoes_exactly_the_affected_files(tmp_path, capsys):
    src = clips(tmp_path / "in", ["a.mp4", "b.mp4", "c.mp4"])
    manifest = src / "nightly.csv"
    manifest.write_text("input,crf\na.mp4,23\nb.mp4,23\nc.mp4,\n")
    out = tmp_path / "out"
    assert vsr_batch(capsys, "--manifest", str(manifest), "--out-dir", str(out))[0] == 0
    first = {Path(r["input"]).name for r in attempts(out)}
    assert first == {"a.mp4", "b.mp4", "c.mp4"}
    manifest.write_text("input,crf\na.mp4,23\nb.mp4,30\nc.mp4,\n")
    shutil.copy(src / "a.mp4", src / "c.mp4")  # and c's content changes under the same name
    n = len(attempts(out))
    code, _, err = vsr_batch(capsys, "--manifest", str(manifest), "--out-dir", str(out))
    assert code == 0, err
    redone = attempts(out)[n:]
    assert sorted(Path(r["input"]).name for r in redone) == ["b.mp4", "c.mp4"]
    assert json.loads((out / "b_x2.mp4.vsr.json").read_text())["fingerprint"]["options"]["crf"] == 30


def test_a_worker_killed_mid_file_is_replaced_and_the_file_retried(tmp_path, capsys, monkeypatch):
    src = clips(tmp_path / "in", ["a.mp4", "c.mp4"])
    long_clip(src / "b.mp4")
    markers = hook(monkeypatch, tmp_path, "b.mp4", times=1, after=LONG - 8)
    out = tmp_path / "out"
    killed = []

    def killer() -> None:
        marker = wait_for(markers)
        killed.append(bool(wait_until(lambda: temporaries(out))))  # mid-file: the temporary output exists
        os.kill(int(marker.name), signal.SIGKILL)

    t = threading.Thread(target=killer)
    t.start()
    code, _, err = vsr_batch(capsys, str(src), "--out-dir", str(out), "--timeout", "200")
    t.join()
    assert killed == [True] and code == 0, err
    b = [r for r in attempts(out) if Path(r["input"]).name == "b.mp4"]
    assert [(r["attempt"], r["result"]) for r in b] == [(1, "died"), (2, "done")]
    assert "SIGKILL" in b[0]["error"] and b[0]["next"] == "retry"
    assert set(outputs(out)) == {"a_x2.mp4", "b_x2.mp4", "c_x2.mp4"} and temporaries(out) == []


def test_a_hang_past_the_timeout_is_killed_and_reported(tmp_path, capsys, monkeypatch):
    src = clips(tmp_path / "in", ["a.mp4", "hang.mp4"])
    hook(monkeypatch, tmp_path, "hang.mp4", times=99)
    out, rep = tmp_path / "out", tmp_path / "r.json"
    t0 = time.monotonic()
    code, _, err = vsr_batch(
        capsys, str(src), "--out-dir", str(out), "--timeout", "3", "--retries", "1", "--report", str(rep)
    )
    assert code == 3 and time.monotonic() - t0 < 200
    hung = [r for r in attempts(out) if Path(r["input"]).name == "hang.mp4"]
    assert [(r["result"], r.get("next")) for r in hung] == [("timeout", "retry"), ("timeout", "quarantined")]
    (q,) = (
        json.loads(rep.read_text())["failed"]
        if "failed" in json.loads(rep.read_text())
        else [f for f in json.loads(rep.read_text())["files"] if f["status"] == "quarantined"]
    )
    assert q["error_class"] == "Timeout" and "--timeout 3s" in q["error"] and q["attempts"] == 2
    assert "quarantined: " in err and "hang.mp4" in err
    assert set(outputs(out)) == {"a_x2.mp4"} and temporaries(out) == []


def test_kill_9_of_the_whole_batch_then_the_same_command_finishes_everything(tmp_path, capsys, monkeypatch):
    src = clips(tmp_path / "in", ["a.mp4", "b.mp4", "d.mp4"])
    long_clip(src / "c.mp4")
    markers = hook(monkeypatch, tmp_path, "c.mp4", times=1, after=LONG - 8)
    out = tmp_path / "out"
    args = [str(src), "--out-dir", str(out), "--model", "bicubic"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", "batch", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=os.environ.copy(),
    )
    try:
        worker = int(wait_for(markers).name)  # a and b are done, c is half written
        wait_until(lambda: temporaries(out))
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # `kill -9 PID` of the batch: its workers must follow
        proc.wait(30)
    try:
        assert wait_until(lambda: not process_alive(worker)), "the worker must die with the batch"
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing of the batch may outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
    assert temporaries(out), "killed mid-file: a temporary output was left"
    assert json.loads((out / "c_x2.mp4.vsr.json").read_text())["state"] == "running"
    done_before = {Path(r["output"]).name for r in attempts(out) if r["result"] == "done"}
    assert done_before == {"a_x2.mp4", "b_x2.mp4"}

    code, _, err = vsr_batch(capsys, *args[:-2], "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    assert set(outputs(out)) == {"a_x2.mp4", "b_x2.mp4", "c_x2.mp4", "d_x2.mp4"}
    done = [Path(r["output"]).name for r in attempts(out) if r["result"] == "done"]
    assert sorted(done) == ["a_x2.mp4", "b_x2.mp4", "c_x2.mp4", "d_x2.mp4"]  # each exactly once
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"done": 2, "skipped": 2} and report["removed_temporaries"]
    assert temporaries(out) == [] and not list(out.glob(".*"))


def test_ray_engine_gives_the_same_outputs_and_exit_code(inputs, tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'vsr-faces[ray]')")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        out = tmp_path / "ray"
        code, _, err = vsr_batch(capsys, str(inputs), "--recursive", "--out-dir", str(out), "--engine", "ray")
        assert code == 3, err
        assert outputs(out) == EXPECTED
        lines = attempts(out)
        assert {r["engine"] for r in lines} == {"ray"} and len(lines) == 5
        assert [r["error_class"] for r in lines if r["result"] == "error"] == ["InputError"]
        sidecars = [json.loads((out / (rel + ".vsr.json")).read_text()) for rel in EXPECTED]
        assert all(sc["state"] == "done" for sc in sidecars)
        # The actor reserved one CPU (the default for a CPU job) and sized its threads to it, not to the
        # machine's cores.
        assert {sc["report"]["cores"] for sc in sidecars} == {1}
        code, _, err = vsr_batch(capsys, str(inputs), "--recursive", "--out-dir", str(out), "--engine", "ray")
        assert code == 3 and len(attempts(out)) == 6  # done files skipped, as with the local engine
        code, _, err = vsr_batch(
            capsys, str(inputs), "--out-dir", str(tmp_path / "big"), "--engine", "ray", "--cpus-per-job", "2"
        )
        assert code == 1 and "no room for a worker" in err and "--cpus-per-job 2" in err  # a 1-CPU cluster
    finally:
        ray.shutdown()


def test_workers_get_disjoint_shares_of_the_cores():
    """Each local worker is pinned to its own share of the cores (torch threads, encoders and detectors
    size themselves to it), so N workers do not each take the whole machine."""
    import multiprocessing
    import os

    from vsr.pipelines.batch.local import core_shares, worker_main

    cores = sorted(os.sched_getaffinity(0))
    shares = core_shares(len(cores))
    if len(cores) > 1:
        assert all(len(s) == 1 for s in shares) and sorted(c for s in shares for c in s) == cores
    assert core_shares(1) == [None] and core_shares(len(cores) + 1) == [None] * (len(cores) + 1)
    # A real worker process applies its share before torch starts.
    share = cores[:1]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=worker_main, args=(child, os.getpid(), None, share))
    proc.start()
    try:
        assert parent.poll(120)
        kind, pid = parent.recv()
        assert kind == "ready" and sorted(os.sched_getaffinity(pid)) == share
        parent.send(None)
        proc.join(30)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()


def test_ray_actors_reserve_cpus_that_fit_every_gpu_node():
    from vsr.pipelines.batch.ray_engine import cpus_per_job

    nodes = [
        {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}},
        {"Alive": True, "Resources": {"CPU": 64.0, "GPU": 8.0}},
        {"Alive": True, "Resources": {"CPU": 96.0}},  # no GPU: never runs a GPU job
        {"Alive": False, "Resources": {"CPU": 2.0, "GPU": 2.0}},  # gone
    ]
    assert cpus_per_job(nodes, 0.0) == 1  # a CPU job: one file per core
    assert cpus_per_job(nodes, 1.0) == 8  # the 8-GPU node has 8 CPUs per GPU: every GPU there gets a job
    assert cpus_per_job(nodes, 0.5) == 4 and cpus_per_job(nodes, 2.0) == 16
    assert cpus_per_job([{"Alive": True, "Resources": {"CPU": 2.0, "GPU": 4.0}}], 1.0) == 1  # at least one


def test_a_core_limit_caps_every_thread_plan(monkeypatch):
    """A Ray actor's reserved CPUs cap what the encoders and detectors plan by; FFmpeg, which would count
    the process's cores itself, is given the cap."""
    import vsr.config
    from vsr.config import limit_cores, usable_cores
    from vsr.media.encoders import plan_encoders
    from vsr.pipelines.face.detect import detect_workers

    plan = dict(codec="libx264", fps=25.0, frame_bytes=1920 * 1080 * 3, free_memory=64 << 30)
    monkeypatch.setattr(vsr.config, "_core_limit", None)
    assert plan_encoders(None, fast_source=False, **plan).threads == 0  # FFmpeg's own count
    limit_cores(1)
    assert usable_cores() == 1 and detect_workers() == 1
    assert plan_encoders(None, fast_source=False, **plan).threads == 1
    assert plan_encoders(None, fast_source=True, **plan).encoders == 1  # no cores for more encoders
    limit_cores(10_000)
    assert usable_cores() == len(os.sched_getaffinity(0))  # a cap above the affinity changes nothing
