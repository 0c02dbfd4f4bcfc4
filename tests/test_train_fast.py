"""The GPU-speed trainer path on the CPU: patch prep, device-resident batches, --time-limit, step speed-ups."""

from __future__ import annotations

import copy
import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from train_fixtures import make_images, tiny_flags, write_rgb

from vsr.cli.train import train as train_cli
from vsr.errors import ConfigError, DataError, OutputError
from vsr.pipelines.train import fast
from vsr.pipelines.train.checkpoint import load_checkpoint
from vsr.pipelines.train.config_toml import resolve
from vsr.pipelines.train.data import index_images
from vsr.pipelines.train.degrade import downscale
from vsr.pipelines.train.loop import lr_at, train
from vsr.pipelines.train.patches import MANIFEST, PrepConfig, index_patches, prep_patches
from vsr.pipelines.train.resident import ResidentPatches, resize_matrix, uniforms


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two image folders: 'big' 160x120 textured scenes, 'chips' 48x48 JPEG faces (copied as they are)."""
    root = tmp_path_factory.mktemp("src")
    for i in range(6):
        rng = np.random.default_rng(i)
        img = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (3, 3), 1.0)
        img[:40, :40] = 128  # a flat corner: dropped
        write_rgb(root / "big" / f"{i}.png", img)
    make_images(root / "chips", count=6, size=(48, 48))
    return root


@pytest.fixture(scope="module")
def patches(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "set"
    report = prep_patches(
        PrepConfig(
            sources=[f"images:{sources / 'big'}", f"images:{sources / 'chips'}"],
            out=out,
            size=48,
            budget_mb=0.05,
        )
    )
    return out, report


def flags(data, out, **extra):
    """The trainer tests' tiny run, on a patch folder, with every device-side degradation likely."""
    base = {
        "data.sources": [f"patches:{data}"],
        "data.pool_size": 8,
        "data.val_fraction": 0.2,
        "degrade.jpeg_prob": 0.3,
        "degrade.h264_prob": 0.0,
        "degrade.blur_prob": 0.5,
        "degrade.noise_prob": 0.5,
        "batch_size": 3,
        "optim.schedule": "constant",
    }
    return tiny_flags(data, out, **{**base, **extra})


def test_prep_cuts_tiles_within_the_budget_and_copies_chips(sources, patches):
    out, report = patches
    manifest = json.loads((out / MANIFEST).read_text())
    files = [p for p in out.iterdir() if p.suffix == ".jpg"]
    assert len(files) == manifest["count"] == report.count > 2
    # the first source stays inside its half of the budget, the second gets what is left; bytes are on disk
    first, second = report.sources.values()
    assert first["bytes"] <= 0.05 * 2**20 / 2 and first["bytes"] + second["bytes"] <= 0.05 * 2**20
    assert sum(p.stat().st_size for p in files) == report.bytes
    tiles = {cv2.imread(str(p)).shape for p in files}
    assert tiles == {(48, 48, 3)}
    # face chips of exactly the tile size are the source files byte for byte
    chips = {p.read_bytes() for p in (sources / "chips").iterdir()}
    assert (
        sum(p.read_bytes() in chips for p in files)
        == report.sources[f"images:{sources / 'chips'}"]["patches"]
    )
    # no tile from a flat area; groups name the source image (a split keeps images whole)
    items = index_patches(out).items
    assert len(items) == report.count and all(i.group.startswith("patches:images:") for i in items)
    # the seeded order: the same call gives the same set
    again = prep_patches(
        PrepConfig(sources=list(report.sources), out=out.parent / "again", size=48, budget_mb=0.05)
    )
    assert json.loads((out.parent / "again" / MANIFEST).read_text())["patches"] == manifest["patches"]
    assert again.bytes == report.bytes


def test_prep_errors_are_clear(sources, tmp_path, patches):
    with pytest.raises(OutputError, match="already exists"):
        prep_patches(PrepConfig(sources=[f"images:{sources / 'big'}"], out=patches[0], size=48))
    with pytest.raises(DataError, match="no tile of 256 px"):
        prep_patches(PrepConfig(sources=[f"images:{sources / 'big'}"], out=tmp_path / "x", size=256))
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())  # nothing half-written
    (tmp_path / "bare").mkdir()
    with pytest.raises(DataError, match="vsr train prep"):
        index_patches(tmp_path / "bare")


def test_prep_cli_json(sources, tmp_path):
    res = CliRunner().invoke(
        train_cli,
        [
            "prep",
            "--data",
            f"images:{sources / 'big'}",
            "--out",
            str(tmp_path / "p"),
            "--size",
            "64",
            "--budget-mb",
            "0.02",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["count"] >= 1 and report["bytes"] <= 0.02 * 2**20 and report["size"] == 64


def test_uniforms_are_a_pure_function_of_seed_and_position():
    pos = np.arange(100, 108)
    whole = uniforms(3, 0, pos, 5)
    assert np.array_equal(whole, np.concatenate([uniforms(3, 0, pos[:3], 5), uniforms(3, 0, pos[3:], 5)]))
    assert not np.array_equal(whole, uniforms(4, 0, pos, 5)) and not np.array_equal(
        whole, uniforms(3, 1, pos, 5)
    )
    big = uniforms(0, 0, np.arange(20000), 2)
    assert 0 <= big.min() and big.max() < 1 and abs(big.mean() - 0.5) < 0.01  # uniform enough


def test_resize_matrix_is_the_resample_kernel():
    from vsr.models.resample import resize

    x = torch.rand(2, 3, 32, 32)
    m = resize_matrix(32, 16, "cubic")
    assert torch.allclose(m @ x @ m.T, resize(x, (16, 16), "cubic", antialias=True), atol=1e-5)


def test_resident_batches_match_the_cpu_degradations(patches):
    cfg = resolve(flags=flags(patches[0], "unused", **{"degrade.blur_prob": 0.0, "degrade.noise_prob": 0.0}))
    cfg.degrade.jpeg_prob = cfg.degrade.h264_prob = 0.0
    cfg.degrade.kernels, cfg.degrade.kernel_weights = ["cubic"], [1.0]
    items = index_patches(patches[0]).items
    ds = ResidentPatches(items, cfg, torch.device("cpu"), [])
    assert ds.pool_hr is None and len(ds) == len(items)
    gen = torch.Generator()
    b = ds.batch(np.arange(0, 6), gen)
    assert b["hr"].shape == (6, 3, 32, 32) and b["lr"].shape == (6, 3, 16, 16)
    # the same positions give the same batch; clean cubic LR is the CPU path's downscale (to one level)
    assert torch.equal(ds.batch(np.arange(0, 6), gen)["lr"], b["lr"])
    for hr, lr in zip(b["hr"], b["lr"], strict=True):
        hr8 = (hr * 255).round().byte().permute(1, 2, 0).numpy()
        ref = downscale(hr8, 2, "cubic").astype(int)
        assert np.abs((lr * 255).round().permute(1, 2, 0).numpy().astype(int) - ref).max() <= 1
    # crops are cut from the tiles: each HR crop occurs in the tile its position reads
    ints, _ = ds.draws(np.arange(0, 6))
    for (item, y, x, flip, *_), hr in zip(ints, b["hr"], strict=True):
        crop = ds.tiles[item, y : y + 32, x : x + 32].permute(2, 0, 1).float() / 255
        assert torch.equal(crop.flip(-1) if flip else crop, hr)


def test_resident_degradations_and_pool_change_the_input(patches):
    cfg = resolve(flags=flags(patches[0], "unused", **{"degrade.jpeg_prob": 0.5, "data.pool_size": 16}))
    ds = ResidentPatches(index_patches(patches[0]).items, cfg, torch.device("cpu"), [])
    assert ds.pool_hr.shape == (16, 3, 32, 32) and ds.pool_lr.shape == (16, 3, 16, 16)
    ints, floats = ds.draws(np.arange(0, 200))
    assert 0.3 < (floats[:, 0] > 0).mean() < 0.7 and 0.3 < (floats[:, 1] > 0).mean() < 0.7
    assert 0.3 < (ints[:, 7] >= 0).mean() < 0.7  # compressed slots: pool entries
    b = ds.batch(np.arange(0, 200), torch.Generator().manual_seed(0))
    pooled = ints[:, 7] >= 0
    assert torch.equal(b["hr"][pooled], ds.pool_hr[ints[pooled, 7]].float() / 255)
    assert torch.equal(b["lr"][pooled], ds.pool_lr[ints[pooled, 7]].float() / 255)
    noisy = (floats[:, 1] > 3) & ~pooled & (floats[:, 0] == 0)
    clean = (floats[:, 1] == 0) & ~pooled & (floats[:, 0] == 0)
    assert noisy.any() and clean.any()

    def roughness(lr):  # noise raises the pixel-to-pixel differences
        return (lr[:, :, :, 1:] - lr[:, :, :, :-1]).abs().mean().item()

    assert roughness(b["lr"][noisy]) > roughness(b["lr"][clean])


def test_patch_run_resumes_bit_identically_and_cpu_speed_is_plain(patches, tmp_path):
    ref = train(resolve(flags=flags(patches[0], tmp_path / "ref")), live=False)
    assert ref.step == 5 and ref.metrics["val_psnr"] > 0  # held-out groups of the patch set validate

    def interrupt(step):
        if step == 4:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(resolve(flags=flags(patches[0], out)), live=False, on_step=interrupt)
    train(resolve(flags={**flags(patches[0], out), "resume": True}), live=False)
    a, b = load_checkpoint(out / "last.ckpt"), load_checkpoint(tmp_path / "ref" / "last.ckpt")
    for key in ("params", "params_ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert a["data"] == b["data"] and a["step"] == 5
    # the gan stage runs on the same batches
    gan = train(
        resolve(
            flags=flags(
                patches[0], tmp_path / "gan", stage="gan", init=str(tmp_path / "ref" / "last.ckpt"), steps=2
            )
        ),
        live=False,
    )
    assert gan.step == 2


def test_mixed_or_oversized_patch_configs_are_errors(patches, sources, tmp_path):
    with pytest.raises(ConfigError, match="mixes patches"):
        resolve(
            flags=flags(
                patches[0], tmp_path, **{"data.sources": [f"patches:{patches[0]}", f"images:{sources}"]}
            )
        )
    with pytest.raises(ConfigError, match="occlusion_prob"):
        resolve(flags=flags(patches[0], tmp_path, **{"degrade.occlusion_prob": 0.5}))
    with pytest.raises(
        ConfigError, match=r"data.hr_size \(--hr-size\) 64 is larger than the patches \(48 px\)"
    ):
        train(resolve(flags=flags(patches[0], tmp_path / "big", **{"data.hr_size": 64})), live=False)


class FakeClock:
    """The budget's clock, advanced by the test: deterministic however busy the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    from vsr.pipelines.train import budget

    fake = FakeClock()
    monkeypatch.setattr(budget, "time", fake)
    return fake


def test_time_limit_plans_the_cosine_to_end_inside_the_budget(patches, tmp_path, clock):
    f = flags(
        patches[0], tmp_path / "t", steps=100000, val_every=0, log_every=10, save_every=100000, time_limit=4.0
    )
    f["optim.schedule"] = "cosine"
    clock.now += 0.5  # setup: data, pool, models

    def tick(step):  # 100 steps/s, a little slower after the first plan (the machine got busier)
        clock.now += 0.01 if step < 60 else 0.012

    result = train(resolve(flags=f), live=False, on_step=tick, started=1000.0)
    ckpt = load_checkpoint(tmp_path / "t" / "last.ckpt")
    planned = ckpt["config"]["steps"]
    assert ckpt["step"] == result.step == planned < 100000  # the run ended at its own plan
    assert 150 < planned < 300 and clock.now <= 1004.0  # inside the budget, the reserve kept
    plans = result.budget["plans"]
    assert len(plans) >= 2 and plans[0]["steps_per_s"] == pytest.approx(100, rel=0.01)
    assert plans[-1]["steps_per_s"] < 90  # re-planned at the slower rate
    assert ckpt["config"]["time_limit"] == 0.0
    cfg = resolve(tmp_path / "t" / "config.toml")
    # the cosine ends at the planned step: the last step trains at the floor, give or take one step's decay
    assert cfg.steps == planned and lr_at(planned, cfg) == pytest.approx(cfg.lr * cfg.optim.min_lr_ratio)
    assert lr_at(planned - 1, cfg) < 0.05 * cfg.lr


def test_time_limit_hit_mid_way_leaves_a_resumable_checkpoint(patches, tmp_path, clock):
    f = flags(
        patches[0], tmp_path / "t", steps=100000, val_every=0, log_every=5, save_every=100000, time_limit=3.0
    )
    f["optim.schedule"] = "cosine"

    def slow_down(step):  # after the plan the machine gets far slower: the deadline arrives first
        clock.now += 0.01 if step < 40 else 0.3

    result = train(resolve(flags=f), live=False, on_step=slow_down, started=1000.0)
    ckpt = load_checkpoint(tmp_path / "t" / "last.ckpt")
    assert ckpt["step"] == result.step < ckpt["config"]["steps"]  # stopped before the plan, saved
    assert clock.now < 1003.0
    done = train(
        resolve(flags={**f, "time_limit": 0.0, "resume": True, "steps": ckpt["config"]["steps"]}), live=False
    )
    assert done.step == ckpt["config"]["steps"]


def test_cpu_speed_is_plain_and_compile_falls_back(monkeypatch):
    cfg = resolve(flags={"data.sources": ["images:x"]})
    cpu = fast.Speed.of(cfg, torch.device("cpu"))
    assert cpu == fast.Speed(channels_last=False, compile_mode=None, fused_adam=False)
    asked = dataclasses.replace(cfg, compile="default")  # asked for explicitly: compiled on the CPU too
    assert fast.Speed.of(asked, torch.device("cpu")).compile_mode == "default"

    def broken(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("no compiler here")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    notes = []
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    fwd = fast.Speed(False, "default", False).forward(model, notes.append)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(fwd(x), model(x)) and torch.equal(fwd(x), model(x))
    assert len(notes) == 1 and "no compiler here" in notes[0]

    # a compiled module whose backward fails is caught at the first call too
    class BadBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("backward compile failed")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: lambda x: BadBackward.apply(fn(x)))
    notes.clear()
    fwd = fast.Speed(False, "default", False).forward(model, notes.append)
    out = fwd(x)
    assert torch.equal(out, model(x)) and "backward compile failed" in notes[0]
    out.sum().backward()  # the eager output trains
    assert model.weight.grad is not None


def test_foreach_ema_equals_the_per_tensor_update():
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    ref = copy.deepcopy(ema)
    fast.ema_update(ema, model, 0.9)
    with torch.no_grad():
        for e, p in zip(ref.parameters(), model.parameters(), strict=True):
            e.lerp_(p, 0.1)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), ref.parameters(), strict=True))


def test_images_kind_still_reads_a_patch_folder(patches):
    # the classic loader reads a patch folder too (plain JPEG files), e.g. without a device to hold it
    assert len(index_images(patches[0]).items) == patches[1].count


def test_cli_set_and_time_limit(patches, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        train_cli,
        [
            "--data",
            "images:x",
            "--set",
            "data.pool_size=16",
            "--set",
            "optim.betas=[0.8, 0.9]",
            "--print-config",
        ],
    )
    assert res.exit_code == 0 and "pool_size = 16" in res.output and "betas = [0.8, 0.9]" in res.output
    bad = runner.invoke(train_cli, ["--data", "images:x", "--set", "pool_size16", "--print-config"])
    assert bad.exit_code != 0 and "KEY=VALUE" in str(bad.exception or bad.output)
    # --time-limit through the CLI (which counts it from its own start)
    out = tmp_path / "cli"
    f = flags(patches[0], out, steps=100000, val_every=0, save_every=100000)
    sets = [
        x for k, v in f.items() if k not in ("data.sources", "out") for x in ("--set", f"{k}={json.dumps(v)}")
    ]
    res = runner.invoke(
        train_cli,
        ["--data", f"patches:{patches[0]}", "--out", str(out), "--time-limit", "8", *sets],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(out / "last.ckpt")  # a checkpoint, however busy the machine
    assert ckpt["budget"]["limit_s"] == 8.0 and ckpt["config"]["time_limit"] == 0.0 and ckpt["step"] >= 1
    assert ckpt["step"] == resolve(out / "config.toml").steps or "time limit 8 s reached" in res.output
