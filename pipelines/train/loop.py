"""The SRGAN training loop, top to bottom: output folder, data, models, losses, the step, EMA,
validation, checkpoints, resume.

Stage ``psnr`` trains SRResNet with a pixel loss.  Stage ``gan`` starts from a psnr checkpoint
(``init``) and adds the discriminator: adversarial loss (vanilla or relativistic average),
feature matching on the discriminator's features and, with user-supplied VGG19 weights, a
perceptual loss.  The sample order, crops and degradations are a pure function of
(seed, sample position) and every piece of state is in the checkpoint, so ``resume`` continues
exactly where an uninterrupted run would be.

Call it from Python as ``train(resolve(flags={"data.sources": ["images:faces"], "steps": 1000}))``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vsr.atomic import write_atomic
from vsr.errors import ConfigError
from vsr.models.weights import load_state_strict
from vsr.pipelines.train import losses as L
from vsr.pipelines.train.budget import TimeBudget
from vsr.pipelines.train.checkpoint import (
    check_resume,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from vsr.pipelines.train.config import TrainConfig, key_label
from vsr.pipelines.train.config_toml import to_toml
from vsr.pipelines.train.data import build_datasets, worker_init
from vsr.pipelines.train.fast import Speed, ema_update
from vsr.pipelines.train.report import MetricsCSV
from vsr.pipelines.train.resident import ResidentPatches, is_resident
from vsr.pipelines.train.task import make_task
from vsr.progress import Progress


@dataclass
class TrainResult:
    """What a finished (or already complete) run left behind."""

    out: Path
    step: int
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)  # the last validation
    skipped: list[str] = field(default_factory=list)  # unreadable files skipped while indexing and loading
    budget: dict | None = None  # --time-limit: the limit, the plans made, the measured steps/s


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Generator learning rate for (0-based) ``step``: linear warmup, then cosine / multistep / constant."""
    o, peak = cfg.optim, cfg.lr
    if step < o.warmup_steps:
        return peak * (step + 1) / o.warmup_steps
    if o.schedule == "constant":
        return peak
    if o.schedule == "multistep":
        return peak * o.gamma ** sum(step >= m * cfg.steps for m in o.milestones)
    progress = (step - o.warmup_steps) / max(1, cfg.steps - o.warmup_steps)
    floor = peak * o.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def resolve_device(name: str, precision: str) -> tuple[torch.device, torch.dtype | None]:
    """(device, autocast dtype or None) for ``--device`` and ``--precision``, by the shared training policy."""
    from vsr.pipelines.device import DTYPES, resolve_precision
    from vsr.pipelines.device import resolve_device as device_for

    device = device_for(name, flag=key_label("device"))
    precision = resolve_precision(precision, device, purpose="train", flag=key_label("precision"))
    return device, None if precision == "fp32" else DTYPES[precision]


def _load_init(path: Path, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Generator weights to start from (EMA preferred), checked against this run's architecture."""
    from vsr.models.weights import read_safetensors

    if path.suffix.lower() == ".safetensors":
        state, arch = read_safetensors(path)
    else:
        ckpt = load_checkpoint(path)
        state, arch = ckpt.get("params_ema") or ckpt["params"], ckpt["arch"]
    for key, value in cfg.arch.items():
        if arch.get(key) != value:
            name = "scale" if key == "scale" else f"model.{key}"
            raise ConfigError(
                f"{key_label('init')} {path} has {key}={arch.get(key)!r} but this run has "
                f"{key_label(name)} = {value!r}; use the init's value"
            )
    return state


def _step_backward(loss: torch.Tensor, params, opt, scaler, clip: float) -> torch.Tensor:
    """Scaled backward, unscale, clip, step; returns the gradient norm (before clipping)."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    scaler.step(opt)
    return norm


def train(
    cfg: TrainConfig,
    live: bool | None = None,
    on_step: Callable[[int], None] | None = None,
    started: float | None = None,
) -> TrainResult:
    """Run (or resume) one training run as configured; returns where its results are.

    ``live`` forces the rich progress bar on or off (default: on when stderr is a TTY).
    ``on_step(steps_done)`` is called after every step (tests use it to interrupt a run).
    With ``cfg.time_limit`` the run plans its own ``steps`` (``budget.TimeBudget``; ``cfg`` is not changed),
    counting from ``started`` (a ``time.monotonic()`` reading; default: now; the CLI passes its own start).
    """
    cfg.validate()
    budget = None
    if cfg.time_limit:
        cfg = copy.deepcopy(cfg)  # its steps become the plan
        budget = TimeBudget(cfg.time_limit, 0, cfg.steps, t0=time.monotonic() if started is None else started)
    out = Path(cfg.out)
    last = out / "last.ckpt"

    # ---- 1. the checkpoint to resume from (nothing is written before the data and models are ready) ----
    ckpt = None
    notes: list[str] = []
    if cfg.resume:
        if not last.is_file():
            raise ConfigError(f"{key_label('resume')}: no checkpoint to resume at {last}")
        ckpt = load_checkpoint(last)
        notes += check_resume(ckpt["config"], cfg, last)
    elif last.exists():
        raise ConfigError(
            f"{key_label('out')} {out} already holds a run ({last}); add --resume or use another --out"
        )
    start = int(ckpt["step"]) if ckpt else 0
    if budget is not None:
        budget.start_step = start

    # ---- 2. device, precision, seeds ----
    device, amp_dtype = resolve_device(cfg.device, cfg.precision)
    # Fixed crop sizes: let cuDNN pick the fastest kernels (CUDA runs are reproducible only up to
    # kernel choice; CPU runs are exact).
    torch.backends.cudnn.benchmark = device.type == "cuda"
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)

    # ---- 3. data: sample positions start..end are a pure function of the seed ----
    # The task (sr, restore) supplies the networks, batch maker, generator inputs, losses and validation.
    task = make_task(cfg)
    train_set, val_set, skipped = build_datasets(cfg, task.sample_maker())
    position = int(ckpt["data"]["position"]) if ckpt else 0
    if ckpt and ckpt["data"].get("items") != len(train_set):
        notes.append(f"the training set now has {len(train_set)} items (was {ckpt['data'].get('items')})")
    positions = range(position, position + max(0, cfg.steps - start) * cfg.batch_size)
    if is_resident(cfg):  # patches: decoded once onto the device, degraded there
        train_set = ResidentPatches(train_set.items, cfg, device, notes)
        loader = train_set.batches(position, max(0, cfg.steps - start), cfg.batch_size)
    else:
        loader = torch.utils.data.DataLoader(
            train_set,
            batch_size=cfg.batch_size,
            sampler=positions,
            num_workers=cfg.data.workers,
            worker_init_fn=worker_init,
            pin_memory=device.type == "cuda",
            drop_last=True,
            prefetch_factor=4 if cfg.data.workers else None,
            # OpenCV's thread pool does not survive fork() (a worker hangs in cv2 once the parent has
            # used it, as validation does): start workers fresh.
            multiprocessing_context="spawn" if cfg.data.workers else None,
        )
    if val_set is not None:
        val_items = [val_set[i] for i in range(len(val_set))]
        val_batch = {
            k: torch.stack([v[k] for v in val_items]) for k, t in val_items[0].items() if torch.is_tensor(t)
        }
        skipped += [s for v in val_items for s in v["skipped"].split("\n") if s]

    # ---- 4. models: generator, its EMA, and the discriminator for the gan stage ----
    speed = Speed.of(cfg, device)  # channels_last, torch.compile and fused Adam where they pay (CUDA)
    gen = speed.module(task.generator().to(device))
    disc = speed.module(task.discriminator().to(device)) if cfg.stage == "gan" else None
    if ckpt is None and cfg.init:
        load_state_strict(gen, _load_init(Path(cfg.init), cfg), cfg.init)
    elif ckpt is None and cfg.stage == "gan" and task.gan_needs_init:
        notes.append(
            "gan stage without --init: the generator starts untrained (a psnr checkpoint works far better)"
        )
    ema = copy.deepcopy(gen).eval().requires_grad_(False)
    if ckpt is not None:
        gen.load_state_dict(ckpt["params"])
        ema.load_state_dict(ckpt.get("params_ema") or ckpt["params"])
        if disc is not None:
            disc.load_state_dict(ckpt["disc"])
    vgg = (
        L.load_vgg19(Path(cfg.loss.vgg_weights), cfg.loss.vgg_layer).to(device)
        if (cfg.stage == "gan" and cfg.loss.vgg_weights)
        else None
    )

    # ---- 5. optimisers, AMP scaler, restored state ----
    betas = tuple(cfg.optim.betas)
    opt_g = speed.adam(gen.parameters(), lr=cfg.lr, betas=betas, weight_decay=cfg.optim.weight_decay)
    opt_d = (
        speed.adam(
            disc.parameters(),
            lr=cfg.optim.disc_lr or cfg.lr,
            betas=betas,
            weight_decay=cfg.optim.weight_decay,
        )
        if disc is not None
        else None
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if ckpt is not None:
        opt_g.load_state_dict(ckpt["optimizers"]["g"])
        if opt_d is not None:
            opt_d.load_state_dict(ckpt["optimizers"]["d"])
        if ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
    disc_lr_ratio = (cfg.optim.disc_lr or cfg.lr) / cfg.lr

    def autocast():
        return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)

    def checkpoint(step: int, val: dict[str, float]) -> dict:
        return {
            "format": 1,
            "step": step,
            "arch": cfg.arch,
            "config": cfg.to_dict(),
            "params": gen.state_dict(),
            "params_ema": ema.state_dict(),
            "disc": disc.state_dict() if disc is not None else None,
            "optimizers": {"g": opt_g.state_dict(), "d": opt_d.state_dict() if opt_d is not None else None},
            "schedule": {"kind": cfg.optim.schedule, "lr": lr_at(max(step - 1, 0), cfg)},
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "rng": rng_state(),
            "data": {
                "position": position + (step - start) * cfg.batch_size,
                "seed": cfg.seed,
                "items": len(train_set),
                "skipped": len(skipped),
            },
            "val": val,
            "budget": budget.summary() if budget is not None else None,
        }

    # ---- 6. output folder: resolved config, samples, metrics ----
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)

    def write_config() -> None:  # again when --time-limit plans the steps
        write_atomic(out / "config.toml", to_toml(dataclasses.replace(cfg, resume=False, time_limit=0.0)))

    write_config()
    metrics_csv = MetricsCSV(out / "metrics.csv", resume_step=start if ckpt else None)

    # ---- 7. the loop ----
    lo, clip = cfg.loss, cfg.optim.grad_clip
    sums: dict[str, torch.Tensor] = {}
    val: dict[str, float] = dict(ckpt.get("val") or {}) if ckpt else {}
    done = saved = start
    shown: dict[str, float] = {}
    progress = Progress("vsr train", cfg.steps, unit="steps", every=30.0, start=start, live=live)
    gen_forward = speed.forward(gen, lambda note: progress.line(f"warning: {note}"))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    try:
        with progress:
            for note in notes:
                progress.line(f"warning: {note}")
            if start >= cfg.steps:
                progress.line(
                    f"{last} is already at step {start} of {cfg.steps}; raise --steps to train further"
                )
            for step, batch in enumerate(loader, start):
                lr_now = lr_at(step, cfg)
                for group in opt_g.param_groups:
                    group["lr"] = lr_now
                skipped_now = batch.pop("skipped")
                batch = {k: speed.tensor(v.to(device, non_blocking=True)) for k, v in batch.items()}
                skipped += [s for entry in skipped_now for s in entry.split("\n") if s]

                # generator step
                gen.train()
                parts: dict[str, torch.Tensor] = {}
                with autocast():
                    sr = task.forward(gen_forward, batch)
                    parts["loss_pixel"] = task.pixel_loss(sr.float(), batch)
                    loss_g = lo.pixel_weight * parts["loss_pixel"]
                    if disc is not None:
                        disc.requires_grad_(False)
                        real_in, fake_in = task.disc_inputs(sr, batch)
                        fake_logits, fake_feats = disc(*fake_in, features=True)
                        with torch.no_grad():
                            real_logits, real_feats = disc(*real_in, features=True)
                        parts["loss_adv"] = L.generator_adversarial_loss(
                            real_logits.float(), fake_logits.float(), lo.adversarial
                        )
                        parts["loss_fm"] = L.feature_matching_loss(
                            [f.float() for f in real_feats], [f.float() for f in fake_feats]
                        )
                        loss_g = (
                            loss_g
                            + lo.adv_weight * parts["loss_adv"]
                            + lo.feature_match_weight * parts["loss_fm"]
                        )
                        if vgg is not None:
                            parts["loss_perceptual"] = L.perceptual_loss(vgg, sr.float(), batch["hr"])
                            loss_g = loss_g + lo.perceptual_weight * parts["loss_perceptual"]
                parts["loss_g"] = loss_g
                parts.update(task.guards(sr.detach().float(), batch))
                parts["grad_norm"] = _step_backward(loss_g, gen.parameters(), opt_g, scaler, clip)

                # discriminator step
                if disc is not None and opt_d is not None:
                    for group in opt_d.param_groups:
                        group["lr"] = lr_now * disc_lr_ratio
                    disc.requires_grad_(True)
                    real_in, fake_in = task.disc_inputs(sr.detach(), batch)
                    with autocast():
                        real_logits = disc(*real_in).float()
                        fake_logits = disc(*fake_in).float()
                        parts["loss_d"] = L.discriminator_loss(real_logits, fake_logits, lo.adversarial)
                    _step_backward(parts["loss_d"], disc.parameters(), opt_d, scaler, clip)
                    parts["d_real"] = torch.sigmoid(real_logits).mean()
                    parts["d_fake"] = torch.sigmoid(fake_logits).mean()
                    parts["d_acc_real"], parts["d_acc_fake"] = L.discriminator_accuracy(
                        real_logits, fake_logits, lo.adversarial
                    )
                scaler.update()
                done = step + 1
                # EMA with a short warmup, so early exports are not dominated by the random init
                ema_update(ema, gen, min(cfg.optim.ema_decay, (1 + done) / (10 + done)))
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0) + v.detach().float()

                # --time-limit: plan the steps once the rate is known; stop at the deadline
                stopped = False
                if budget is not None:
                    planned = budget.after_step(done, sync)
                    if planned is not None and planned != cfg.steps:
                        cfg.steps = progress.total = planned
                        write_config()
                        progress.line(
                            f"time limit {cfg.time_limit:g} s: {planned} steps at {budget.rate:.2f} steps/s"
                        )
                    stopped = budget.expired() and done < cfg.steps
                    t_end = time.monotonic()

                # log, validate, save
                is_last = done >= cfg.steps or stopped
                row: dict[str, float | int | None] = {}
                if done % cfg.log_every == 0 or is_last:
                    n = (done - 1) % cfg.log_every + 1
                    row = {k: v.item() / n for k, v in sums.items()}
                    sums.clear()
                    row.update(step=done, lr=lr_now, it_s=progress.rate, skipped=len(skipped))
                validated = (cfg.val_every and done % cfg.val_every == 0) or is_last
                if validated:
                    grid = out / "samples" / f"step_{done:07d}.png"
                    if val_set is not None:
                        val = task.validate(ema, val_batch, cfg.batch_size)
                        task.sample_grid(grid, ema, val_batch, min(cfg.sample_count, len(val_set)))
                        progress.line(f"step {done}: {task.val_line(val)}")
                    else:
                        cpu_batch = {k: v.cpu() for k, v in batch.items()}
                        task.sample_grid(grid, ema, cpu_batch, min(cfg.sample_count, cfg.batch_size))
                    row = {**row, "step": done, "lr": lr_now, **val}
                if row:
                    metrics_csv.write(row)
                shown = {k: float(v) for k, v in row.items() if k.startswith("loss")} or shown
                progress.set(done, **shown)
                if done % cfg.save_every == 0 or is_last:
                    state = checkpoint(done, val)
                    save_checkpoint(state, last)
                    saved = done
                    if done % cfg.save_every == 0:
                        save_checkpoint(state, out / f"step_{done:07d}.ckpt")
                if budget is not None and (validated or saved == done):
                    budget.overhead(time.monotonic() - t_end)  # the last validation + save must fit
                if on_step is not None:
                    on_step(done)
                if stopped:
                    progress.line(
                        f"time limit {cfg.time_limit:g} s reached at step {done} of {cfg.steps}; "
                        f"{last} holds it: continue with --resume"
                    )
                if is_last:
                    break
            if skipped:
                progress.line(f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}")
    except KeyboardInterrupt:
        kept = f"{last} holds step {saved}: continue with --resume" if saved else "no checkpoint was written"
        progress.line(f"interrupted after step {done}; {kept}")
        raise
    return TrainResult(
        out=out,
        step=done,
        checkpoint=last,
        metrics=val,
        skipped=skipped,
        budget=budget.summary() if budget is not None else None,
    )
