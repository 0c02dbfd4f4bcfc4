"""vsr batch, before anything runs: the plan, manifests, fingerprints, sidecars, ledger and retry policy.

No worker processes here (fast); tests/test_batch_run.py runs real batches.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vsr.config import EnhanceConfig
from vsr.errors import PlanError
from vsr.pipelines.batch import BatchConfig
from vsr.pipelines.batch.fingerprint import (
    ModelIdentity,
    changed_keys,
    decide,
    fingerprint,
    input_identity,
    output_facts,
    write_sidecar,
)
from vsr.pipelines.batch.job import next_step
from vsr.pipelines.batch.ledger import Ledger, read_ledger
from vsr.pipelines.batch.plan import build_plan
from vsr.pipelines.batch.report import report_dict


def cfg(tmp_path: Path, *inputs, **kw) -> BatchConfig:
    defaults = kw.pop("defaults", EnhanceConfig(Path(), Path(), model="bicubic"))
    return BatchConfig(
        inputs=[str(i) for i in inputs], out_dir=kw.pop("out_dir", tmp_path / "out"), defaults=defaults, **kw
    )


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_scan_keeps_relative_paths_and_skips_outputs(tmp_path):
    src = tmp_path / "in"
    touch(src / "a.mp4")
    touch(src / "sub" / "b c.mkv")
    touch(src / "notes.txt")  # not a video extension: folders only pick videos
    touch(src / ".hidden.mp4")
    touch(src / "out" / "old_x2.mp4")  # the out dir inside the input folder is never an input
    flat = build_plan(cfg(tmp_path, src, out_dir=src / "out"))
    assert [j.input.name for j in flat.jobs] == ["a.mp4"]
    deep = build_plan(cfg(tmp_path, src, out_dir=src / "out", recursive=True))
    outs = sorted(str(j.output.relative_to(src / "out")) for j in deep.jobs)
    assert outs == ["a_x2.mp4", "sub/b c_x2.mkv"]


def test_glob_and_suffix(tmp_path):
    touch(tmp_path / "cam" / "day1" / "-x.mov")
    touch(tmp_path / "cam" / "day2" / "y.avi")
    plan = build_plan(
        cfg(
            tmp_path,
            f"{tmp_path}/cam/**/*.*",
            suffix="_{model}x{scale}",
            defaults=EnhanceConfig(Path(), Path(), scale=4, model="lanczos"),
        )
    )
    rel = sorted(str(j.output.relative_to(tmp_path / "out")) for j in plan.jobs)
    assert rel == ["day1/-x_lanczosx4.mov", "day2/y_lanczosx4.mp4"]  # .avi is not an output container
    with pytest.raises(PlanError, match="no files match"):
        build_plan(cfg(tmp_path, f"{tmp_path}/nothing/*.mp4"))
    with pytest.raises(PlanError, match="INPUT not found"):
        build_plan(cfg(tmp_path, tmp_path / "missing.mp4"))


def test_duplicate_input_is_run_once_but_two_inputs_for_one_output_are_refused(tmp_path):
    a = touch(tmp_path / "in" / "a.mp4")
    plan = build_plan(cfg(tmp_path, tmp_path / "in", a))
    assert len(plan.jobs) == 1 and len(plan.duplicates) == 1 and "listed again" in plan.duplicates[0]
    touch(tmp_path / "other" / "a.mp4")
    with pytest.raises(PlanError, match="two inputs would write .*a_x2.mp4"):
        build_plan(cfg(tmp_path, a, tmp_path / "other" / "a.mp4"))


def test_output_over_an_input_is_refused(tmp_path):
    a = touch(tmp_path / "in" / "a.mp4")
    touch(tmp_path / "in" / "a_x2.mp4")
    with pytest.raises(PlanError, match="would overwrite the input"):
        build_plan(cfg(tmp_path, a, tmp_path / "in" / "a_x2.mp4", out_dir=tmp_path / "in"))


def test_manifest_rows_override_options_and_errors_name_file_and_line(tmp_path):
    touch(tmp_path / "m" / "a.mp4")
    touch(tmp_path / "m" / "d" / "b.mp4")
    csv = tmp_path / "m" / "list.csv"
    csv.write_text("input,output,scale,crf,model\na.mp4,,4,28,\nd/b.mp4,named.mkv,,,lanczos\n")
    plan = build_plan(cfg(tmp_path, manifest=csv))
    a, b = plan.jobs
    assert (a.config.scale, a.config.crf, a.config.model, a.output.name) == (4, 28, "bicubic", "a_x4.mp4")
    assert (b.config.scale, b.config.model, b.output.name, b.origin) == (
        2,
        "lanczos",
        "named.mkv",
        f"{csv}:3",
    )

    csv.write_text("input,scale\na.mp4,2\nd/b.mp4,3\n")
    with pytest.raises(PlanError, match=rf"{csv}:3: --scale must be 2 or 4"):
        build_plan(cfg(tmp_path, manifest=csv))
    csv.write_text("input,speed\na.mp4,2\n")
    with pytest.raises(PlanError, match=rf"{csv}:1: unknown column"):
        build_plan(cfg(tmp_path, manifest=csv))
    jl = tmp_path / "m" / "list.jsonl"
    jl.write_text('{"input": "a.mp4"}\n{"input": "d/b.mp4", "crf": "high"}\n')
    with pytest.raises(PlanError, match=rf"{jl}:2: crf must be an integer"):
        build_plan(cfg(tmp_path, manifest=jl))
    jl.write_text('{"input": "a.mp4"}\n{"input": "a.mp4", "output": "a_x2.mp4"\n')
    with pytest.raises(PlanError, match=rf"{jl}:2: not valid JSON"):
        build_plan(cfg(tmp_path, manifest=jl))
    txt = tmp_path / "m" / "list.txt"
    txt.write_text("# nightly\na.mp4\n\nmissing.mp4\n")
    with pytest.raises(PlanError, match=rf"{txt}:4: input not found"):
        build_plan(cfg(tmp_path, manifest=txt))


def test_paths_outside_the_allowed_roots_are_refused(tmp_path):
    secret = touch(tmp_path / "secret.mp4")
    touch(tmp_path / "m" / "a.mp4")
    txt = tmp_path / "m" / "list.txt"
    txt.write_text("../secret.mp4\n")
    with pytest.raises(PlanError, match=rf"{txt}:1: ../secret.mp4 is outside the manifest's folder"):
        build_plan(cfg(tmp_path, manifest=txt))
    csv = tmp_path / "m" / "list.csv"
    csv.write_text("input,output\na.mp4,../../escaped.mp4\n")
    with pytest.raises(PlanError, match="must be a name inside --out-dir"):
        build_plan(cfg(tmp_path, manifest=csv))
    (tmp_path / "m" / "link.mp4").symlink_to(secret)
    txt.write_text("link.mp4\n")
    with pytest.raises(PlanError, match="outside the manifest's folder"):
        build_plan(cfg(tmp_path, manifest=txt))
    with pytest.raises(PlanError, match="symlink out of the input folder"):
        build_plan(cfg(tmp_path, tmp_path / "m"))


def test_bad_batch_options_name_their_flag(tmp_path):
    touch(tmp_path / "a.mp4")
    for kw, flag in (
        ({"suffix": "_{size}"}, "--suffix"),
        ({"suffix": "a/b"}, "--suffix"),
        ({"workers": 0}, "--workers"),
        ({"timeout": -1}, "--timeout"),
        ({"ray_address": "auto"}, "--ray-address"),
    ):
        with pytest.raises(Exception, match=flag):
            cfg(tmp_path, tmp_path / "a.mp4", **kw).validate()


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    from vsr.cli import main

    touch(tmp_path / "in" / "a.mp4")
    touch(tmp_path / "other" / "a.mp4")
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "batch",
                str(tmp_path / "in" / "a.mp4"),
                str(tmp_path / "other" / "a.mp4"),
                "--out-dir",
                str(tmp_path / "o"),
            ]
        )
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "two inputs would write" in err
    assert not (tmp_path / "o").exists()  # nothing ran, nothing was created
    for flags, message in [
        (["--cpus-per-job", "2"], "--cpus-per-job needs --engine ray"),
        (["--cpus-per-job", "0", "--engine", "ray"], "--cpus-per-job must be at least 1"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["batch", str(tmp_path / "in"), "--out-dir", str(tmp_path / "o"), *flags])
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_batch_shares_every_enhance_option():
    from vsr.cli.batch import batch
    from vsr.cli.enhance import enhance

    enhance_opts = {o.name for o in enhance.params if o.name not in ("input", "output")}
    batch_opts = {o.name for o in batch.params}
    # --report exists in both (batch: the batch report); --altered-mask names one file and --resume
    # continues one run, so neither is a per-batch default (the batch itself re-runs idempotently)
    assert enhance_opts - batch_opts == {"altered_mask", "resume"}
    assert {"out_dir", "manifest", "workers", "timeout", "retries", "hash_mode", "engine"} <= batch_opts


def test_quick_hash_reads_head_and_tail_full_hash_everything(tmp_path):
    big = tmp_path / "big.bin"
    data = bytearray(os.urandom(3 << 20))
    big.write_bytes(data)
    quick, full = input_identity(big, "quick"), input_identity(big, "full")
    data[(3 << 20) // 2] ^= 0xFF  # the middle MiB: invisible to the quick hash
    big.write_bytes(data)
    os.utime(big, ns=(quick["mtime_ns"], quick["mtime_ns"]))
    assert input_identity(big, "quick") == quick
    assert input_identity(big, "full")["sha256"] != full["sha256"]
    data[-1] ^= 0xFF
    big.write_bytes(data)
    os.utime(big, ns=(quick["mtime_ns"], quick["mtime_ns"]))
    assert input_identity(big, "quick")["sha256"] != quick["sha256"]


def test_fingerprint_names_what_changed(tmp_path):
    a = touch(tmp_path / "a.mp4", b"video")
    base = EnhanceConfig(a, tmp_path / "a_x2.mp4", model="bicubic")
    ident = ModelIdentity()
    fp = fingerprint(base, "quick", ident)
    assert fp == fingerprint(base, "quick", ident) == json.loads(json.dumps(fp))  # equal once read back
    other = fingerprint(EnhanceConfig(a, tmp_path / "a_x2.mp4", model="lanczos", crf=30), "quick", ident)
    assert changed_keys(fp, other) == ["models.model", "options.crf"]
    weights = touch(tmp_path / "w.safetensors", b"weights-1")
    fp_w = fingerprint(EnhanceConfig(a, tmp_path / "a_x2.mp4", model=str(weights)), "quick", ModelIdentity())
    weights.write_bytes(b"weights-2")
    fp_w2 = fingerprint(EnhanceConfig(a, tmp_path / "a_x2.mp4", model=str(weights)), "quick", ModelIdentity())
    assert changed_keys(fp_w, fp_w2) == ["models.model"]  # a retrained model file redoes the batch
    # Every option that changes the output counts (these three once did not); speed and place do not.
    for change, key in [
        (dict(deinterlace="off"), "options.deinterlace"),
        (dict(encoder_options={"tune": "grain"}), "options.encoder_options"),
        (dict(salvage=True), "options.salvage"),
    ]:
        changed = fingerprint(
            EnhanceConfig(a, tmp_path / "a_x2.mp4", model="bicubic", **change), "quick", ident
        )
        assert changed_keys(fp, changed) == [key]
    same = EnhanceConfig(
        a, tmp_path / "a_x2.mp4", model="bicubic", device="cpu", precision="bf16", batch_size=3, tile=64,
        compile="on", encoders=2, frame_path="rgb", quiet=True, segment_seconds=5.0,
    )  # fmt: skip
    assert fingerprint(same, "quick", ident) == fp


def test_decide_skip_redo_recover(tmp_path, video_factory):
    clip = video_factory("dec.mp4", width=64, height=48, frames=6, audio_tracks=0)
    out = tmp_path / "dec_x2.mp4"
    fp = {"input": {"size": 1}, "options": {"scale": 2}}
    assert decide(out, fp).action == "run" and decide(out, fp).ours
    out.write_bytes(clip.read_bytes())
    assert not decide(out, fp).ours  # someone else's file: not replaced without --overwrite
    write_sidecar(out, "done", fp, output=output_facts(out))
    assert decide(out, fp).action == "skip"
    changed = decide(out, {**fp, "options": {"scale": 4}})
    assert changed.action == "run" and changed.reason == "changed: options.scale"
    out.write_bytes(clip.read_bytes())  # rewritten (new mtime), same content: probed again, still done
    os.utime(out, ns=(10**18, 10**18))
    assert decide(out, fp).action == "skip"
    out.write_bytes(bytes(len(clip.read_bytes())))  # same size, not a video any more
    os.utime(out, ns=(2 * 10**18, 2 * 10**18))
    assert decide(out, fp).action == "run"
    out.write_bytes(clip.read_bytes()[:-200])  # truncated behind our back
    assert decide(out, fp).action == "run"
    # killed between publishing the output and recording it: adopted, not redone
    write_sidecar(out, "running", fp)
    os.utime(out.with_name(out.name + ".vsr.json"), ns=(1, 1))
    out.write_bytes(clip.read_bytes())
    assert decide(out, fp).action == "recover"
    write_sidecar(out, "running", fp)  # an output older than the attempt is the previous run's
    os.utime(out, ns=(1, 1))
    assert decide(out, fp).action == "run"


def test_ledger_appends_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path) as ledger:
        ledger.append({"event": "attempt", "n": 1})
    with open(path, "a") as f:
        f.write('{"event": "attempt", "n"')  # a crash mid-write
    with Ledger(path) as ledger:
        ledger.append({"event": "attempt", "n": 2})
    assert [r["n"] for r in read_ledger(path)] == [1, 2]
    assert all(json.loads(line) for line in path.read_text().splitlines()[-1:])


@pytest.mark.parametrize(
    ("kinds", "transient", "retries", "step"),
    [
        (["done"], False, 2, "done"),
        (["error"], False, 2, "failed"),  # permanent (bad input): never retried
        (["error"], True, 2, "retry"),  # out of memory after the in-process backoff
        (["died", "died"], True, 2, "retry"),
        (["died", "died", "died"], True, 2, "quarantined"),
        (["died", "timeout"], True, 1, "quarantined"),
        (["died", "error"], True, 1, "failed"),
        (["died", "done"], False, 2, "done"),
        (["timeout"], True, 0, "quarantined"),
    ],
)
def test_retry_policy(kinds, transient, retries, step):
    rows = [{"kind": k, "transient": transient} for k in kinds]
    assert next_step(rows, retries) == step


def test_report_dict_accepts_dicts_and_report_objects():
    class Typed:
        def to_dict(self):
            return {"frames_out": 6}

    assert report_dict({"frames_out": 6}) == report_dict(Typed()) == {"frames_out": 6}


def test_model_cache_loads_each_model_once(monkeypatch):
    from vsr.models import registry

    calls = []
    real = registry.load_model_from
    monkeypatch.setattr(registry, "load_model_from", lambda n, s: calls.append((n, s)) or real(n, s))
    cache = registry.ModelCache()
    first = cache.load("bicubic", 2)
    assert cache.load("bicubic", 2) is first and cache.load("bicubic", 4) is not first
    assert calls == [("bicubic", 2), ("bicubic", 4)] and len(cache) == 2


def test_a_second_batch_on_the_same_out_dir_is_refused(tmp_path):
    from vsr.errors import EngineError

    with Ledger(tmp_path / "ledger.jsonl"):
        with pytest.raises(EngineError, match="another vsr batch is running"):
            Ledger(tmp_path / "ledger.jsonl").__enter__()
    with Ledger(tmp_path / "ledger.jsonl") as again:  # released when the first one ends
        again.append({"event": "attempt"})


def test_ray_engine_without_ray_exits_1(tmp_path, capsys, monkeypatch, video_factory):
    import sys

    from vsr.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    clip = video_factory("noray.mp4", width=64, height=48, frames=6, audio_tracks=0)
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(clip), "--out-dir", str(tmp_path / "o"), "--engine", "ray", "--model", "bicubic"])
    err = capsys.readouterr().err
    assert (
        exc.value.code == 1 and "pip install 'vsr-faces[ray]'" in err and len(err.strip().splitlines()) == 1
    )


def test_workers_default_to_one_per_gpu_each_pinned(tmp_path, monkeypatch):
    from vsr.pipelines.batch.local import visible_gpus
    from vsr.pipelines.batch.runner import make_engine

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    engine = make_engine(cfg(tmp_path, "x"), 10)
    assert (engine.workers, engine.gpus) == (2, ["2", "5"])  # worker i gets CUDA_VISIBLE_DEVICES=gpus[i]
    cpu = make_engine(cfg(tmp_path, "x", defaults=EnhanceConfig(Path(), Path(), device="cpu")), 10)
    assert (cpu.workers, cpu.gpus) == (1, [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert make_engine(cfg(tmp_path, "x", workers=3), 10).workers == 3 and visible_gpus() == []


def test_out_of_memory_is_retried_after_a_backoff_bad_input_is_not(tmp_path):
    from vsr.pipelines.batch.job import Task
    from vsr.pipelines.batch.plan import Job
    from vsr.pipelines.batch.progress import BatchProgress
    from vsr.pipelines.batch.runner import Tracker

    conf = cfg(tmp_path, "x", retries=2, retry_delay=1.5)
    job = Job(tmp_path / "a.mp4", tmp_path / "a_x2.mp4", conf.defaults, "argument")
    oom = {"kind": "error", "error_class": "ResourceError", "error": "out of memory", "transient": True}
    with Ledger(tmp_path / "ledger.jsonl") as ledger, BatchProgress(1, 6, quiet=True) as progress:
        tracker = Tracker([job], ledger, progress, conf)
        task = Task(0, conf.defaults, {})
        retry, delay = tracker.outcome(task, oom)
        assert retry.attempt == 2 and delay == 1.5
        retry, delay = tracker.outcome(retry, oom)
        assert retry.attempt == 3 and delay == 3.0
        assert tracker.outcome(retry, oom) == (None, 0.0)  # retries spent
        bad = {"kind": "error", "error_class": "InputError", "error": "corrupt", "transient": False}
        tracker2 = Tracker([job], ledger, progress, conf)
        assert tracker2.outcome(Task(0, conf.defaults, {}), bad) == (None, 0.0)
    assert tracker.results[0].status == "failed" and tracker.results[0].attempts == 3
    assert [r["next"] for r in read_ledger(tmp_path / "ledger.jsonl")] == [
        "retry",
        "retry",
        "failed",
        "failed",
    ]


def _one_clip(tmp_path: Path, video_factory) -> tuple[Path, Path]:
    src = tmp_path / "in"
    src.mkdir()
    clip = video_factory("rec.mp4", width=64, height=48, frames=6, audio_tracks=0)
    (src / "rec.mp4").write_bytes(clip.read_bytes())
    return src, tmp_path / "out"


def test_an_output_finished_just_before_a_kill_is_recorded_not_redone(tmp_path, video_factory):
    from vsr.pipelines.batch import run_batch
    from vsr.pipelines.batch.fingerprint import read_sidecar, sidecar_path

    src, out = _one_clip(tmp_path, video_factory)
    conf = cfg(tmp_path, src, out_dir=out)
    (job,) = build_plan(conf).jobs
    fp = fingerprint(job.config, "quick", ModelIdentity())
    out.mkdir()
    write_sidecar(job.output, "running", fp)  # the attempt started ...
    os.utime(sidecar_path(job.output), ns=(10**18, 10**18))
    job.output.write_bytes((src / "rec.mp4").read_bytes())  # ... and published its output, then kill -9
    report = run_batch(conf)
    assert [f.status for f in report.files] == ["recovered"] and report.workers == 0
    assert read_sidecar(job.output)["state"] == "done"
    assert [r["event"] for r in read_ledger(out / "ledger.jsonl")] == ["recovered"]
    assert [f.status for f in run_batch(conf).files] == ["skipped"]


def test_an_output_not_written_by_vsr_batch_is_not_replaced(tmp_path, video_factory, capsys):
    from vsr.cli import main

    src, out = _one_clip(tmp_path, video_factory)
    out.mkdir()
    (out / "rec_x2.mp4").write_bytes(b"someone's file")
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(src), "--out-dir", str(out), "--model", "bicubic"])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and "not written by vsr batch" in err and "--overwrite" in err
    assert (out / "rec_x2.mp4").read_bytes() == b"someone's file"
