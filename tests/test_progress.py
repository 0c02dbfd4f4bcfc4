"""Progress degrades to plain lines off a terminal and is silent when quiet."""

from __future__ import annotations

import re

from vsr.progress import Progress


def test_plain_progress_lines_when_not_a_terminal(capsys):
    with Progress("enhance", total=10, every=0.0) as p:
        for _ in range(3):
            p.update(1, loss=0.5)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert err[-1].startswith("enhance: 3/10 frames") and "loss=0.5" in err[-1] and "eta" in err[-1]


def test_quiet_progress_prints_nothing(capsys):
    with Progress("enhance", total=10, every=0.0, quiet=True) as p:
        p.update(5)
        p.line("hello")
    assert capsys.readouterr().err == ""


class _Clock:
    """A stand-in for ``time`` in vsr.progress: the test moves ``now`` by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_plain_eta_ignores_start_up_time(monkeypatch, capsys):
    import vsr.progress

    clock = _Clock()
    monkeypatch.setattr(vsr.progress, "time", clock)
    with Progress("enhance", total=100, every=0.0) as p:
        clock.now += 120  # two minutes of model loading before the first frame
        p.update(10)
        clock.now += 10
        p.update(10)  # 10 frames in 10 s: 80 left at 1/s
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("enhance: 20/100 frames 1.00/s eta 1m20s"), last


def test_begin_starts_the_clock_so_the_first_batch_counts(monkeypatch):
    import vsr.progress

    clock = _Clock()
    monkeypatch.setattr(vsr.progress, "time", clock)
    with Progress("enhance", total=100, quiet=True) as p:
        clock.now += 60
        p.begin()
        clock.now += 5
        p.update(10)
        assert p.rate == 2.0 and p.eta == "eta 0m45s"


def test_live_bar_shows_a_total_set_late_and_an_eta():
    import io
    import time

    stream = io.StringIO()
    with Progress("enhance", total=None, stream=stream, live=True) as p:
        p.total = 48  # known only once the input is probed, after the bar was created
        for _ in range(4):
            p.update(6)
            time.sleep(0.02)
    shown = stream.getvalue()
    assert "24/48" in shown and "24/?" not in shown
    assert re.search(r"eta \d+m\d\ds", shown), shown
