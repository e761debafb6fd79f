"""A command checks its inputs before its outputs: the user is told about the typo, not a clash."""

from __future__ import annotations

from typer.testing import CliRunner

from nst_rt.cli import app
from synthetic import gradient, save


def test_a_missing_style_is_reported_before_an_existing_output(tmp_path, models, monkeypatch):
    monkeypatch.chdir(tmp_path)
    content = save(gradient(40, 48), tmp_path / "chelsea.png")
    (tmp_path / "chelsea_strry.png").write_bytes(b"what the user had")  # the default output name, already there
    result = CliRunner().invoke(app, ["stylize", str(content), "strry.png", "--models-dir", str(models), "-q"])
    assert result.exit_code == 1
    message = result.output.strip()
    assert "style image 1" in message and "strry.png" in message and "already exists" not in message
    assert (tmp_path / "chelsea_strry.png").read_bytes() == b"what the user had"
