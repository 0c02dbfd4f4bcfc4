"""In-memory H.264 round trips and a simple frame sampler, for training data.

This is the one place the trainer touches PyAV.  ``h264_roundtrip`` gives the
degradation pipeline real codec artefacts (blocking, ringing, chroma
subsampling) instead of an imitation; ``sample_frames`` feeds the ``videos``
data kind through the same reader that ``vsr enhance`` uses (``vsr.media.reader``).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from vsr.errors import DecodeError, EncodeError


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Replicate the last row/column so both sides are even (yuv420p needs it)."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def h264_roundtrip(
    images: list[np.ndarray], crf: int, preset: str = "veryfast", gop: int | None = None
) -> list[np.ndarray]:
    """Encode RGB uint8 frames (H, W, 3, all the same size) with libx264 in memory and decode them back.

    Frames after the first are coded as P/B frames, so passing a short clip (for
    example the same image shifted by a pixel or two) gives inter-frame artefacts.
    Output is deterministic for the same input: the encoder runs single-threaded.
    Odd sizes are padded for yuv420p and cropped back.
    """
    import av

    if not images:
        return []
    h, w = images[0].shape[:2]
    if any(im.shape != images[0].shape or im.dtype != np.uint8 or im.ndim != 3 for im in images):
        raise ValueError("h264_roundtrip expects RGB uint8 frames of one size")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be between 0 and 51, got {crf}")
    try:
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height = w + w % 2, h + h % 2
        enc.pix_fmt = "yuv420p"
        enc.time_base = Fraction(1, 25)
        enc.framerate = Fraction(25)
        enc.options = {"crf": str(crf), "preset": preset, "threads": "1", "g": str(gop or len(images))}
        packets = []
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_pad_even(image)), format="rgb24")
            frame.pts = i
            packets.extend(enc.encode(frame.reformat(format="yuv420p")))
        packets.extend(enc.encode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise EncodeError(f"libx264 round trip failed while encoding ({exc})") from exc
    try:
        dec = av.CodecContext.create("h264", "r")
        decoded = []
        for packet in [*packets, None]:
            decoded.extend(f.to_ndarray(format="rgb24")[:h, :w] for f in dec.decode(packet))
    except av.FFmpegError as exc:
        raise DecodeError(f"h264 round trip failed while decoding ({exc})") from exc
    if len(decoded) != len(images):
        raise DecodeError(f"h264 round trip returned {len(decoded)} frames for {len(images)}")
    return [np.ascontiguousarray(f) for f in decoded]


def sample_frames(path: Path, every: int = 1, limit: int | None = None) -> Iterator[np.ndarray]:
    """Yield every ``every``-th frame of the video as RGB uint8 (H, W, 3), up to ``limit``.

    Decoded by ``VideoReader``, exactly as ``vsr enhance`` decodes it (the main video stream, never
    cover art; the source's colour matrix and range), so training frames are the frames enhance sees.
    Deeper sources are reduced to 8 bits.
    """
    from vsr.media.reader import VideoReader

    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    yielded = 0
    with VideoReader(path) as reader:
        frames = reader.frames()
        try:
            for frame in frames:
                if frame.index % every:
                    continue
                image = frame.image
                yield (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
        finally:
            frames.close()
