"""Batch progress: JSON lines for cron logs, a live bar with one line per worker on a terminal."""

from __future__ import annotations

import io
import json

from vsr.pipelines.batch.progress import BatchProgress


def test_json_lines_count_files_and_frames_with_an_eta_by_frames():
    stream = io.StringIO()
    with BatchProgress(3, 30, {"skipped": 1}, stream=stream, live=False, every=0) as p:
        p.started("w0", "a b.mp4", 10)
        p.started("w1", "ü.mp4", 20)
        p.frames("w0", 4)
        p._t0 -= 10.0  # as if 10 s had passed: 10 frames in 10 s, 20 to go -> ETA 20 s
        p.finished("w0", "done", {"frames": 10, "attempt": 1}, final=True)
        p.finished("w1", "retry", {"error_class": "Died", "error": "killed"}, final=False)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    progress = [r for r in records if r["event"] == "progress"]
    assert any(r["workers"] == {"w0": "a b.mp4", "w1": "ü.mp4"} for r in progress)
    assert any(r["frames_done"] == 4 for r in progress)
    done = next(r for r in records if r["event"] == "file" and r["status"] == "done")
    assert done["file"] == "a b.mp4" and done["frames"] == 10 and done["files"]["done"] == 1
    assert done["fps"] == 1.0 and done["eta_s"] == 20.0
    retry = next(r for r in records if r["event"] == "file" and r["status"] == "retry")
    assert retry["files"] == {"done": 1, "skipped": 1, "failed": 0}  # a retry is not a final outcome
    summary = records[-1]
    assert summary["event"] == "summary" and summary["frames_done"] == 10 and summary["frames_total"] == 30


def test_a_failed_file_leaves_the_frame_total():
    stream = io.StringIO()
    with BatchProgress(2, 16, stream=stream, live=False) as p:
        p.started("w0", "bad.mp4", 6)
        p.finished("w0", "failed", {"error_class": "InputError", "error": "corrupt"}, final=True)
        assert p.total_frames == 10 and p.files["failed"] == 1


def test_live_bar_shows_counts_rate_and_the_file_per_worker():
    stream = io.StringIO()
    with BatchProgress(2, 12, stream=stream, live=True) as p:
        p.started("w0", "clip one.mp4", 6)
        p.frames("w0", 3)
        text = stream.getvalue()
        p.finished("w0", "done", {"frames": 6}, final=True)
    text += stream.getvalue()
    assert "w0: clip one.mp4" in text or "w0: idle" in text
    assert "batch 1 done, 0 skipped, 0 failed of 2" in text and "frames/s" in text
    assert not any(line.startswith("{") for line in text.splitlines())  # no JSON on a terminal
