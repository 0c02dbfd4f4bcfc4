"""``vsr models``: the registry with weights, licence, defaults and measured quality."""

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
    """List registered models: name, scale, default use, licence and held-out PSNR.

    The table quotes what the README quotes (Set5 / Set14 Y-PSNR for general models, faces/val RGB-PSNR for
    face models); --json has every metric, the weights file and its sha256; --card NAME has the rest.
    """
    from vsr.models.registry import DEFAULT_FACE_MODEL, DEFAULT_MODEL, REGISTRY, describe_model, get_spec

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
        row["face_default_for_scales"] = [s for s, name in DEFAULT_FACE_MODEL.items() if name == row["name"]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    """One line per model at 80 columns: full name, default marker, short licence, headline PSNR.

    Parameters, weights file and sha256 are in --json and the card (they do not fit beside these).
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vsr models", box=None, pad_edge=False, collapse_padding=True)
    table.add_column("name", no_wrap=True)
    table.add_column("x", justify="right", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("licence")
    table.add_column("held-out PSNR dB (bicubic)")
    for r in rows:
        default = " ".join(
            ["frame"] * bool(r["default_for_scales"]) + ["face"] * bool(r["face_default_for_scales"])
        )
        table.add_row(
            r["name"],
            str(r["scale"] or "any"),
            default,
            _short_licence(r["licence"]),
            _headline(r) or "-",
        )
    console = Console()
    console.print(table)
    notes = ["", "default: used by `vsr enhance` without --model (frame) or --face-model (face)"]
    full = sorted({r["licence"] for r in rows if _short_licence(r["licence"]) != (r["licence"] or "-")})
    notes += [f"{_short_licence(licence)}: {licence}" for licence in full]
    notes.append("--json: every metric, weights file and sha256; --card NAME: data and training")
    console.print("\n".join(notes), highlight=False, markup=False)


def _short_licence(licence: str | None) -> str:
    """'non-commercial' for 'non-commercial research only (UTKFace)'; '-' without weights."""
    if not licence:
        return "-"
    return "non-commercial" if licence.startswith("non-commercial") else licence


def _headline(r: dict) -> str:
    """The README's numbers: faces/val RGB for face models, Set5 / Set14 Y for general ones (bicubic in brackets)."""
    m = r["metrics"] or {}
    if r["face"]:
        sets, key, label = ("faces_val",), "psnr_rgb", "faces/val RGB"
    else:
        sets, key, label = ("Set5", "Set14"), "psnr_y", "Set5/14 Y"
    if not all(key in m.get(s, {}) for s in sets):
        return ""
    model = "/".join(f"{m[s][key]:.2f}" for s in sets)
    base = "/".join(f"{m[s]['bicubic'][key]:.2f}" for s in sets if key in m[s].get("bicubic", {}))
    return f"{label} {model}" + (f" ({base})" if base else "")


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
