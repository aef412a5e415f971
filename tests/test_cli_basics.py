from typer.testing import CliRunner

import claractl
from claractl.cli.main import app


def test_version_prints_package_version():
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert f"claractl {claractl.__version__}" in result.output


def test_dash_c_to_missing_directory_is_a_clear_error():
    result = CliRunner().invoke(app, ["-C", "/nonexistent/dir", "version"])
    assert result.exit_code != 0
    assert "/nonexistent/dir" in result.output
