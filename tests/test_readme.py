"""The README stays true: its Python examples run as printed, its option tables match ``--help``, and its
Architecture section names every module.

The Python blocks run in-process on the session's random-weights VGG-19 (through $NST_RT_MODELS), from a
directory that holds the repository's ``examples/``, with their sizes and iteration counts made small.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

import nst_rt.optimize
from nst_rt.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.M | re.S)

# Small enough for a test, large enough for every image to stay above the network's 16 px.
SMALL = [(r"\bsize=\d+", "size=32"), (r"\biterations=\d+", "iterations=3"), (r'"maxiter": \d+', '"maxiter": 3')]


def test_the_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"block{k}" for k in range(len(PYTHON_BLOCKS))])
def test_each_python_example_runs_and_optimises(block, models, monkeypatch, tmp_path):
    small = block
    for pattern, replacement in SMALL:
        small = re.sub(pattern, replacement, small)
    assert small != block or "import" not in block  # every example that runs something is made small
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)  # what the examples write lands here, not in the repository
    monkeypatch.setenv("NST_RT_MODELS", str(models))
    iterations = []
    real = nst_rt.optimize.minimize

    def recording(*args, **kwargs):
        result = real(*args, **kwargs)
        iterations.append(int(result.nit))
        return result

    monkeypatch.setattr(nst_rt.optimize, "minimize", recording)
    exec(compile(small, "README.md", "exec"), {"__name__": "readme_example"})
    assert iterations and all(n > 0 for n in iterations), iterations
    written = [p for p in tmp_path.rglob("*.png") if p.relative_to(tmp_path).parts[0] != "examples"]
    assert written  # each example saves its picture


def readme_table(heading: str) -> dict[str, str]:
    """``{option: default}`` of the option table under ``heading``, backticks removed."""
    section = README.split(heading, 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`-"):
            rows[cells[0].replace("`", "")] = cells[1].replace("`", "")
    return rows


def help_default(param) -> str:
    """The default as ``--help`` shows it: click's value, or the "[default: ...]" written in the help text."""
    if param.required:
        return "(required)"
    if not param.show_default:
        match = re.search(r"\[default: ([^\]]+)\]", param.help or "")
        assert match, f"{param.opts} hides its default without saying it in its help"
        return match.group(1)
    if param.is_flag:
        return (param.opts if param.default else param.secondary_opts or ["off"])[0].lstrip("-")
    default = param.default
    return str(getattr(default, "value", default))


def same_default(readme: str, shown: str) -> bool:
    if readme == shown or (readme == "off" and shown.startswith("no-")):
        return True
    try:
        return float(readme) == float(shown)
    except ValueError:
        return False


@pytest.mark.parametrize("command, heading", [("stylize", "### `nst-rt stylize"), ("batch", "### `nst-rt batch"),
                                              ("export", "### `nst-rt export")])
def test_the_readme_option_table_matches_help(command, heading):
    from nst_rt.cli.common import SHARED

    table = readme_table(heading)
    # batch's table lists its own options; the stylization options it shares are stylize's table
    shared = set(SHARED) if command == "batch" else set()
    params = [p for p in typer.main.get_command(app).commands[command].params
              if p.param_type_name == "option" and p.name != "help" and p.name not in shared]
    unmatched = dict(table)
    for param in params:
        names = set(param.opts) | set(param.secondary_opts)
        rows = [row for row in table if names & set(re.split(r"[ ,/]+", row))]
        assert len(rows) == 1, (param.opts, rows)
        row = rows[0]
        unmatched.pop(row, None)
        assert same_default(table[row], help_default(param)), (row, table[row], help_default(param))
    assert not unmatched, f"README rows for options the command does not have: {list(unmatched)}"
