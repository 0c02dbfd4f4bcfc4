"""``vsr probe INPUT``: describe a video without importing torch."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vsr.cli.options import input_limits, limit_options
from vsr.errors import safe_text


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@limit_options
def probe(input: Path, as_json: bool, **limits) -> None:
    """Show INPUT's streams, size, frame rate, frames, duration, rotation, pixel format, colour tags and audio.

    INPUT is opened in a contained child process (a hostile file cannot crash or hang this one), under the
    same limits as vsr enhance.
    """
    from vsr.media.probe import probe as run

    info = run(input, input_limits(limits))
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
        return
    from vsr.media.probe import FIELD_ORDER_TEXT

    d = info.to_dict()
    audio = d.pop("audio_streams")
    subs = d.pop("subtitle_streams")
    names = d.pop("color_names")
    estimate = d.pop("frames_estimate")
    if d["frames"] is None:
        d["frames"] = (
            f"~{estimate} (estimate: duration x rate; the container has no count)" if estimate else "unknown"
        )
    for key, kind in (("color_range", "range"), ("color_primaries", "primaries"), ("color_trc", "transfer")):
        d[key] = f"{names[kind]} ({d[key]})"
    d["colorspace"] = f"{names['matrix']} ({d['colorspace']})"
    d["field_order"] = FIELD_ORDER_TEXT.get(d["field_order"], d["field_order"])
    width = max(len(k) for k in d)
    for key, value in d.items():
        click.echo(f"{key:<{width}}  {safe_text(value)}")
    for a in audio:
        click.echo(
            f"{'audio':<{width}}  #{a['index']} {a['codec']} {a['sample_rate']} Hz {a['channels']} ch {a['language'] or ''}".rstrip()
        )
    for s in subs:
        click.echo(f"{'subtitle':<{width}}  #{s['index']} {s['codec']} {s['language'] or ''}".rstrip())
