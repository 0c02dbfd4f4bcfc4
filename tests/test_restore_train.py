"""`vsr train --task restore`: the trainer's loop with the restore task: runs, logs the collapse guards,
resumes bit-identically, exports weights that `vsr restore` loads."""

from __future__ import annotations

import csv

import torch
from restore_fixtures import write_chips

from vsr.pipelines.train.checkpoint import export_weights, load_checkpoint
from vsr.pipelines.train.config_toml import resolve
from vsr.pipelines.train.loop import train


def _flags(data, out, **extra):
    return {
        "task": "restore",
        "stage": "gan",
        "data.sources": [f"images:{data}"],
        "data.val_fraction": 0.25,
        "data.hr_size": 16,
        "data.workers": 0,
        "data.val_samples": 2,
        "model.channels": 4,
        "model.disc_channels": 4,
        "model.disc_stages": 2,
        "restore.downsamples": 2,
        "restore.dilated": 1,
        "restore.detect": False,
        "batch_size": 2,
        "steps": 4,
        "log_every": 1,
        "val_every": 2,
        "save_every": 2,
        "device": "cpu",
        "out": str(out),
        **extra,
    }


def test_restore_task_trains_logs_guards_and_resumes_bit_identical(tmp_path):
    data = tmp_path / "faces"
    write_chips(data, 8, side=24)
    full = train(resolve(flags=_flags(data, tmp_path / "full")), live=False)
    assert full.step == 4
    with open(tmp_path / "full" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [r for r in rows if r["loss_pixel"]]
    assert len(logged) == 4
    for r in logged:
        assert 0 <= float(r["d_acc_real"]) <= 1 and 0 <= float(r["d_acc_fake"]) <= 1
        assert float(r["div_ratio"]) >= 0 and float(r["loss_adv"]) > 0
    val = [r for r in rows if r["val_psnr_masked"]]
    assert val and all(float(r["val_div"]) >= 0 for r in val)
    assert (tmp_path / "full" / "samples" / "step_0000004.png").is_file()

    class Stop(Exception):
        pass

    def stop_at_2(done):
        if done == 2:
            raise Stop

    try:
        train(resolve(flags=_flags(data, tmp_path / "split")), live=False, on_step=stop_at_2)
    except Stop:
        pass
    resumed = train(resolve(flags={**_flags(data, tmp_path / "split"), "resume": True}), live=False)
    assert resumed.step == 4
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in ("params", "params_ema", "disc"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)

    # export -> a model `vsr restore` can load
    from vsr.pipelines.restore.run import RestoreOptions, Restorer

    out = tmp_path / "restore.safetensors"
    export_weights(full.checkpoint, out)
    restorer = Restorer(RestoreOptions(model=str(out), detect=False, device="cpu"))
    assert restorer.module.downsamples == 2


def test_restore_run_continues_from_weights_with_init_and_refuses_another_shape(tmp_path):
    import pytest
    from restore_fixtures import tiny_model

    from vsr.errors import ConfigError
    from vsr.models.weights import read_safetensors

    data = tmp_path / "faces"
    write_chips(data, 8, side=24)
    weights = tiny_model(tmp_path / "init.safetensors", seed=3)
    start, _ = read_safetensors(weights)
    flags = _flags(data, tmp_path / "cont", init=str(weights), steps=1, **{"optim.lr": 1e-12})
    result = train(resolve(flags=flags), live=False)
    params = load_checkpoint(result.checkpoint)["params"]
    for name, value in start.items():  # one step at a vanishing lr: still the init's weights
        torch.testing.assert_close(params[name], value, atol=1e-6, rtol=0)
    other = _flags(data, tmp_path / "other", init=str(weights), **{"model.channels": 8})
    with pytest.raises(ConfigError, match="model.channels"):
        train(resolve(flags=other), live=False)
