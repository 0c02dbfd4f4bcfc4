"""``vsr models``: readable at 80 columns, default markers, the README's metric, licences; --json defaults."""

from __future__ import annotations

import json

from click.testing import CliRunner

from vsr.cli import cli
from vsr.models.registry import DEFAULT_FACE_MODEL, DEFAULT_MODEL, REGISTRY


def _table(columns: int) -> list[str]:
    result = CliRunner().invoke(cli, ["models"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def _row(lines: list[str], name: str) -> str:
    (line,) = [line for line in lines if line.split()[:1] == [name]]  # the full name, on one line
    return line


def test_table_fits_80_columns_with_full_names_defaults_licence_and_readme_metric():
    lines = _table(80)
    assert max(len(line) for line in lines) <= 80
    frame_defaults, face_defaults = set(DEFAULT_MODEL.values()), set(DEFAULT_FACE_MODEL.values())
    for name, spec in REGISTRY.items():
        row = _row(lines, name).split()
        assert ("frame" in row) == (name in frame_defaults) and ("face" in row) == (name in face_defaults)
        if spec.weights is None:
            continue
        assert "non-commercial" in row  # every shipped model saw UTKFace
        if spec.task != "sr":
            continue  # the README's SR metrics are for super-resolution models (restore-face has its own card)
        m = spec.metrics
        if spec.face:  # the README quotes faces/val RGB for face models ...
            expected = f"{m['faces_val']['psnr_rgb']:.2f}"
        else:  # ... and Set5 / Set14 Y for general ones
            expected = f"{m['Set5']['psnr_y']:.2f}/{m['Set14']['psnr_y']:.2f}"
        assert expected in row, (name, row)
    assert any("non-commercial research only (UTKFace)" in line for line in lines)


def test_json_lists_frame_and_face_defaults():
    result = CliRunner().invoke(cli, ["models", "--json"])
    rows = {r["name"]: r for r in json.loads(result.output)}
    for scale, name in DEFAULT_MODEL.items():
        assert scale in rows[name]["default_for_scales"]
    for scale, name in DEFAULT_FACE_MODEL.items():
        assert rows[name]["face_default_for_scales"] == [scale]
    assert all(
        r["face_default_for_scales"] == [] for n, r in rows.items() if n not in DEFAULT_FACE_MODEL.values()
    )


def test_each_card_states_the_registry_licence():
    for name, spec in REGISTRY.items():
        if spec.weights is not None:
            assert f"Licence: **{spec.weights.licence}**" in spec.card.read_text(), name
