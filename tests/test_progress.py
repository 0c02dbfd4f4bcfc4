"""Progress degrades to plain lines off a terminal and is silent when quiet."""

from __future__ import annotations

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
