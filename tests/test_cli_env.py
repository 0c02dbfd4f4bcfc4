"""Values from ``VSR_*`` variables are named by their variable in errors, not only by the flag."""

from __future__ import annotations

from click.testing import CliRunner

from vsr.cli import cli
from vsr.errors import ConfigError


def test_click_error_names_the_environment_variable(tmp_path):
    result = CliRunner().invoke(cli, ["enhance", "in.mp4", "out.mp4"], env={"VSR_SCALE": "3"})
    assert result.exit_code == 2
    assert "'VSR_SCALE' (the environment variable for '--scale')" in result.output
    flag = CliRunner().invoke(cli, ["enhance", "in.mp4", "out.mp4", "--scale", "3"], env={"VSR_SCALE": None})
    assert flag.exit_code == 2 and "'--scale'" in flag.output and "VSR_SCALE" not in flag.output


def test_config_error_names_the_environment_variable(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes(b"not read: the options are checked first")
    args = ["enhance", str(src), str(tmp_path / "out.mp4")]
    result = CliRunner().invoke(cli, args, env={"VSR_TILE": "5"})
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("--tile (from VSR_TILE) must be 0 (off) or at least 16")
    typed = CliRunner().invoke(cli, [*args, "--tile", "5"], env={"VSR_TILE": None})
    assert isinstance(typed.exception, ConfigError) and "VSR_TILE" not in str(typed.exception)
