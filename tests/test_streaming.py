"""The streaming backbone: flat memory however long the video, errors cross threads with their type."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from vsr.errors import DecodeError
from vsr.pipelines.stream import BackgroundConsumer, BackgroundIterator

_RUN_AND_MEASURE = """
import resource, sys
from pathlib import Path
from vsr.config import EnhanceConfig
from vsr.pipelines.enhance import build_stage, enhance
config = EnhanceConfig(input=Path(sys.argv[1]), output=Path(sys.argv[2]), model="bicubic", mode="frame",
                       quiet=True, batch_size=2)
built = build_stage(config)
{leak}
r = enhance(config, stage=built)
print(r.frames_out, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

# A stage that keeps every frame it is given alive: what the test must catch.
LEAK = """
class Keeping:
    def __init__(self, inner):
        self.inner, self.kept = inner, []
    def push(self, frames):
        self.kept.extend(frames)
        return self.inner.push(frames)
    def flush(self):
        return self.inner.flush()
    def report(self):
        return {}
built.stage = Keeping(built.stage)
"""


def _peak_rss_kib(src, out, leak: bool = False) -> tuple[int, int]:
    code = _RUN_AND_MEASURE.format(leak=LEAK if leak else "")
    proc = subprocess.run([sys.executable, "-c", code, str(src), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    frames, rss = proc.stdout.split()
    return int(frames), int(rss)


def test_memory_does_not_grow_with_video_length(video_factory, tmp_path):
    """A 4x longer video must not need more memory: frames are never accumulated.

    Both clips are longer than the encoder's lookahead (x264 keeps ~60 frames), so both runs reach
    the steady state; only accumulation could make the longer one bigger.
    """
    spec = dict(width=320, height=240, audio_tracks=1)
    short = video_factory("mem_short.mkv", frames=120, **spec)
    long = video_factory("mem_long.mkv", frames=480, **spec)
    frames_s, rss_short = _peak_rss_kib(short, tmp_path / "s.mkv")
    frames_l, rss_long = _peak_rss_kib(long, tmp_path / "l.mkv")
    assert (frames_s, frames_l) == (120, 480)
    extra_frames_kib = 360 * 320 * 240 * 3 // 1024  # ~81 MiB if the 360 extra input frames were kept
    assert rss_long - rss_short < extra_frames_kib // 4, (rss_short, rss_long)  # allocator noise is ~10 MiB
    # ...and the measurement does see accumulation when it happens.
    _, rss_leaky = _peak_rss_kib(long, tmp_path / "leak.mkv", leak=True)
    assert rss_leaky - rss_short > extra_frames_kib // 2, (rss_short, rss_leaky)


def test_producer_error_keeps_its_type():
    stop = threading.Event()

    def frames():
        yield 1
        raise DecodeError("broken packet")

    it = BackgroundIterator(frames(), maxsize=2, stop=stop)
    got = []
    with pytest.raises(DecodeError, match="broken packet"):
        for x in it:
            got.append(x)
    it.join()
    assert got == [1]


def test_a_stalled_decoder_is_a_clear_error_not_a_frozen_run():
    from vsr.pipelines.stream import run_stage

    release = threading.Event()

    def frames():  # one frame, then a "decoder" stuck in native code (it never returns on its own)
        yield 1
        release.wait(60)

    class Echo:
        def push(self, frames):
            return frames

        def flush(self):
            return []

    seen = []
    began = time.monotonic()
    with pytest.raises(DecodeError, match=r"decode made no progress for 1s \(FFmpeg hung"):
        run_stage(frames(), Echo(), sink=seen.append, batch=1, stall_seconds=1.0)
    assert time.monotonic() - began < 10 and seen == [1]
    release.set()


def test_consumer_error_stops_and_is_raised():
    stop = threading.Event()
    seen = []

    def sink(x):
        if x == 3:
            raise OSError("disk full")
        seen.append(x)

    c = BackgroundConsumer(sink, maxsize=1, stop=stop)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            c.put(i)
        c.close()
    c.join()
    assert seen == [0, 1, 2] and stop.is_set()


def test_bounded_queue_blocks_the_producer():
    stop = threading.Event()
    produced = []

    def frames():
        for i in range(1000):
            produced.append(i)
            yield i

    it = BackgroundIterator(frames(), maxsize=3, stop=stop)
    first = next(iter(it))
    threading.Event().wait(0.3)
    assert first == 0 and len(produced) <= 6  # maxsize + the one in hand + the one blocked in put
    stop.set()
    it.join()


def test_help_and_probe_do_not_import_torch(video_factory):
    src = video_factory("plain.mp4", width=64, height=48, frames=4)
    code = (
        "import sys\nfrom vsr.cli import main\n"
        f"for argv in (['--help'], ['enhance', '--help'], ['probe', {str(src)!r}, '--json']):\n"
        "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, (argv, e.code)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
