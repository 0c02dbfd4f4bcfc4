"""End to end on a generated ChokePoint tree: train, interrupt, resume exactly, gan stage, export, CLI."""

from __future__ import annotations

import csv
import errno
import io

import pytest
import torch
from click.testing import CliRunner
from train_fixtures import make_chokepoint, tiny_flags

from vsr.cli.train import train as train_cli
from vsr.errors import ConfigError, ResourceError
from vsr.models.registry import load_model_from
from vsr.models.weights import sha256_of
from vsr.pipelines.train.checkpoint import load_checkpoint, save_checkpoint
from vsr.pipelines.train.config import TrainConfig
from vsr.pipelines.train.config_toml import resolve, to_toml
from vsr.pipelines.train.loop import lr_at, train
from vsr.progress import Progress


def assert_same_state(a: dict, b: dict) -> None:
    """Parameters, EMA, discriminator and optimiser state are bit-identical."""
    for key in ("params", "params_ema", "disc"):
        if a[key] is None:
            assert b[key] is None
            continue
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for name, state in a["optimizers"]["g"]["state"].items():
        assert torch.equal(state["exp_avg"], b["optimizers"]["g"]["state"][name]["exp_avg"])
    assert a["step"] == b["step"] and a["data"] == b["data"]


@pytest.fixture(scope="module")
def chokepoint(tmp_path_factory):
    return make_chokepoint(tmp_path_factory.mktemp("data") / "ChokePoint")


# A constant learning rate, so that a 3-step run extended to 5 steps matches a 5-step run
# (a cosine schedule depends on the total number of steps; test_lr_schedule checks it).
CONSTANT = {"optim.schedule": "constant"}


@pytest.fixture(scope="module")
def reference(chokepoint, tmp_path_factory):
    """An uninterrupted 5-step psnr run."""
    out = tmp_path_factory.mktemp("runs") / "ref"
    train(resolve(flags=tiny_flags(chokepoint, out, **CONSTANT)), live=False)
    return out


def test_lr_schedule():
    cfg = resolve(
        flags={"data.sources": ["images:x"], "steps": 100, "optim.lr": 1.0, "optim.warmup_steps": 10}
    )
    assert [lr_at(s, cfg) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_at(10, cfg) == 1.0 and lr_at(99, cfg) == pytest.approx(0.01, abs=1e-3)
    assert lr_at(55, cfg) == pytest.approx(0.505, abs=1e-3)  # half way: (1 + 0.01) / 2
    cfg.optim.schedule = "multistep"
    assert [lr_at(s, cfg) for s in (49, 50, 75)] == [1.0, 0.5, 0.25]


def test_run_writes_the_documented_outputs(reference):
    names = {p.name for p in reference.iterdir()}
    assert {"last.ckpt", "step_0000003.ckpt", "metrics.csv", "config.toml", "samples"} <= names
    assert sorted(p.name for p in (reference / "samples").iterdir()) == [
        "step_0000002.png",
        "step_0000004.png",
        "step_0000005.png",
    ]
    rows = list(csv.DictReader(open(reference / "metrics.csv")))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert float(rows[0]["loss_pixel"]) > 0 and float(rows[0]["lr"]) > 0
    assert rows[1]["val_psnr"] and rows[1]["val_ssim"] and not rows[0]["val_psnr"]
    ckpt = load_checkpoint(reference / "last.ckpt")
    assert ckpt["arch"] == {"arch": "srresnet", "scale": 2, "blocks": 2, "channels": 8, "batch_norm": True}
    assert ckpt["step"] == 5 and ckpt["data"]["position"] == 10 and ckpt["disc"] is None
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"} and ckpt["config"]["stage"] == "psnr"
    # the resolved config reads back as the same config
    assert resolve(reference / "config.toml").to_dict() == ckpt["config"]


def test_interrupted_run_resumes_to_the_same_result(chokepoint, reference, tmp_path):
    out = tmp_path / "run"
    flags = tiny_flags(chokepoint, out, **CONSTANT)

    def interrupt(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(resolve(flags=flags), live=False, on_step=interrupt)
    assert load_checkpoint(out / "last.ckpt")["step"] == 3
    assert not [p for p in out.iterdir() if ".tmp" in p.name or p.suffix == ".part"]
    result = train(resolve(flags={**flags, "resume": True}), live=False)
    assert result.step == 5
    assert_same_state(load_checkpoint(out / "last.ckpt"), load_checkpoint(reference / "last.ckpt"))
    # metrics.csv has each step once, as an uninterrupted run would
    assert [r["step"] for r in csv.DictReader(open(out / "metrics.csv"))] == ["1", "2", "3", "4", "5"]


def test_cli_three_steps_then_resume_to_five_equals_five(chokepoint, reference, tmp_path):
    # the tiny settings as a TOML file, as --print-config writes it
    config = tmp_path / "tiny.toml"
    config.write_text(to_toml(resolve(flags=tiny_flags(chokepoint, tmp_path / "unused", **CONSTANT))))
    out = tmp_path / "run"
    runner = CliRunner()
    first = runner.invoke(
        train_cli, ["--config", str(config), "--steps", "3", "--out", str(out)], catch_exceptions=False
    )
    assert first.exit_code == 0, first.output
    assert "step 3:" in first.output and load_checkpoint(out / "last.ckpt")["step"] == 3
    # --resume takes the saved config; only --steps changes
    second = runner.invoke(train_cli, ["--out", str(out), "--resume", "--steps", "5"], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert_same_state(load_checkpoint(out / "last.ckpt"), load_checkpoint(reference / "last.ckpt"))


def test_print_config_is_documented_default_toml(tmp_path):
    res = CliRunner().invoke(train_cli, ["--print-config"], catch_exceptions=False)
    assert res.exit_code == 0
    assert "[data]" in res.output and "hr_size = 128" in res.output and "[--hr-size]" in res.output
    path = tmp_path / "default.toml"
    path.write_text(res.output)
    assert resolve(path, validate=False) == TrainConfig()


def test_resume_with_incompatible_config_names_the_key(chokepoint, reference, tmp_path):
    flags = {**tiny_flags(chokepoint, reference, **CONSTANT), "resume": True}
    with pytest.raises(ConfigError, match=r"model.blocks \(--blocks\) = 2 but this run has 3"):
        train(resolve(flags={**flags, "model.blocks": 3}), live=False)
    with pytest.raises(ConfigError, match=r"stage \(--stage\) = 'psnr' but this run has 'gan'"):
        train(resolve(flags={**flags, "stage": "gan"}), live=False)
    res = CliRunner().invoke(train_cli, ["--out", str(reference), "--resume", "--scale", "4"])
    assert isinstance(res.exception, ConfigError) and "scale (--scale) = 2" in str(res.exception)
    with pytest.raises(ConfigError, match="no checkpoint to resume"):
        train(resolve(flags={**flags, "out": str(tmp_path / "empty")}), live=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(resolve(flags=tiny_flags(chokepoint, reference)), live=False)


def test_gan_stage_from_psnr_checkpoint_then_export(chokepoint, reference, tmp_path):
    out = tmp_path / "gan"
    flags = tiny_flags(chokepoint, out, stage="gan", init=str(reference / "last.ckpt"), steps=3, val_every=3)
    result = train(resolve(flags=flags), live=False)
    assert result.step == 3 and result.metrics["val_psnr"] > 0
    ckpt = load_checkpoint(out / "last.ckpt")
    assert ckpt["disc"] is not None and ckpt["optimizers"]["d"] is not None
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert all(float(r["loss_adv"]) > 0 and float(r["loss_d"]) > 0 and r["loss_fm"] for r in rows)
    assert any(k.endswith("running_mean") for k in ckpt["disc"])  # SRGAN's BatchNorm discriminator
    # the generator started from the psnr weights, not from scratch
    start = load_checkpoint(reference / "last.ckpt")["params_ema"]["head.0.weight"]
    assert torch.allclose(ckpt["params"]["head.0.weight"], start, atol=0.05)
    # a psnr init with another architecture is refused, naming the key
    with pytest.raises(
        ConfigError, match=r"init \(--init\) .* has blocks=2 but this run has model.blocks \(--blocks\) = 3"
    ):
        train(resolve(flags={**flags, "out": str(tmp_path / "x"), "model.blocks": 3}), live=False)

    # model.disc_batch_norm = false: a discriminator without BatchNorm
    no_bn = tmp_path / "gan_no_bn"
    train(
        resolve(
            flags={**flags, "out": str(no_bn), "steps": 1, "val_every": 1, "model.disc_batch_norm": False}
        ),
        live=False,
    )
    assert not any(k.endswith("running_mean") for k in load_checkpoint(no_bn / "last.ckpt")["disc"])

    # export through the CLI: EMA generator -> .safetensors + .sha256, digest on stdout
    weights = tmp_path / "faces_x2.safetensors"
    res = CliRunner().invoke(
        train_cli, ["export", str(out / "last.ckpt"), str(weights)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    digest = sha256_of(weights)
    assert digest in res.output
    assert (tmp_path / "faces_x2.safetensors.sha256").read_text().split()[0] == digest
    loaded = load_model_from(str(weights), 2)
    assert loaded.sha256 == digest
    with torch.no_grad():
        y = loaded.module(torch.rand(1, 3, 12, 10))
    assert y.shape == (1, 3, 24, 20)
    # the exported weights are the EMA generator (to fp16 precision)
    ema = ckpt["params_ema"]["tail.weight"]
    assert torch.allclose(loaded.module.state_dict()["tail.weight"], ema, atol=1e-3)


def test_checkpoint_write_failures_leave_the_last_good_one(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint({"step": 1, "params": {"w": torch.ones(2)}}, path)
    real_save = torch.save

    def disk_full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(ResourceError, match="disk full .* previous checkpoint is intact"):
        save_checkpoint({"step": 2}, path)

    def interrupted(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_worker_processes_give_the_same_run(chokepoint, reference, tmp_path):
    """Sample order and degradations do not depend on how many workers load them."""
    out = tmp_path / "workers"
    train(resolve(flags=tiny_flags(chokepoint, out, **CONSTANT, **{"data.workers": 2})), live=False)
    assert_same_state(load_checkpoint(out / "last.ckpt"), load_checkpoint(reference / "last.ckpt"))


def test_progress_plain_lines_and_rich_bar():
    stream = io.StringIO()
    with Progress("vsr train", 10, unit="steps", live=False, every=0, stream=stream) as progress:
        progress.set(5, loss_g=0.25)
        progress.line("checkpoint written")
    lines = stream.getvalue().splitlines()
    assert (
        lines[0].startswith("vsr train: 5/10 steps ") and "/s eta" in lines[0] and "loss_g=0.25" in lines[0]
    )
    assert lines[1] == "vsr train: checkpoint written"
    stream = io.StringIO()
    with Progress("vsr train", 10, unit="steps", live=True, stream=stream) as progress:
        progress.set(10, loss_g=0.5)
    assert "10/10" in stream.getvalue() and "loss_g=0.5" in stream.getvalue()


@pytest.mark.needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gan_stage_with_autocast_on_cuda(chokepoint, reference, tmp_path, precision):
    out = tmp_path / precision
    flags = tiny_flags(chokepoint, out, stage="gan", init=str(reference / "last.ckpt"), steps=2)
    result = train(resolve(flags={**flags, "device": "cuda", "precision": precision}), live=False)
    ckpt = load_checkpoint(out / "last.ckpt")
    assert result.step == 2 and all(torch.isfinite(v).all() for v in ckpt["params"].values())
    assert (ckpt["scaler"] is not None) == (precision == "fp16")
