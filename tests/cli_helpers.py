"""What the CLI tests share: invoking the app, checking one-line errors, the working paths, a faked Stylizer,
and running nst-rt as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import nst_rt.pipeline.stylizer as stylize_module
from nst_rt.cli import app
from nst_rt.pipeline.stylizer import Result
from oracles import LAYERS
from synthetic import gradient, noise, save, stripes

VGG19_LAYERS = LAYERS["vgg19"]

ERROR_PREFIX = "nst-rt: error: "

runner = CliRunner()


# ----------------------------------------------------------------------------- images and helpers


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img)


def listing(directory: Path) -> list[str]:
    """Every entry, hidden ones (temporary files) included."""
    return sorted(p.name for p in directory.iterdir())


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def assert_ok(result) -> None:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    assert result.exception is None, repr(result.exception)


def assert_one_error_line(result, *needles, code: int = 1) -> str:
    """Exit ``code``, exactly one line on stderr (the error), nothing on stdout, no Python exception."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result.stdout == ""
    return lines[0]


def assert_one_notice_line(result, *needles, code: int) -> str:
    """Like assert_one_error_line, for a stop the user asked for: ``nst-rt: ...``, not an error."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nst-rt: ") and not lines[0].startswith(ERROR_PREFIX), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result.stdout == "" and "Traceback" not in result.output
    return lines[0]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def paths(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    return SimpleNamespace(
        src=src, out=out, output=out / "result.png",
        content=save(gradient(), src / "content.png"),
        style=save(noise(), src / "style.png"),
        style2=save(stripes(), src / "stripes.png"),
    )


def stylize_args(paths, models, *extra, content=None, styles=None, output=None, size=32, iterations=3,
                 models_dir=True):
    args = ["stylize", content or paths.content, *(styles or [paths.style]), "-o", output or paths.output,
            "--size", size, "--iterations", iterations, "--threads", "1"]
    if models_dir:
        args += ["--models-dir", models]
    return [*args, *extra]


@pytest.fixture
def fake_stylizer(monkeypatch):
    """Replaces the Stylizer the CLI builds with one that records its Options and returns a 30x20 grey image."""
    made = []

    class FakeStylizer:
        def __init__(self, options, **engine):  # engine, address, actors, worker_memory
            self.options, self.engine = options, engine
            self.model = SimpleNamespace(layers=list(LAYERS["vgg19"]))  # what the CLI checks the options against
            self.closed = False
            made.append(self)

        def close(self):
            self.closed = True

        def run(self, content, styles, progress=None, checkpoint=None, on_tile=None):
            self.content, self.styles = content, styles
            return Result(np.full((20, 30, 3), 0.5, np.float32), 1.25, {"content": 1.0, "style": 0.25, "tv": 0.0},
                          iterations=3, evaluations=4, seconds=0.5)

    monkeypatch.setattr(stylize_module, "Stylizer", FakeStylizer)
    return made


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NST_RT_MODELS"}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_process(*args, cwd, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "nst_rt", *map(str, args)], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)
