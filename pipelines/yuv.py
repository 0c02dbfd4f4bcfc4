"""YUV <-> RGB on the device: the frame path where the host only copies bytes.

Frames leave the decoder as planar YUV and the encoder wants planar YUV back;
converting on the host (swscale) is a per-pixel CPU pass each way that a GPU
would wait for.  Here the planes go to the device as they are (``PlaneTransfer``:
pinned ring buffers and a copy stream on CUDA), ``yuv_to_rgb`` turns them into the
float RGB the models take, and ``rgb_to_yuv`` turns the model's output back into
planes for the encoder.  Both run on any torch device (the tests run them on CPU).

Colour: the matrix (BT.601, BT.709, BT.2020, SMPTE 240M, FCC: the names
``vsr.media.probe.guess_matrix`` gives) and range (limited or full) are the
source's, with the standard coefficients (Kr, Kb) and ranges: 8-bit limited is
Y 16..235, C 16..240, scaled by 2^(bits-8) above 8 bits; full range is
0..2^bits-1 with chroma centred on 2^(bits-1).

Chroma resampling follows what swscale does by default in the reader and the
writer today (measured with PyAV 18.1 / FFmpeg 8.1, impulse responses):
- up (decode): 8-bit sources repeat each chroma sample (nearest); above 8 bits
  4:2:0 chroma is interpolated vertically (centre-sited, weights 3/4 and 1/4) and
  repeated horizontally;
- down (encode): the mean of each horizontal pair, then vertically the
  factor-2 triangle filter (1, 3, 3, 1)/8, edges repeated.
Where swscale itself is not exact, this module keeps the standard arithmetic
(``tests/test_yuv.py`` measures both): its 8-bit 4:2:x decode takes a fast path
that rounds with a bias of about one level (at most 3); above 8 bits its 16-bit
RGB tops out at 65280 in limited range (x1023/1024 in full range at 10 bits) on
decode, and it reads 65280 as white on encode, so its output differs from the
exact one by up to 4 levels at 10 bits near white.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vsr.errors import UnsupportedError

# (Kr, Kb) of each matrix, by the swscale names the reader and writer use.
KR_KB: dict[str, tuple[float, float]] = {
    "ITU601": (0.299, 0.114),
    "ITU624": (0.299, 0.114),
    "SMPTE170M": (0.299, 0.114),
    "ITU709": (0.2126, 0.0722),
    "BT2020": (0.2627, 0.0593),
    "SMPTE240M": (0.212, 0.087),
    "FCC": (0.30, 0.11),
}


@dataclass(frozen=True)
class YuvFormat:
    """What the planes mean: matrix, range, bits per sample and chroma subsampling."""

    matrix: str = "ITU709"
    full_range: bool = False
    bits: int = 8
    sub_x: int = 2
    sub_y: int = 2

    def __post_init__(self) -> None:
        if self.matrix not in KR_KB:
            raise UnsupportedError(
                f"colour matrix {self.matrix} is not supported on the device; known: {', '.join(KR_KB)}"
            )
        if not 8 <= self.bits <= 16 or self.sub_x not in (1, 2) or self.sub_y not in (1, 2):
            raise UnsupportedError(
                f"YUV layout {self.bits}-bit {self.sub_x}x{self.sub_y} is not supported on the device"
            )

    @classmethod
    def for_pix_fmt(cls, pix_fmt: str, matrix: str, full_range: bool) -> YuvFormat:
        """The format of a planar-YUV ``pix_fmt`` (``yuvj*`` is full range whatever the tag says)."""
        from vsr.media.planes import plane_layout

        layout = plane_layout(pix_fmt)
        return cls(
            matrix=matrix,
            full_range=full_range or pix_fmt.startswith("yuvj"),
            bits=layout.bits,
            sub_x=layout.sub_x,
            sub_y=layout.sub_y,
        )

    @property
    def peak(self) -> int:
        return (1 << self.bits) - 1

    def ranges(self) -> tuple[float, float, float, float]:
        """(Y offset, Y span, C centre, C span) in sample values."""
        s = float(1 << (self.bits - 8))
        centre = float(1 << (self.bits - 1))
        if self.full_range:
            return 0.0, float(self.peak), centre, float(self.peak)
        return 16.0 * s, 219.0 * s, centre, 224.0 * s


def _as_float(plane: torch.Tensor) -> torch.Tensor:
    if plane.dtype == torch.int16:  # uint16 samples moved as int16 (torch's uint16 has few kernels)
        return (plane.to(torch.int32) & 0xFFFF).float()
    return plane.float()


def upsample_chroma(c: torch.Tensor, fmt: YuvFormat, height: int, width: int) -> torch.Tensor:
    """(N, h, w) chroma -> (N, height, width), the way swscale's default decode path does it."""
    c = c.unsqueeze(1)
    if fmt.sub_y == 2:
        if fmt.bits > 8:
            # Centre-sited linear: row 2k = 3/4 c[k] + 1/4 c[k-1], row 2k+1 = 3/4 c[k] + 1/4 c[k+1].
            c = F.interpolate(c, size=(2 * c.shape[-2], c.shape[-1]), mode="bilinear", align_corners=False)
        else:
            c = c.repeat_interleave(2, dim=-2)
    if fmt.sub_x == 2:
        c = c.repeat_interleave(2, dim=-1)
    return c[:, 0, :height, :width]


def downsample_chroma(c: torch.Tensor, fmt: YuvFormat) -> torch.Tensor:
    """(N, H, W) full-resolution chroma -> subsampled chroma, the way swscale's default encode path does it."""
    c = c.unsqueeze(1)
    if fmt.sub_x == 2:
        if c.shape[-1] % 2:
            c = F.pad(c, (0, 1, 0, 0), mode="replicate")
        c = 0.5 * (c[..., 0::2] + c[..., 1::2])
    if fmt.sub_y == 2:
        if c.shape[-2] % 2:
            c = F.pad(c, (0, 0, 0, 1), mode="replicate")
        c = F.pad(c, (0, 0, 1, 1), mode="replicate")
        kernel = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=c.dtype, device=c.device).div_(8).view(1, 1, 4, 1)
        c = F.conv2d(c, kernel, stride=(2, 1))
    return c[:, 0]


def yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, fmt: YuvFormat) -> torch.Tensor:
    """Planes (N, H, W) and (N, h, w) (uint8, or int16 holding uint16) -> RGB float (N, 3, H, W) in [0, 1]."""
    height, width = y.shape[-2:]
    y_off, y_span, c_mid, c_span = fmt.ranges()
    yf = (_as_float(y) - y_off) / y_span
    uf = (upsample_chroma(_as_float(u), fmt, height, width) - c_mid) / c_span
    vf = (upsample_chroma(_as_float(v), fmt, height, width) - c_mid) / c_span
    kr, kb = KR_KB[fmt.matrix]
    kg = 1.0 - kr - kb
    r = yf + 2.0 * (1.0 - kr) * vf
    b = yf + 2.0 * (1.0 - kb) * uf
    g = yf - (2.0 * kb * (1.0 - kb) / kg) * uf - (2.0 * kr * (1.0 - kr) / kg) * vf
    return torch.stack((r, g, b), dim=1).clamp_(0.0, 1.0)


def _to_samples(x: torch.Tensor, fmt: YuvFormat) -> torch.Tensor:
    x = x.round_().clamp_(0, fmt.peak)
    if fmt.bits <= 8:
        return x.to(torch.uint8)
    # int16 carries the uint16 bit pattern (values above 32767 wrap; the host views it as uint16).
    return x.to(torch.int32).to(torch.int16)


def rgb_to_yuv(rgb: torch.Tensor, fmt: YuvFormat) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB float (N, 3, H, W) in [0, 1] -> Y, U, V planes (uint8, or int16 holding uint16) of ``fmt``."""
    rgb = rgb.float().clamp(0.0, 1.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    kr, kb = KR_KB[fmt.matrix]
    yl = kr * r + (1.0 - kr - kb) * g + kb * b
    u = (b - yl) / (2.0 * (1.0 - kb))
    v = (r - yl) / (2.0 * (1.0 - kr))
    y_off, y_span, c_mid, c_span = fmt.ranges()
    y_plane = _to_samples(yl * y_span + y_off, fmt)
    u_plane = _to_samples(downsample_chroma(u, fmt) * c_span + c_mid, fmt)
    v_plane = _to_samples(downsample_chroma(v, fmt) * c_span + c_mid, fmt)
    return y_plane, u_plane, v_plane


def host_planes(planes: tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
    """Device planes from ``rgb_to_yuv`` -> numpy uint8/uint16 planes (a synchronising copy)."""
    out = []
    for p in planes:
        arr = p.cpu().numpy()
        out.append(arr.view(np.uint16) if arr.dtype == np.int16 else arr)
    return tuple(out)


def device_plane(arr: np.ndarray) -> torch.Tensor:
    """A host uint8/uint16 plane as a tensor torch can move (uint16 bits carried as int16; no copy)."""
    if arr.dtype == np.uint16 or arr.dtype == np.dtype("<u2"):
        arr = arr.view(np.int16)
    return torch.from_numpy(np.ascontiguousarray(arr))
