"""``vsr models``: the registry with weights, licence and measured quality."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
@click.option("--card", "card", default=None, metavar="NAME", help="Print one model's card.")
@click.option(
    "--inspect",
    "inspect_path",
    default=None,
    metavar="FILE",
    help="Describe a weights file (vsr's or a third-party .pth/.safetensors): architecture, scale, input needs.",
)
def models(as_json: bool, card: str | None, inspect_path: str | None) -> None:
    """List registered models: name, scale, parameters, weights file, sha256, licence and metrics."""
    from vsr.models.registry import DEFAULT_MODEL, REGISTRY, describe_model, get_spec

    if inspect_path:
        _inspect(inspect_path, as_json)
        return
    if card:
        spec = get_spec(card)
        click.echo(
            spec.card.read_text()
            if spec.card.is_file()
            else f"{spec.name}: no model card ({spec.description})"
        )
        return
    rows = [describe_model(spec) for spec in REGISTRY.values()]
    for row in rows:
        row["default_for_scales"] = [s for s, name in DEFAULT_MODEL.items() if name == row["name"]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vsr models")
    for col in ("name", "scale", "params", "weights", "sha256", "licence", "metrics"):
        table.add_column(col)
    for r in rows:
        first = next(
            iter((r["metrics"] or {}).items()), None
        )  # the headline set; all of them: --json or --card
        metrics = _headline(*first) if first else ""
        table.add_row(
            r["name"],
            str(r["scale"] or "any"),
            f"{r['params']:,}",
            r["weights"] or "-",
            (r["sha256"] or "-")[:12],
            r["licence"] or "-",
            metrics or "-",
        )
    Console().print(table)


def _headline(name: str, m: dict) -> str:
    """'Set5 psnr_y 29.10 (bicubic 28.43)': the model's PSNR next to bicubic's."""
    key = "psnr_rgb" if "psnr_rgb" in m else "psnr_y"
    base = m.get("bicubic", {}).get(key)
    extra = f" flicker {m['flicker']:.3f}" if "flicker" in m else ""
    return (
        f"{name} {key} {m.get(key, float('nan')):.2f}"
        + (f" (bicubic {base:.2f})" if base is not None else "")
        + extra
    )


def _inspect(path: str, as_json: bool) -> None:
    from vsr.models.registry import inspect_file

    info = inspect_file(path)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    need = info["input"]
    needs = [f"multiple of {need['multiple_of']}" if need["multiple_of"] > 1 else ""]
    needs.append(f"at least {need['minimum']} px" if need["minimum"] else "")
    needs.append(f"an aligned {need['aligned_face']} px face" if need["aligned_face"] else "")
    precisions = ", ".join(k for k, ok in info["precision"].items() if ok)
    purpose = info["purpose"] + (
        " (generative face restorer: invents detail)" if info["generative_face_restorer"] else ""
    )
    for label, value in (
        ("file", info["file"]),
        ("architecture", f"{info['architecture']} (loaded by {info['loader']})"),
        ("purpose", purpose),
        ("scale", f"x{info['scale']}"),
        ("parameters", f"{info['params']:,}"),
        ("input", ", ".join(n for n in needs if n) or "any size (padded and cropped back as needed)"),
        ("precision", precisions),
        ("sha256", info["sha256"]),
        ("licence", info["licence"]),
    ):
        click.echo(f"{label:>12}: {value}")
