"""The roofline of a convolutional network: FLOPs per frame from its convolutions, and the matrix rate.

``conv_flops`` counts what the network must compute; ``matrix_tflops`` measures what the device can
compute at a precision (a large dense matmul, the best case for its matrix units).  Their ratio with a
measured frame rate says how close a model runs to the device's limit.
"""

from __future__ import annotations

import copy
import statistics
import time


def sync_device(device) -> None:
    """Wait for the device (a no-op on the CPU)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    """Seconds ``fn()`` takes, with the device synchronised before and after."""
    sync_device(device)
    start = time.perf_counter()
    fn()
    sync_device(device)
    return time.perf_counter() - start


def conv_flops(module, height: int, width: int) -> float:
    """Multiply-adds x 2 of every ``Conv2d`` in one forward pass of a 1x3xHxW frame (bias not counted).

    Runs the module on the ``meta`` device: shapes only, no arithmetic, any frame size.
    """
    import torch

    total = 0.0

    def hook(conv, _inputs, output) -> None:
        nonlocal total
        kh, kw = conv.kernel_size
        total += 2.0 * output.numel() * (conv.in_channels // conv.groups) * kh * kw

    meta = copy.deepcopy(module).to("meta")
    handles = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            meta(torch.empty(1, 3, height, width, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total


def matrix_tflops(device, precision: str) -> float:
    """Dense matmul rate at the run's precision on ``device``, in TFLOP/s (median of a few timed runs)."""
    import torch

    from vsr.pipelines.device import DTYPES as _DTYPES

    dtype = _DTYPES.get(precision, torch.float32)
    n = 8192 if device.type == "cuda" else 1024
    reps = 20 if device.type == "cuda" else 3
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up (kernel selection)
    times = []
    for _ in range(3):
        times.append(timed(lambda: [a @ b for _ in range(reps)], device) / reps)
    return 2 * n**3 / statistics.median(times) / 1e12
