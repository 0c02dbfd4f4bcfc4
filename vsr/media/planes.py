"""YUV planes in and out of PyAV frames, as numpy arrays: the bytes a device-side conversion needs.

The decoder hands out planar YUV (``yuv420p``, ``yuv422p10le``, ...); instead of converting it to RGB
on the host (``VideoReformatter``, a per-pixel pass on the CPU), ``frame_planes`` exposes its three
planes as numpy arrays, cropped to the picture (planes carry line padding), and ``frame_from_planes``
builds an encoder frame from planes computed elsewhere.  Only this module (with the rest of
``vsr.media``) touches ``av``; ``plane_layout`` needs no ``av`` at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from vsr.errors import UnsupportedError

_PLANAR = re.compile(r"^yuvj?(?P<chroma>420|422|444)p(?:(?P<bits>9|10|12|14|16)le)?$")
_SUBSAMPLING = {"420": (2, 2), "422": (2, 1), "444": (1, 1)}


@dataclass(frozen=True)
class PlaneLayout:
    """How a planar YUV pixel format stores a picture: chroma subsampling and bits per sample."""

    pix_fmt: str
    sub_x: int  # chroma width = ceil(width / sub_x)
    sub_y: int
    bits: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else "<u2")

    def plane_shapes(self, width: int, height: int) -> tuple[tuple[int, int], ...]:
        """(height, width) of the Y, U and V planes of a ``width`` x ``height`` picture."""
        cw, ch = -(-width // self.sub_x), -(-height // self.sub_y)
        return (height, width), (ch, cw), (ch, cw)


def plane_layout(pix_fmt: str) -> PlaneLayout:
    """The layout of a planar YUV ``pix_fmt``; ``UnsupportedError`` for anything else (RGB, NV12, P010...)."""
    m = _PLANAR.match(pix_fmt)
    if m is None:
        raise UnsupportedError(
            f"pixel format {pix_fmt} is not planar YUV; the device frame path needs yuv420p/422p/444p (8-16 bit)"
        )
    sub_x, sub_y = _SUBSAMPLING[m["chroma"]]
    return PlaneLayout(pix_fmt=pix_fmt, sub_x=sub_x, sub_y=sub_y, bits=int(m["bits"] or 8))


def _plane_view(plane, dtype: np.dtype, rows: int, cols: int) -> np.ndarray:
    buf = np.frombuffer(plane, dtype=dtype)
    return buf.reshape(-1, plane.line_size // dtype.itemsize)[:rows, :cols]


def frame_planes(frame, copy: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U, V planes of a decoded planar-YUV ``av.VideoFrame`` as 2-D arrays (uint8 or uint16).

    ``copy=False`` returns views into the frame's buffers (valid only while the frame lives).
    """
    layout = plane_layout(frame.format.name)
    shapes = layout.plane_shapes(frame.width, frame.height)
    planes = tuple(
        _plane_view(p, layout.dtype, rows, cols) for p, (rows, cols) in zip(frame.planes, shapes, strict=True)
    )
    return tuple(np.array(p) for p in planes) if copy else planes  # type: ignore[return-value]


def frame_from_planes(planes: tuple[np.ndarray, np.ndarray, np.ndarray], pix_fmt: str):
    """An ``av.VideoFrame`` of ``pix_fmt`` holding ``planes`` (Y, U, V: uint8, or uint16 above 8 bits)."""
    import av

    layout = plane_layout(pix_fmt)
    height, width = planes[0].shape
    shapes = layout.plane_shapes(width, height)
    for arr, shape in zip(planes, shapes, strict=True):
        if arr.shape != shape or arr.dtype.itemsize != layout.dtype.itemsize:
            raise ValueError(
                f"{pix_fmt} {width}x{height} needs planes {shapes} of {layout.dtype}, got {arr.shape} {arr.dtype}"
            )
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, arr, (rows, cols) in zip(frame.planes, planes, shapes, strict=True):
        _plane_view(plane, layout.dtype, rows, cols)[:] = arr.view(layout.dtype)
    return frame


def decode_planes(path, limit: int | None = None):
    """Yield the (Y, U, V) planes of ``path``'s frames in decode order (no RGB conversion on the host).

    The decode half of the device frame path: what ``VideoReader`` does minus the reformatter.
    Frames that are not planar YUV raise ``UnsupportedError``.
    """
    from vsr.media.probe import main_video_stream, open_input

    container = open_input(path)
    try:
        stream = main_video_stream(container)
        stream.thread_type = "AUTO"
        count = 0
        for frame in container.decode(stream):
            yield frame_planes(frame)
            count += 1
            if limit is not None and count >= limit:
                return
    finally:
        container.close()
