"""FLOPs of one training step, and the steps/s a matrix rate allows: the arithmetic behind the GPU plan.

    python benchmarks/train_flops.py --scale 4 --blocks 16 --channels 64 --batch-size 32 --hr-size 128 \
        [--stage gan --disc-channels 64] [--tflops 790 --utilisation 0.3] [--measure --device cuda]

Counts every convolution's and linear layer's multiply-adds in one forward pass (forward hooks on a
real model at the training shape), then a training step as 3x the forward (forward, gradients of the
activations, gradients of the weights), with the discriminator's forwards and backwards for the gan
stage (two discriminator passes for the generator's losses, two for its own step).  Elementwise work
(PReLU, additions, the bicubic skip, the loss) is left out: it is memory-bound, not matrix work.
``--measure`` times real optimiser steps of the generator (bf16 autocast on CUDA) for the ratio.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn


def forward_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the convolutions and linear layers in ``model(x)``."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def step_flops(args: argparse.Namespace) -> dict:
    from vsr.models.discriminator import Discriminator
    from vsr.models.srresnet import SRResNet

    gen = SRResNet(args.scale, args.blocks, args.channels, batch_norm=False)
    lr = torch.zeros(1, 3, args.hr_size // args.scale, args.hr_size // args.scale)
    g = forward_macs(gen, lr) * args.batch_size * 2  # FLOPs = 2 x multiply-adds
    out = {"generator_forward_flops": g, "generator_params": sum(p.numel() for p in gen.parameters())}
    step = 3 * g
    if args.stage == "gan":
        disc = Discriminator(args.disc_channels, args.disc_stages)
        d = forward_macs(disc, torch.zeros(1, 3, args.hr_size, args.hr_size)) * args.batch_size * 2
        # generator step: D(sr) with backward to sr (2x) + D(hr) forward; disc step: D(hr), D(sr) with backward (3x)
        step += 2 * d + d + 2 * 3 * d
        out["disc_forward_flops"] = d
    out["step_flops"] = step
    out["lr_pixels_per_step"] = args.batch_size * (args.hr_size // args.scale) ** 2
    rate = args.tflops * 1e12
    out["steps_per_s_at_peak"] = rate / step
    out["steps_per_s_at_utilisation"] = rate * args.utilisation / step
    return out


def measure(args: argparse.Namespace) -> dict:
    from vsr.models.srresnet import SRResNet

    device = torch.device(args.device)
    gen = SRResNet(args.scale, args.blocks, args.channels, batch_norm=False).to(device)
    cuda = device.type == "cuda"
    if cuda:
        gen = gen.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-4, **({"fused": True} if cuda else {}))
    s = args.hr_size // args.scale
    x = torch.rand(args.batch_size, 3, s, s, device=device)
    y = torch.rand(args.batch_size, 3, args.hr_size, args.hr_size, device=device)
    fwd = torch.compile(gen) if args.compile else gen

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = (fwd(x).float() - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return {"measured_steps_per_s": args.steps / (time.perf_counter() - t0), "device": str(device)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hr-size", type=int, default=128)
    ap.add_argument("--stage", choices=["psnr", "gan"], default="psnr")
    ap.add_argument("--disc-channels", type=int, default=64)
    ap.add_argument("--disc-stages", type=int, default=4)
    ap.add_argument("--tflops", type=float, default=790.0, help="matrix rate (H200 bf16, measured: 790)")
    ap.add_argument("--utilisation", type=float, default=0.3)
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    out = step_flops(args)
    if args.measure:
        out.update(measure(args))
        out["measured_tflops"] = out["measured_steps_per_s"] * out["step_flops"] / 1e12
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
