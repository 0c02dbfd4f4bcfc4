"""Device-side YUV<->RGB against the CPU path (PyAV's reformatter, called as the reader and writer call it).

Levels are counted at the planes' bit depth.  Measured facts these tests pin down (PyAV 18.1, FFmpeg 8.1):
- swscale's 8-bit 4:4:4 decode and every 8-bit encode are exact: the device path is within 1 level;
- its 8-bit 4:2:0/4:2:2 decode takes a fast path that repeats chroma samples and rounds with a bias of
  about one level: the device path equals swscale's exact path on the same repeated chroma within 1
  level, and the reader's fast path within 3;
- above 8 bits swscale scales 16-bit RGB by 65280/65535 in limited range and 65535*peak/(peak+1) in full
  range (decode) and by 65535/65280 (encode): the device path keeps exact 0..65535 RGB and matches
  swscale within 1 level once that scale is applied.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsr.media.planes import frame_from_planes, frame_planes, plane_layout
from vsr.media.sample import sample_frame
from vsr.pipelines.transfer import PlaneTransfer
from vsr.pipelines.yuv import KR_KB, YuvFormat, device_plane, host_planes, rgb_to_yuv, yuv_to_rgb

MATRICES = ("ITU601", "ITU709", "BT2020", "SMPTE240M", "FCC")
W, H = 62, 46  # even/odd edges are tested separately; chroma alignment needs even sizes for 4:2:0


def _rgb_source(bits: int, seed: int = 0) -> np.ndarray:
    """The sample clip's picture (gradients, stripes, a face), with sub-8-bit noise for deep formats."""
    rgb8 = sample_frame(5, W, H)
    if bits <= 8:
        return rgb8
    # Up to 65280, swscale's 16-bit white: brighter values it encodes whiter than white (out of range).
    rng = np.random.default_rng(seed)
    return (rgb8.astype(np.uint32) * 255 + rng.integers(0, 256, rgb8.shape)).astype(np.uint16)


def _reformat(frame, **kwargs):
    import av

    return av.video.reformatter.VideoReformatter().reformat(frame, **kwargs)


def _range(full: bool) -> str:
    return "JPEG" if full else "MPEG"


def _encode_cpu(rgb: np.ndarray, pix_fmt: str, matrix: str, full: bool):
    """RGB -> YUV frame exactly as ``VideoWriter.write`` converts."""
    import av

    fmt = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
    frame = av.VideoFrame.from_ndarray(rgb, format=fmt)
    return _reformat(
        frame, format=pix_fmt, dst_colorspace=matrix, src_color_range="JPEG", dst_color_range=_range(full)
    )


def _decode_cpu(frame, matrix: str, full: bool, bits: int) -> np.ndarray:
    """YUV frame -> RGB exactly as ``VideoReader.frames`` converts."""
    out = _reformat(
        frame,
        format="rgb48le" if bits > 8 else "rgb24",
        src_colorspace=matrix,
        src_color_range=_range(full),
        dst_color_range="JPEG",
    )
    return out.to_ndarray().astype(np.float64)


def _device_rgb(planes, fmt: YuvFormat) -> np.ndarray:
    """Device conversion of host planes, as HxWx3 float in [0, 1]."""
    t = [device_plane(p)[None] for p in planes]
    return yuv_to_rgb(*t, fmt)[0].permute(1, 2, 0).double().numpy()


def _levels(fmt: YuvFormat, rgb_peak: int) -> float:
    return rgb_peak / fmt.peak


def _decode_gain(fmt: YuvFormat) -> float:
    return 65280 / 65535 if not fmt.full_range else fmt.peak / (fmt.peak + 1)


# -- layouts --------------------------------------------------------------------------------------------------
def test_plane_layout_and_frame_planes_round_trip():
    for pix, (sx, sy, bits) in {
        "yuv420p": (2, 2, 8),
        "yuvj420p": (2, 2, 8),
        "yuv422p10le": (2, 1, 10),
        "yuv444p12le": (1, 1, 12),
    }.items():
        layout = plane_layout(pix)
        assert (layout.sub_x, layout.sub_y, layout.bits) == (sx, sy, bits)
    from vsr.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="not planar YUV"):
        plane_layout("nv12")
    rng = np.random.default_rng(1)
    layout = plane_layout("yuv420p10le")
    planes = tuple(rng.integers(0, 1024, s).astype(np.uint16) for s in layout.plane_shapes(33, 21))
    back = frame_planes(frame_from_planes(planes, "yuv420p10le"))
    assert [p.shape for p in back] == [(21, 33), (11, 17), (11, 17)]
    for a, b in zip(planes, back, strict=True):
        np.testing.assert_array_equal(a, b)


def test_yuvj_is_full_range_and_unknown_matrix_is_refused():
    assert YuvFormat.for_pix_fmt("yuvj420p", "ITU601", full_range=False).full_range
    from vsr.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="colour matrix"):
        YuvFormat(matrix="YCGCO")


# -- decode direction ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("matrix", MATRICES)
def test_decode_8bit_444_within_one_level_of_reader(matrix, full):
    fmt = YuvFormat.for_pix_fmt("yuv444p", matrix, full)
    frame = _encode_cpu(_rgb_source(8), "yuv444p", matrix, full)
    ref = _decode_cpu(frame, matrix, full, 8)
    mine = _device_rgb(frame_planes(frame), fmt) * 255
    assert np.abs(mine - ref).max() <= 1.0


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("pix", ["yuv420p", "yuv422p"])
@pytest.mark.parametrize("matrix", MATRICES)
def test_decode_8bit_subsampled_matches_swscale(pix, matrix, full):
    fmt = YuvFormat.for_pix_fmt(pix, matrix, full)
    frame = _encode_cpu(_rgb_source(8), pix, matrix, full)
    planes = frame_planes(frame)
    mine = _device_rgb(planes, fmt) * 255
    # swscale's exact path on the same chroma, repeated to full size (what its 4:2:x decode does).
    y, u, v = planes
    up = [np.repeat(np.repeat(c, fmt.sub_y, 0), fmt.sub_x, 1)[:H, :W] for c in (u, v)]
    exact = _decode_cpu(frame_from_planes((y, *up), "yuv444p"), matrix, full, 8)
    assert np.abs(mine - exact).max() <= 1.0
    # The reader's own call takes swscale's fast path: within 3 levels, biased by about one.
    reader = _decode_cpu(frame, matrix, full, 8)
    assert np.abs(mine - reader).max() <= 3.0
    assert np.abs(mine - reader).mean() <= 1.5


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("pix", ["yuv420p10le", "yuv422p10le", "yuv444p10le", "yuv420p12le"])
@pytest.mark.parametrize("matrix", ["ITU601", "ITU709", "BT2020"])
def test_decode_deep_within_one_level_of_reader(pix, matrix, full):
    fmt = YuvFormat.for_pix_fmt(pix, matrix, full)
    frame = _encode_cpu(_rgb_source(fmt.bits), pix, matrix, full)
    ref = _decode_cpu(frame, matrix, full, fmt.bits)
    mine = _device_rgb(frame_planes(frame), fmt)
    assert mine.min() >= 0 and mine.max() <= 1
    # swscale's 16-bit scale applied to the exact result; where the device saturates at 1.0 (out of gamut),
    # swscale saturates later, at 65535 instead of 65280.
    level = _levels(fmt, 65535)
    scaled = mine * 65535 * _decode_gain(fmt)
    inside = mine < 1.0
    assert np.abs(scaled - ref)[inside].max() / level <= 1.0
    assert (ref[~inside] >= scaled[~inside] - level).all()


# -- encode direction ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("pix", ["yuv420p", "yuv422p", "yuv444p"])
@pytest.mark.parametrize("matrix", MATRICES)
def test_encode_8bit_within_one_level_of_writer(pix, matrix, full):
    rgb = _rgb_source(8)
    fmt = YuvFormat.for_pix_fmt(pix, matrix, full)
    ref = frame_planes(_encode_cpu(rgb, pix, matrix, full))
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    mine = host_planes(rgb_to_yuv(x, fmt))
    for a, b in zip(mine, ref, strict=True):
        assert a[0].shape == b.shape
        assert np.abs(a[0].astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("pix", ["yuv420p10le", "yuv422p10le", "yuv444p10le"])
@pytest.mark.parametrize("matrix", ["ITU601", "ITU709", "BT2020"])
def test_encode_10bit_within_one_level_of_writer(pix, matrix, full):
    rgb = _rgb_source(10)
    fmt = YuvFormat.for_pix_fmt(pix, matrix, full)
    ref = frame_planes(_encode_cpu(rgb, pix, matrix, full))
    x = torch.from_numpy(rgb.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    mine = host_planes(rgb_to_yuv(x * (65535 / 65280), fmt))  # swscale's 16-bit RGB scale, see the docstring
    for a, b in zip(mine, ref, strict=True):
        assert a.dtype == np.uint16
        assert np.abs(a[0].astype(int) - b.astype(int)).max() <= 1


# -- round trips ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("pix", ["yuv444p", "yuv422p", "yuv444p10le", "yuv444p16le"])
@pytest.mark.parametrize("matrix", MATRICES)
def test_round_trip_returns_the_planes(pix, matrix, full):
    """Planes -> RGB -> planes on the device gives the planes back (4:2:2: repeat then average is exact)."""
    fmt = YuvFormat.for_pix_fmt(pix, matrix, full)
    src = frame_planes(_encode_cpu(_rgb_source(min(fmt.bits, 10)), pix, matrix, full))
    t = [device_plane(p)[None] for p in src]
    back = host_planes(rgb_to_yuv(yuv_to_rgb(*t, fmt), fmt))
    # 16-bit: within 1/4096 of full scale (float32 arithmetic and the clamp of colours swscale's own
    # 16-bit encode put a hair outside the RGB cube).
    limit = max(1, (1 << fmt.bits) >> 12)
    for a, b in zip(back, src, strict=True):
        assert np.abs(a[0].astype(int) - b.astype(int)).max() <= limit


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("pix", ["yuv420p", "yuv420p10le"])
@pytest.mark.parametrize("matrix", ["ITU601", "ITU709", "BT2020"])
def test_round_trip_420_matches_cpu_round_trip(pix, matrix, full):
    """4:2:0 loses chroma detail both ways; the device round trip loses the same as reader + writer."""
    fmt = YuvFormat.for_pix_fmt(pix, matrix, full)
    frame = _encode_cpu(_rgb_source(fmt.bits), pix, matrix, full)
    src = frame_planes(frame)
    ref_rgb = _decode_cpu(frame, matrix, full, fmt.bits).astype(np.uint16 if fmt.bits > 8 else np.uint8)
    cpu = frame_planes(_encode_cpu(ref_rgb, pix, matrix, full))
    t = [device_plane(p)[None] for p in src]
    dev = host_planes(rgb_to_yuv(yuv_to_rgb(*t, fmt), fmt))
    # 8-bit: chroma within 1 level, luma within 2 (the reader's fast path is biased by ~1 level).  Deeper:
    # swscale's 16-bit scales differ between decode (x1023/1024 in full range) and encode (x256/255), so
    # its own round trip drifts by ~1 level, and more at colours the RGB cube clips (luma).
    limits = (2, 1, 1) if fmt.bits <= 8 else (4, 2, 2)
    for a, b, limit in zip(dev, cpu, limits, strict=True):
        assert np.abs(a[0].astype(int) - b.astype(int)).max() <= limit
        assert np.abs(a[0].astype(int) - b.astype(int)).mean() <= 1.25


def test_odd_sizes_and_batches():
    fmt = YuvFormat("ITU709", False, 8, 2, 2)
    rgb = torch.rand(3, 3, 15, 21)
    y, u, v = rgb_to_yuv(rgb, fmt)
    assert y.shape == (3, 15, 21) and u.shape == v.shape == (3, 8, 11)
    back = yuv_to_rgb(y, u, v, fmt)
    assert back.shape == (3, 3, 15, 21)
    # Per-frame results equal the batched ones.
    one = yuv_to_rgb(y[1:2], u[1:2], v[1:2], fmt)
    torch.testing.assert_close(back[1:2], one)


def test_grey_stays_grey_for_every_matrix():
    for matrix in KR_KB:
        fmt = YuvFormat(matrix, False, 10, 2, 2)
        y = torch.full((1, 4, 4), 502, dtype=torch.int16)
        c = torch.full((1, 2, 2), 512, dtype=torch.int16)
        rgb = yuv_to_rgb(y, c, c, fmt)
        assert torch.allclose(rgb, torch.full_like(rgb, (502 - 64) / 876), atol=1e-6)


# -- transfers -------------------------------------------------------------------------------------------------------
def _batch(n: int, pix: str, seed: int):
    layout = plane_layout(pix)
    rng = np.random.default_rng(seed)
    top = (1 << layout.bits) - 1
    return [
        tuple(rng.integers(0, top + 1, s).astype(layout.dtype) for s in layout.plane_shapes(20, 12))
        for _ in range(n)
    ]


def _check_transfer(device: torch.device):
    transfer = PlaneTransfer(device, slots=2)
    for step in range(5):  # more batches than slots: the ring is reused
        for pix in ("yuv420p", "yuv422p16le"):
            batch = _batch(3, pix, seed=step)
            planes = transfer.upload(batch)
            assert planes[0].device.type == device.type and planes[0].shape == (3, 12, 20)
            pending = transfer.download(tuple(p.clone() for p in planes))
            frames = pending.wait()
            assert len(frames) == 3
            for got, want in zip(frames, batch, strict=True):
                for a, b in zip(got, want, strict=True):
                    assert a.dtype == b.dtype
                    np.testing.assert_array_equal(a, b)


def test_plane_transfer_cpu():
    _check_transfer(torch.device("cpu"))


@pytest.mark.needs_cuda
def test_plane_transfer_cuda():
    _check_transfer(torch.device("cuda"))


def test_device_frame_path_matches_cpu_frame_path():
    """Planes -> device RGB -> model -> device YUV equals reader -> Upscaler -> writer within 3 levels.

    The CPU path's decode is swscale's 8-bit fast path (biased by about a level, within 3): the whole
    path differs by no more than that, by a level on average.
    """
    from vsr.models.registry import load_model_from
    from vsr.pipelines.upscale import Upscaler

    matrix, pix = "ITU601", "yuv420p"
    fmt = YuvFormat.for_pix_fmt(pix, matrix, False)
    frames = [_encode_cpu(sample_frame(i, W, H), pix, matrix, False) for i in range(3)]
    upscaler = Upscaler(load_model_from("bicubic", 2).module, 2, torch.device("cpu"))
    # The CPU path as vsr enhance runs it today.
    rgb_hr = upscaler([_decode_cpu(f, matrix, False, 8).astype(np.uint8) for f in frames])
    cpu = [frame_planes(_encode_cpu(img, pix, matrix, False)) for img in rgb_hr]
    # The device path.
    transfer = PlaneTransfer(torch.device("cpu"))
    y, u, v = transfer.upload([frame_planes(f) for f in frames])
    with torch.inference_mode():
        out = upscaler.module(yuv_to_rgb(y, u, v, fmt))
    dev = transfer.download(rgb_to_yuv(out, fmt)).wait()
    for got, want in zip(dev, cpu, strict=True):
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape
            diff = np.abs(a.astype(int) - b.astype(int))
            assert diff.max() <= 3 and diff.mean() <= 1.25
