"""Deinterlacing an interlaced source before it is upscaled (``--deinterlace``).

An interlaced frame weaves two fields taken half a frame period apart; anything that moved between them
shows as combing, and a network upscaling the woven frame scales the combs up with it (and mixes the
fields, so the output can no longer be deinterlaced).  So the reader passes such a source through
FFmpeg's ``bwdif`` (motion-adaptive: fields weave where the picture is still, are interpolated where it
moved) one frame per frame, and everything after it sees progressive frames at the source's own
timestamps; the output is encoded progressive.

Field order comes from the probe (the stream's tag, as ``vsr probe`` shows it): decoders do not always
flag which field is first on the frames (H.264 without picture-timing SEI does not), and ``bwdif``'s
own guess then is bottom-first for a top-first file.  Each output frame depends on the frames before
and after it only, which the reader feeds from the keyframe it starts decoding at, so a ``--start``
clip or a ``--resume`` gives the frames a whole run gives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from vsr.errors import UnsupportedError, one_line

# Temporal order of the fields per probe field order: the "displayed first" field leads.
PARITY = {"tt": "tff", "bt": "tff", "bb": "bff", "tb": "bff"}
FIRST_FIELD = {"tff": "top field first", "bff": "bottom field first", "auto": "field order as flagged"}


def wanted(mode: str, interlaced: bool) -> bool:
    """``--deinterlace`` (one of ``vsr.config.DEINTERLACE``): on = always, off = never, auto = when the
    source is interlaced."""
    return mode == "on" or (mode == "auto" and interlaced)


class Deinterlacer:
    """``bwdif`` on a stream's decoded frames: one progressive frame for each frame pushed, in order, each
    with the pts (and time base) of the frame it came from."""

    def __init__(self, stream, field_order: str) -> None:
        import av

        self.parity = PARITY.get(field_order, "auto")
        self.describe = f"bwdif ({FIRST_FIELD[self.parity]})"
        graph = av.filter.Graph()
        try:
            source = graph.add_buffer(template=stream)
            bwdif = graph.add("bwdif", f"mode=send_frame:parity={self.parity}:deint=all")
            sink = graph.add("buffersink")
            source.link_to(bwdif)
            bwdif.link_to(sink)
            graph.configure()
        except (av.error.FFmpegError, ValueError) as exc:
            raise UnsupportedError(
                f"cannot deinterlace {stream.codec_context.pix_fmt} video ({one_line(exc)}); "
                "pass --deinterlace off"
            ) from None
        self._graph = graph
        self._pts: deque = deque()  # of the frames pushed whose output has not come out yet

    def filter(self, frames: Iterable) -> Iterator:
        """The deinterlaced ``frames``; the last ones come out when ``frames`` ends."""
        for frame in frames:
            self._pts.append((frame.pts, frame.time_base))
            self._graph.push(frame)
            yield from self._drain()
        self._graph.push(None)
        yield from self._drain()

    def _drain(self) -> Iterator:
        import av

        while True:
            try:
                out = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            out.pts, out.time_base = self._pts.popleft()  # bwdif counts in half periods: the source's
            yield out
