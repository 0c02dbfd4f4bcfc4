"""Moving YUV planes between host and device without stalling compute.

``PlaneTransfer.upload`` stacks a batch of frames' planes into a pinned host
buffer (a ring of ``slots`` buffers per shape, so the copy of batch i can still
be in flight while batch i+1 is filled) and copies it to the device on a
separate copy stream; the compute stream waits on an event, not the host.
``download`` does the reverse and returns a ``PendingPlanes`` whose ``wait()``
is the one host synchronisation per batch: the point where frames go to the
encoder.  On a CPU device both are plain copies, so the same code path runs in
the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vsr.pipelines.yuv import device_plane

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Slot:
    host: tuple[torch.Tensor, ...]
    event: object | None = None  # torch.cuda.Event recorded after the copy that used ``host``
    pending: PendingPlanes | None = None  # the download still reading ``host``


@dataclass
class PendingPlanes:
    """Planes on their way to the host; ``wait()`` returns one (Y, U, V) tuple of numpy arrays per frame."""

    host: tuple[torch.Tensor, ...]
    event: object | None = None
    _result: list[Planes] | None = field(default=None, repr=False)

    def wait(self) -> list[Planes]:
        if self._result is None:
            if self.event is not None:
                self.event.synchronize()
            arrays = [_host_array(t) for t in self.host]
            # Copy out of the (reused) pinned buffer: the encoder may hold frames longer than the ring.
            self._result = [tuple(np.array(a[i]) for a in arrays) for i in range(arrays[0].shape[0])]
        return self._result


def _host_array(t: torch.Tensor) -> np.ndarray:
    arr = t.numpy()
    return arr.view(np.uint16) if arr.dtype == np.int16 else arr


class PlaneTransfer:
    """Host<->device copies of batched YUV planes: pinned ring buffers, a copy stream and events on CUDA."""

    def __init__(self, device: torch.device, slots: int = 3) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.slots = max(2, slots)
        self.copy_stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._rings: dict[tuple, list[_Slot]] = {}
        self._next: dict[tuple, int] = {}

    # -- ring buffers ------------------------------------------------------------------------------------------
    def _slot(self, key: tuple, shapes: list[tuple[int, ...]], dtype: torch.dtype) -> _Slot:
        ring = self._rings.setdefault(key, [])
        i = self._next.get(key, 0)
        self._next[key] = (i + 1) % self.slots
        if i == len(ring):
            ring.append(_Slot(tuple(torch.empty(s, dtype=dtype, pin_memory=True) for s in shapes)))
        slot = ring[i]
        if slot.pending is not None:  # a download still owns this buffer: take its frames out first
            slot.pending.wait()
            slot.pending = None
        if slot.event is not None:  # the copy that last used this buffer must be done before refilling it
            slot.event.synchronize()
        return slot

    # -- host -> device ----------------------------------------------------------------------------------------
    def upload(self, batch: list[Planes]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """N frames' (Y, U, V) planes -> three (N, h, w) device tensors (uint8, or int16 holding uint16)."""
        if not batch:
            raise ValueError("upload needs at least one frame")
        if not self.cuda:
            return tuple(device_plane(np.stack([f[p] for f in batch])) for p in range(3))  # type: ignore[return-value]
        shapes = [(len(batch), *batch[0][p].shape) for p in range(3)]
        dtype = device_plane(batch[0][0][:1, :1]).dtype
        slot = self._slot(("up", dtype, *shapes), shapes, dtype)
        for p, pinned in enumerate(slot.host):  # stacked straight into pinned memory: one host copy
            np.stack([f[p] for f in batch], out=_host_array(pinned))
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.copy_stream):
            out = tuple(p.to(self.device, non_blocking=True) for p in slot.host)
            event = torch.cuda.Event()
            event.record(self.copy_stream)
        slot.event = event
        compute.wait_event(event)
        for t in out:
            t.record_stream(compute)  # allocated on the copy stream, used on the compute stream
        return out  # type: ignore[return-value]

    # -- device -> host ----------------------------------------------------------------------------------------
    def download(self, planes: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> PendingPlanes:
        """Start copying (N, h, w) device planes to the host; ``wait()`` on the result hands them over."""
        if not self.cuda:
            return PendingPlanes(host=tuple(p.detach().cpu() for p in planes))
        key = ("down", planes[0].dtype, *(p.shape for p in planes))
        slot = self._slot(key, [p.shape for p in planes], planes[0].dtype)
        ready = torch.cuda.Event()
        ready.record(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.copy_stream):
            self.copy_stream.wait_event(ready)
            for pinned, dev in zip(slot.host, planes, strict=True):
                pinned.copy_(dev, non_blocking=True)
                dev.record_stream(self.copy_stream)
            event = torch.cuda.Event()
            event.record(self.copy_stream)
        slot.event = event
        slot.pending = PendingPlanes(host=slot.host, event=event)
        return slot.pending
