"""End-to-end tests of the ``nst-rt`` command line: stylize, export, info, --version.

Most tests drive ``nst_rt.cli.app`` in-process with typer's CliRunner (stdout and stderr are captured
separately); a few key ones run a real ``python -m nst_rt`` process, where "no traceback, exactly one line
on stderr" and the exit codes are what a user sees. Runs use the session's random-weights VGG-19 export
and tiny generated images (a 60x40 gradient as content, seeded noise and stripes as styles).
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer.testing
from PIL import Image
from typer.testing import CliRunner

import nst_rt
import nst_rt.optimize
import nst_rt.pipeline.stylizer as stylize_module
from nst_rt.cli import commands as cli
from nst_rt.io import images
from nst_rt.pipeline import memory
from nst_rt.cli import app
from nst_rt.system.interrupts import Interrupted, stop_signals
from nst_rt.pipeline.options import Options
from nst_rt.pipeline.stylizer import Result
from oracles import LAYERS
from synthetic import gradient, noise, save, stripes

VGG19_LAYERS = LAYERS["vgg19"]
ERROR_PREFIX = "nst-rt: error: "

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("isolated")


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
        def __init__(self, options):
            self.options = options
            made.append(self)

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


# ----------------------------------------------------------------------------- a normal run


def test_stylize_writes_the_output_and_a_summary(paths, models):
    result = invoke(*stylize_args(paths, models, size=48, iterations=3))
    assert_ok(result)
    out = pixels(paths.output)
    assert out.shape == (32, 48, 3)  # 60x40 content at --size 48, aspect ratio kept
    assert not np.array_equal(out, images.to_uint8(images.resize_longest(gradient(), 48)))
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {paths.output} (48x32, 3 iterations, ")
    assert "loss" in lines[0]
    assert result.stdout == ""
    assert listing(paths.out) == ["result.png"]  # no temporary files left behind


def test_the_default_output_is_content_style_png_in_the_current_directory(paths, models, tmp_path):
    result = invoke("stylize", paths.content, paths.style, "--models-dir", models, "--size", "32",
                    "--iterations", "1", "--quiet")
    assert_ok(result)
    assert pixels(tmp_path / "content_style.png").shape == (21, 32, 3)


@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP"), (".tif", "TIFF")])
def test_the_output_format_follows_the_suffix(paths, models, suffix, fmt):
    output = paths.out / f"result{suffix}"
    assert_ok(invoke(*stylize_args(paths, models, "--quiet", output=output, iterations=1)))
    with Image.open(output) as img:
        assert img.format == fmt and img.size == (32, 21)


def test_same_arguments_give_the_same_bytes_and_the_seed_matters(paths, models):
    outputs = [paths.out / name for name in ("a.png", "b.png", "c.png")]
    for output, seed in zip(outputs, ("3", "3", "4")):
        assert_ok(invoke(*stylize_args(paths, models, "--init", "noise", "--seed", seed, "--quiet", output=output)))
    a, b, c = (p.read_bytes() for p in outputs)
    assert a == b
    assert a != c


def test_blend_weights_one_zero_equal_the_first_style_alone(paths, models):
    alone, blended = paths.out / "alone.png", paths.out / "blended.png"
    assert_ok(invoke(*stylize_args(paths, models, "-q", output=alone)))
    assert_ok(invoke(*stylize_args(paths, models, "-q", "--style-blend-weights", "1,0",
                                   styles=[paths.style, paths.style2], output=blended)))
    assert alone.read_bytes() == blended.read_bytes()
    both = paths.out / "both.png"
    assert_ok(invoke(*stylize_args(paths, models, "-q", styles=[paths.style, paths.style2], output=both)))
    assert both.read_bytes() != alone.read_bytes()


# ----------------------------------------------------------------------------- every option reaches Options


OPTION_CASES = [
    (["--size", "40"], "size", 40),
    (["--iterations", "7"], "iterations", 7),
    (["--content-weight", "2.5"], "content_weight", 2.5),
    (["--style-weight", "0"], "style_weight", 0.0),
    (["--tv-weight", "1.5"], "tv_weight", 1.5),
    (["--content-layers", "relu3_1,relu4_2"], "content_layers", ["relu3_1", "relu4_2"]),
    (["--style-layers", " relu1_1 , relu2_1 "], "style_layers", ["relu1_1", "relu2_1"]),
    (["--style-blend-weights", "3,1"], "style_blend_weights", [3.0, 1.0]),
    (["--style-scale", "0.5"], "style_scale", 0.5),
    (["--init", "noise"], "init", "noise"),
    (["--init", "start.png"], "init", "start.png"),
    (["--noise-ratio", "0.3"], "noise_ratio", 0.3),
    (["--seed", "7"], "seed", 7),
    (["--optimizer", "adam"], "optimizer", "adam"),
    (["--learning-rate", "0.1"], "learning_rate", 0.1),
    (["--history", "5"], "history", 5),
    (["--no-bounds"], "bounds", False),
    (["--bounds"], "bounds", True),
    (["--original-colors"], "original_colors", True),
    (["--scales", "2"], "scales", 2),
    (["--model", "vgg16"], "model", "vgg16"),
    (["--model", "some/dir/vgg19"], "model", "some/dir/vgg19"),
    (["--models-dir", "elsewhere"], "models_dir", Path("elsewhere")),
    (["--provider", "cpu"], "provider", "cpu"),
    (["--provider", "cuda"], "provider", "cuda"),
    (["--threads", "3"], "threads", 3),
    (["--tile", "512"], "tile", 512),
]


@pytest.mark.parametrize("flags, field, expected", OPTION_CASES, ids=[" ".join(c[0]) for c in OPTION_CASES])
def test_each_option_reaches_the_stylizer(paths, fake_stylizer, flags, field, expected):
    result = invoke("stylize", paths.content, paths.style, paths.style2, "-o", paths.output, *flags)
    assert_ok(result)
    (stylizer,) = fake_stylizer
    value = getattr(stylizer.options, field)
    assert (list(value) if isinstance(value, (list, tuple)) else value) == expected
    # Nothing else changed from the defaults.
    defaults = Options()
    for name in vars(defaults):
        if name != field:
            want, got = getattr(defaults, name), getattr(stylizer.options, name)
            if isinstance(want, (list, tuple)):
                want, got = list(want), list(got)
            assert got == want, name
    assert stylizer.content == paths.content and list(stylizer.styles) == [paths.style, paths.style2]
    assert pixels(paths.output).shape == (20, 30, 3)  # what the (fake) run returned is what is written
    assert result.stderr.startswith(f"wrote {paths.output} (30x20, 3 iterations, 4 evaluations, loss 1.25")


@pytest.mark.parametrize("bounds, expected", [("--bounds", (0.0, 1.0)), ("--no-bounds", None)])
def test_bounds_reach_the_optimiser(paths, models, minimize_calls, bounds, expected):
    assert_ok(invoke(*stylize_args(paths, models, bounds, "-q", iterations=2)))
    assert [call["bounds"] for call in minimize_calls] == [expected]


def test_optimizer_adam_and_learning_rate_reach_the_optimiser(paths, models, minimize_calls):
    assert_ok(invoke(*stylize_args(paths, models, "--optimizer", "adam", "--learning-rate", "0.07", "-q")))
    (call,) = minimize_calls
    assert call["method"] == "adam" and call["options"]["lr"] == 0.07 and call["options"]["maxiter"] == 3
    assert pixels(paths.output).shape == (21, 32, 3)


def test_init_file_and_original_colors(paths, models):
    start = save(noise(20, 30, seed=8), paths.src / "start.png")
    assert_ok(invoke(*stylize_args(paths, models, "--init", start, "--original-colors", "-q", iterations=4)))
    out = pixels(paths.output).astype(np.float64) / 255
    content = images.resize_longest(gradient(), 32).astype(np.float64)
    chroma = np.abs(images._rgb_to_ycbcr(out)[..., 1:] - images._rgb_to_ycbcr(content)[..., 1:]).mean()
    assert chroma < 0.02


# ----------------------------------------------------------------------------- progress output


def test_quiet_prints_nothing(paths, models):
    result = invoke(*stylize_args(paths, models, "--quiet"))
    assert_ok(result)
    assert result.stderr == "" and result.stdout == ""
    assert paths.output.exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_display_on_a_terminal_and_quiet(paths, models, monkeypatch, quiet):
    monkeypatch.setattr(typer.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    result = invoke(*stylize_args(paths, models, *(["--quiet"] if quiet else []), iterations=3))
    assert_ok(result)
    if quiet:
        assert result.stderr == ""
    else:
        assert "\x1b[" in result.stderr  # drawn in place on the terminal
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)  # as it reads once drawn
        assert "3/3" in shown and "loss" in shown and "it/s" in shown
        assert shown.rstrip("\n").splitlines()[-1].startswith("wrote ")


def test_no_progress_control_codes_when_stderr_is_not_a_terminal(paths, models):
    result = invoke(*stylize_args(paths, models, iterations=3))
    assert_ok(result)
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("wrote ")


def test_a_run_cut_short_says_why_in_the_summary(paths, models, evaluation_budget):
    result = invoke(*stylize_args(paths, models, iterations=20))
    assert_ok(result)
    (line,) = result.stderr.splitlines()
    match = re.fullmatch(rf"wrote {re.escape(str(paths.output))} \(32x21, (\d+) iterations, .*\); stopped after "
                         r"(\d+) of 20 iterations: the optimiser used up its budget of loss evaluations .*", line)
    assert match, line
    assert match.group(1) == match.group(2) and int(match.group(1)) < 20


def test_a_run_cut_short_on_a_terminal_marks_the_bar(paths, models, evaluation_budget, monkeypatch):
    monkeypatch.setattr(typer.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    result = invoke(*stylize_args(paths, models, iterations=20))
    assert_ok(result)
    assert "stopped early" in result.stderr and "/20" in result.stderr


def test_quiet_still_reports_errors(paths, models):
    result = invoke(*stylize_args(paths, models, "--quiet", content=paths.src / "missing.png"))
    assert_one_error_line(result, "does not exist")


# ----------------------------------------------------------------------------- overwrite, frames, GIF


def test_an_existing_output_is_kept_without_overwrite_and_replaced_with_it(paths, models, minimize_calls):
    paths.output.write_bytes(b"precious")
    result = invoke(*stylize_args(paths, models))
    assert_one_error_line(result, "already exists", "--overwrite")
    assert paths.output.read_bytes() == b"precious"
    assert minimize_calls == []  # refused before the run, not after it
    assert listing(paths.out) == ["result.png"]
    result = invoke(*stylize_args(paths, models, "--overwrite"))
    assert_ok(result)
    assert pixels(paths.output).shape == (21, 32, 3)


def test_save_every_writes_numbered_frames(paths, models):
    result = invoke(*stylize_args(paths, models, "--save-every", "2", "-q", iterations=5))
    assert_ok(result)
    assert listing(paths.out) == ["result.png", "result_0002.png", "result_0004.png"]
    for frame in ("result_0002.png", "result_0004.png"):
        assert pixels(paths.out / frame).shape == (21, 32, 3)
    assert not np.array_equal(pixels(paths.out / "result_0002.png"), pixels(paths.out / "result_0004.png"))


def test_save_every_with_scales_tags_the_frames_with_the_scale(paths, models):
    result = invoke(*stylize_args(paths, models, "--save-every", "1", "--scales", "2", "-q", size=48, iterations=2))
    assert_ok(result)
    # the first scale runs twice the iterations of the full size
    assert listing(paths.out) == ["result.png", "result_s1_0001.png", "result_s1_0002.png", "result_s1_0003.png",
                                  "result_s1_0004.png", "result_s2_0001.png", "result_s2_0002.png"]
    assert pixels(paths.out / "result_s1_0002.png").shape == (16, 24, 3)  # half size at the first scale
    assert pixels(paths.out / "result_s2_0002.png").shape == (32, 48, 3)
    assert np.array_equal(pixels(paths.out / "result_s2_0002.png"), pixels(paths.output))


def test_an_existing_frame_is_refused_before_the_run(paths, models, minimize_calls):
    frame = paths.out / "result_0002.png"
    frame.write_bytes(b"old frame")
    result = invoke(*stylize_args(paths, models, "--save-every", "2", iterations=4))
    assert_one_error_line(result, "result_0002.png", "--overwrite")
    assert frame.read_bytes() == b"old frame" and not paths.output.exists()
    assert minimize_calls == []


def gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as img:
        assert img.format == "GIF"
        frames = []
        for k in range(img.n_frames):
            img.seek(k)
            frames.append(np.asarray(img.convert("RGB"), dtype=np.float64))
        return frames


def test_gif_starts_with_the_start_image_and_ends_with_the_result(paths, models):
    gif = paths.out / "progress.gif"
    assert_ok(invoke(*stylize_args(paths, models, "--gif", gif, "--style-weight", "1e9", "-q", iterations=4)))
    frames = gif_frames(gif)
    assert len(frames) == 5  # the start image and each of the 4 iterations
    assert all(f.shape == (21, 32, 3) for f in frames)
    start = images.to_uint8(images.resize_longest(gradient(), 32)).astype(np.float64)
    result = pixels(paths.output).astype(np.float64)
    # GIF frames are palette images: compare how close, not bytes.
    assert np.abs(frames[0] - start).mean() < np.abs(frames[0] - result).mean() / 3
    assert np.abs(frames[-1] - result).mean() < np.abs(frames[-1] - start).mean() / 3


def test_gif_has_its_own_frame_count_over_every_scale(paths, models):
    gif = paths.out / "progress.gif"
    assert_ok(invoke(*stylize_args(paths, models, "--gif", gif, "--scales", "2", "-q", size=48, iterations=25)))
    frames = gif_frames(gif)
    assert len(frames) == cli.GIF_FRAMES == 40
    assert listing(paths.out) == ["progress.gif", "result.png"]  # no PNG frames without --save-every


@pytest.mark.parametrize("total", [300, 700, 7, 3])
def test_gif_steps_are_evenly_spaced_from_start_to_end(total):
    steps = sorted(cli.gif_steps(total))
    assert steps[0] == 0 and steps[-1] == total
    assert len(steps) == min(cli.GIF_FRAMES, total + 1)
    gaps = np.diff(steps)
    assert gaps.max() - gaps.min() <= 1


def test_gif_needs_a_gif_suffix(paths, models):
    result = invoke(*stylize_args(paths, models, "--gif", paths.out / "progress.png"))
    assert_one_error_line(result, "--gif", "progress.png", ".gif")
    assert listing(paths.out) == []


# ----------------------------------------------------------------------------- provider, model lookup


def test_provider_cpu_runs(paths, models):
    assert_ok(invoke(*stylize_args(paths, models, "--provider", "cpu", "-q", iterations=1)))
    assert paths.output.exists()


def test_provider_cuda_without_cuda_is_one_clear_line(paths, models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA")
    result = invoke(*stylize_args(paths, models, "--provider", "cuda"))
    assert_one_error_line(result, "CUDA", "--provider cpu")
    assert listing(paths.out) == []


def test_model_by_path_by_env_and_by_default_directory(paths, models, tmp_path, monkeypatch):
    by_path = invoke(*stylize_args(paths, models, "--model", models / "vgg19", "-q", iterations=1,
                                   output=paths.out / "path.png", models_dir=False))
    assert_ok(by_path)
    by_env = invoke(*stylize_args(paths, models, "-q", iterations=1, output=paths.out / "env.png", models_dir=False),
                    env={"NST_RT_MODELS": str(models)})
    assert_ok(by_env)
    (tmp_path / "models").symlink_to(models, target_is_directory=True)  # ./models
    by_default = invoke(*stylize_args(paths, models, "-q", iterations=1, output=paths.out / "cwd.png",
                                      models_dir=False))
    assert_ok(by_default)
    outputs = [(paths.out / name).read_bytes() for name in ("path.png", "env.png", "cwd.png")]
    assert outputs[0] == outputs[1] == outputs[2]


def test_models_dir_is_searched_before_the_environment(paths, models, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(*stylize_args(paths, models, models_dir=False) + ["--models-dir", empty],
                    env={"NST_RT_MODELS": str(tmp_path / "also-empty")})
    line = assert_one_error_line(result, "nst-rt export", "no exported model 'vgg19'")
    assert str(empty) in line and "also-empty" in line


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_saves_the_best_image_so_far_and_exits_130(paths, models, monkeypatch):
    real_call = stylize_module.Objective.__call__
    calls = {"n": 0}

    def interrupt_later(self, x):
        calls["n"] += 1
        if calls["n"] > 6:
            raise KeyboardInterrupt
        return real_call(self, x)

    monkeypatch.setattr(stylize_module.Objective, "__call__", interrupt_later)
    result = invoke(*stylize_args(paths, models, iterations=50))
    line = assert_one_notice_line(result, "interrupted after", "saved the best image so far", str(paths.output),
                                  code=130)
    done = int(re.search(r"interrupted after (\d+) iterations", line).group(1))
    assert 1 <= done < 50
    assert pixels(paths.output).shape == (21, 32, 3)
    assert listing(paths.out) == ["result.png"]


def test_ctrl_c_before_the_run_writes_nothing_and_exits_130(paths, models, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stylize_module.Stylizer, "__init__", interrupted)
    result = invoke(*stylize_args(paths, models))
    assert_one_notice_line(result, "interrupted; nothing was saved", code=130)
    assert listing(paths.out) == []


def test_ctrl_c_before_the_first_iteration_finishes_writes_nothing(paths, models, monkeypatch):
    def interrupted(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(stylize_module.Objective, "__call__", interrupted)
    gif = paths.out / "progress.gif"
    result = invoke(*stylize_args(paths, models, "--gif", gif, "--save-every", "1"))
    assert_one_notice_line(result, "interrupted before the first iteration finished; nothing was saved", code=130)
    assert listing(paths.out) == []  # no unstylized copy of the content to block the rerun


@pytest.mark.parametrize("command", ["info", "export"])
def test_ctrl_c_in_info_and_export_is_one_line(command, models, monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if command == "info":
        monkeypatch.setattr("nst_rt.network.model.list_models", interrupted)
        result = invoke("info", "--models-dir", models)
        expected = "nst-rt: interrupted"
    else:
        monkeypatch.setattr("nst_rt.export.exporter.export_model", interrupted)
        result = invoke("export", "vgg19", "--random-weights", "0", "--out", tmp_path / "m")
        expected = "nst-rt: interrupted; no model was written"
    assert result.exit_code == 130, result.output
    assert result.stderr.splitlines()[-1] == expected and "Traceback" not in result.output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_become_one_exception_with_the_signal_number(signum):
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as excinfo:
        with stop_signals() as stop:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler runs at the next bytecode; the sleep is interrupted
    assert isinstance(excinfo.value, KeyboardInterrupt) and excinfo.value.signum == signum
    assert stop.signum == signum and stop.exit_code == 128 + signum
    assert signal.getsignal(signum) is before  # the previous handler is back


# ----------------------------------------------------------------------------- bad input


def _unwritable(directory: Path, monkeypatch) -> None:
    directory.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits: refuse file creation there by hand
        real_open = os.open

        def guarded(path, flags, mode=0o777, *args, **kwargs):
            if Path(os.fsdecode(path)).parent == directory and flags & os.O_CREAT:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
            return real_open(path, flags, mode, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded)


def _text_file(p) -> list:
    bad = p.src / "notes.jpg"
    bad.write_text("this is text, not a JPEG\n")
    return ["content", bad]


def _truncated(p) -> list:
    bad = save(noise(40, 60, seed=9), p.src / "cut.png")
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return ["style", bad]


def _broken_model(p, models) -> Path:
    broken = p.src / "models" / "vgg19"
    shutil.copytree(models / "vgg19", broken)
    (broken / "features.onnx").write_bytes(os.urandom(4096))
    return broken


# (id, setup(paths, models, monkeypatch) -> stylize_args keywords and extra flags, needles in the message)
BAD_INPUT = {
    "missing content": (lambda p, m, mp: {"content": p.src / "missing.png"}, ["content image", "does not exist"]),
    "missing style": (lambda p, m, mp: {"styles": [p.style, p.src / "missing.jpg"]},
                      ["style image 2", "missing.jpg", "does not exist"]),
    "text file named .jpg": (lambda p, m, mp: {"content": _text_file(p)[1]}, ["notes.jpg", "not an image"]),
    "truncated png": (lambda p, m, mp: {"styles": [_truncated(p)[1]]}, ["cut.png", "truncated or corrupt"]),
    "decompression bomb": (lambda p, m, mp: (mp.setattr(Image, "MAX_IMAGE_PIXELS", 1000), {})[1],
                           ["content image", "too large", "2400 pixels"]),
    "decompression bomb warning": (lambda p, m, mp: (mp.setattr(Image, "MAX_IMAGE_PIXELS", 2000), {})[1],
                                   ["too large"]),
    "size 8": (lambda p, m, mp: {"size": 8}, ["--size", "16"]),
    "content 100x20 at size 48": (lambda p, m, mp: {"content": save(gradient(20, 100), p.src / "thin.png"),
                                                    "size": 48}, ["48x10", "16 px"]),
    "content 1x1": (lambda p, m, mp: {"content": save(noise(1, 1), p.src / "dot.png")},
                    ["content image", "dot.png", "1x1 px", "16 px", "larger image"]),
    "style 8x8": (lambda p, m, mp: {"styles": [save(stripes(8, 8), p.src / "tiny.png")]},
                  ["style image 1 '", "tiny.png", "8x8 px", "16 px"]),
    "missing style file": (lambda p, m, mp: {"styles": [p.style, p.src / "gone.png"]},
                           ["style image 2 '", "gone.png", "does not exist"]),
    "init keyword from neural-style": (lambda p, m, mp: {"extra": ["--init", "random"]},
                                       ["init image 'random'", "(content, noise, style)", "'noise'"]),
    "style scale too small": (lambda p, m, mp: {"extra": ["--style-scale", "0.25"]}, ["--style-scale"]),
    "beyond memory": (lambda p, m, mp: (mp.setattr(memory, "available_bytes", lambda: 1 << 30),
                                        {"size": 1024, "extra": ["--scales", "1"]})[1],
                      ["1024x683", "GiB", "1.0 GiB is available", "--size"]),
    "negative content weight": (lambda p, m, mp: {"extra": ["--content-weight", "-1"]}, ["content weight", ">= 0"]),
    "negative style weight": (lambda p, m, mp: {"extra": ["--style-weight", "-1e6"]}, ["style weight", ">= 0"]),
    "negative tv weight": (lambda p, m, mp: {"extra": ["--tv-weight", "-0.5"]}, ["tv weight", ">= 0"]),
    "nan style weight": (lambda p, m, mp: {"extra": ["--style-weight", "nan"]}, ["style weight"]),
    "iterations 0": (lambda p, m, mp: {"iterations": 0}, ["iterations", ">= 1"]),
    "output directory missing": (lambda p, m, mp: {"output": p.out / "nope" / "result.png"},
                                 ["does not exist", "mkdir"]),
    "output directory not writable": (lambda p, m, mp: (_unwritable(p.out, mp), {})[1], ["cannot write", "out"]),
    "unknown output suffix": (lambda p, m, mp: {"output": p.out / "result.xyz"}, ["unknown suffix '.xyz'", ".png"]),
    "no output suffix": (lambda p, m, mp: {"output": p.out / "result"}, ["no file suffix"]),
    "missing model": (lambda p, m, mp: {"extra": ["--models-dir", p.src]}, ["no exported model", "nst-rt export"]),
    "missing model path": (lambda p, m, mp: {"extra": ["--model", p.src / "gone" / "vgg19"]},
                           ["does not exist", "nst-rt export"]),
    "broken model": (lambda p, m, mp: {"extra": ["--model", _broken_model(p, m)]}, ["features.onnx", "re-export"]),
    "missing init file": (lambda p, m, mp: {"extra": ["--init", p.src / "start.png"]},
                          ["init image '", "start.png", "(content, noise, style)", "check the path"]),
    "blend weights not numbers": (lambda p, m, mp: {"extra": ["--style-blend-weights", "a,b"]}, ["comma-separated"]),
    "blend weights miscounted": (lambda p, m, mp: {"styles": [p.style, p.style2],
                                                   "extra": ["--style-blend-weights", "1"]},
                                 ["1 values", "2 style images"]),
    "unknown content layer": (lambda p, m, mp: {"extra": ["--content-layers", "relu9_1"]}, ["relu9_1", *VGG19_LAYERS]),
    "unknown style layer": (lambda p, m, mp: {"extra": ["--style-layers", "relu1_1,pool3"]}, ["pool3", *VGG19_LAYERS]),
    "empty layer list": (lambda p, m, mp: {"extra": ["--style-layers", " , "]}, ["at least one layer"]),
    "too many scales": (lambda p, m, mp: {"extra": ["--scales", "3"]}, ["--scales 3", "8x5 px", "fewer"]),
    "threads 0": (lambda p, m, mp: {"extra": ["--threads", "0"]}, ["--threads"]),
    "tile not a multiple of the stride": (lambda p, m, mp: {"extra": ["--tile", "100"]},
                                          ["tile size", "multiple of 16", "100"]),
    "negative tile": (lambda p, m, mp: {"extra": ["--tile", "-16"]}, ["tile size", "-16"]),
    "save every negative": (lambda p, m, mp: {"extra": ["--save-every", "-1"]}, ["--save-every"]),
    "noise ratio above 1": (lambda p, m, mp: {"extra": ["--noise-ratio", "2"]}, ["noise ratio"]),
    "learning rate 0": (lambda p, m, mp: {"extra": ["--learning-rate", "0"]}, ["learning rate"]),
    "history 0": (lambda p, m, mp: {"extra": ["--history", "0"]}, ["history"]),
    "output is a directory": (lambda p, m, mp: ((p.out / "sub.png").mkdir(), {"output": p.out / "sub.png"})[1],
                              ["is a directory"]),
    "output is a directory without suffix": (lambda p, m, mp: ((p.out / "results").mkdir(),
                                                               {"output": p.out / "results"})[1],
                                             ["--output", "is a directory", "results/out.png"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_and_writes_nothing(paths, models, monkeypatch, minimize_calls, case):
    setup, needles = BAD_INPUT[case]
    settings = setup(paths, models, monkeypatch)
    extra = settings.pop("extra", [])
    before = listing(paths.out)
    result = invoke(*stylize_args(paths, models, *extra, **settings))
    assert_one_error_line(result, *needles)
    assert "image image" not in result.output
    assert minimize_calls == []  # refused before any optimisation
    assert listing(paths.out) == before  # no output, no frames, no temporary files
    assert not paths.output.exists()


# ----------------------------------------------------------------------------- info, version, export


def test_info_lists_models_their_metadata_and_the_providers(models, tmp_path):
    result = invoke("info", "--models-dir", models)
    assert_ok(result)
    out = result.stdout
    assert f"nst-rt {nst_rt.__version__}, onnxruntime " in out
    providers = re.search(r"^execution providers: (.*)$", out, re.M).group(1).split(", ")
    assert "CPUExecutionProvider" in providers
    searched = [models, tmp_path / "models", tmp_path / "user-data" / "nst-rt" / "models"]  # absolute, in order
    assert f"\nmodel search path: {', '.join(map(str, searched))}\n" in out
    assert f"\nvgg19  ({models / 'vgg19'})\n" in out
    for line in ("  architecture: vgg19", "  pooling: avg", "  nst_rt.format: 1", "  opset: 17",
                 f"  layers: {','.join(VGG19_LAYERS)}", f"  exporter_version: {nst_rt.__version__}"):
        assert f"\n{line}\n" in out, line
    assert re.search(r"^  weights_sha256: [0-9a-f]{64}$", out, re.M)


def test_info_finds_models_through_the_environment(models, tmp_path):
    result = invoke("info", env={"NST_RT_MODELS": str(models)})
    assert_ok(result)
    searched = [models, tmp_path / "models", tmp_path / "user-data" / "nst-rt" / "models"]
    assert f"\nmodel search path: {', '.join(map(str, searched))}\n" in result.stdout
    assert "  architecture: vgg19" in result.stdout


def test_info_with_no_models_says_how_to_export_one(tmp_path):
    (tmp_path / "nothing").mkdir()
    result = invoke("info", "--models-dir", tmp_path / "nothing")
    assert_ok(result)
    assert "no exported models found" in result.stdout
    assert f"nst-rt export vgg19 --out {tmp_path / 'nothing'}`" in result.stdout  # into the directory asked about
    assert "CPUExecutionProvider" in result.stdout


def test_info_marks_a_broken_model_unusable(models, tmp_path):
    broken = tmp_path / "models" / "vgg19-broken"
    shutil.copytree(models / "vgg19", broken)
    (broken / "vjp.onnx").unlink()
    result = invoke("info", "--models-dir", tmp_path / "models")
    assert_ok(result)
    assert re.search(r"^vgg19-broken  \(.*\): unusable: .*vjp\.onnx", result.stdout, re.M)


def test_version(models):
    result = invoke("--version")
    assert_ok(result)
    assert result.stdout == f"nst-rt {importlib.metadata.version('nst-rt')}\n"
    assert nst_rt.__version__ == importlib.metadata.version("nst-rt")


def test_export_writes_a_validated_model_and_refuses_to_overwrite_it(weights_file, paths, tmp_path):
    out = tmp_path / "exported"
    result = invoke("export", "vgg19", "--weights", weights_file("vgg19"), "--out", out)
    assert_ok(result)
    for output in [*VGG19_LAYERS, "grad_image"]:
        match = re.search(rf"^  {output} +max abs error (\S+) .* ok$", result.stderr, re.M)
        assert match, output
        assert float(match.group(1)) < 1e-4
    assert re.search(rf"^exported vgg19 \(avg pooling\) to {re.escape(str(out / 'vgg19'))} in ", result.stderr, re.M)
    model = out / "vgg19"
    assert sorted(p.name for p in model.iterdir()) == ["features.onnx", "vjp.onnx"]
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.iterdir()}

    again = invoke("export", "vgg19", "--weights", weights_file("vgg19"), "--out", out)
    assert_one_error_line(again, "already exists", "--force")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.iterdir()} == before
    assert listing(out) == ["vgg19"]  # no staging directories left

    # The fresh export stylizes, given as a path.
    assert_ok(invoke("stylize", paths.content, paths.style, "-o", paths.output, "--model", model, "--size", "32",
                     "--iterations", "1", "-q"))
    assert pixels(paths.output).shape == (21, 32, 3)


def test_export_with_missing_weights_is_one_line(tmp_path):
    result = invoke("export", "vgg19", "--weights", tmp_path / "nope.pth", "--out", tmp_path / "m")
    assert_one_error_line(result, "nope.pth", "does not exist")
    assert not (tmp_path / "m" / "vgg19").exists()


# ----------------------------------------------------------------------------- real processes


def test_process_stylize_succeeds(paths, models, tmp_path):
    done = run_process(*stylize_args(paths, models, size=48, iterations=2), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {paths.output} (48x32, 2 iterations")
    assert pixels(paths.output).shape == (32, 48, 3)


@pytest.mark.parametrize("case", ["missing content", "provider cuda", "unknown layer"])
def test_process_errors_are_one_line_without_traceback(paths, models, tmp_path, case):
    if case == "missing content":
        args = stylize_args(paths, models, content=paths.src / "missing.png")
    elif case == "provider cuda":
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            pytest.skip("this onnxruntime offers CUDA")
        args = stylize_args(paths, models, "--provider", "cuda")
    else:
        args = stylize_args(paths, models, "--content-layers", "relu4_9")
    done = run_process(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), done.stderr
    assert listing(paths.out) == []


def _limit_address_space():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def test_process_refuses_a_size_far_beyond_memory(paths, models, tmp_path):
    # The address-space limit turns an attempted 200000 px run into a MemoryError instead of an OOM kill.
    done = run_process(*stylize_args(paths, models, "--scales", "1", size=200000), cwd=tmp_path, timeout=120,
                       preexec_fn=_limit_address_space)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(ERROR_PREFIX) and "200000x133333" in lines[0] and "GiB" in lines[0]
    assert listing(paths.out) == []


def test_process_version():
    done = run_process("--version", cwd=Path.cwd())
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"nst-rt {importlib.metadata.version('nst-rt')}\n"


@pytest.mark.parametrize("signum, words", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "stopped by SIGTERM"),
                                           (signal.SIGHUP, "stopped by SIGHUP")])
def test_process_stop_signal_saves_the_best_image_and_exits_128_plus_signal(paths, models, tmp_path, signum, words):
    # Far more iterations than can run before the signal: the run must end by the signal, not by finishing.
    args = stylize_args(paths, models, "--save-every", "2", iterations=100000)
    proc = subprocess.Popen([sys.executable, "-m", "nst_rt", *map(str, args)], cwd=tmp_path, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_frame = paths.out / "result_0002.png"
        deadline = time.monotonic() + 90
        while not first_frame.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no frame within 90 s"
            time.sleep(0.02)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, stderr
    assert stdout == "" and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    match = re.fullmatch(rf"nst-rt: {words} after (\d+) iterations; saved the best image so far to "
                         rf"{re.escape(str(paths.output))}", lines[0])
    assert match, lines[0]
    assert 2 <= int(match.group(1)) < 100000
    assert pixels(paths.output).shape == (21, 32, 3)
    assert not [name for name in listing(paths.out) if name.startswith(".")]  # no temporary files


def test_export_with_random_weights_needs_no_file(tmp_path):
    result = runner.invoke(app, ["export", "vgg16", "--random-weights", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    from nst_rt.network.model import load_model

    info = load_model("vgg16", tmp_path)
    assert info.metadata["weights_source"] == "random weights (seed 3)"
    assert len(info.metadata["weights_sha256"]) == 64


def test_export_refuses_weights_and_random_weights_together(tmp_path, weights_file):
    result = runner.invoke(app, ["export", "vgg19", "--weights", str(weights_file("vgg19")), "--random-weights", "0",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "not both" in result.stderr and not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, expected", [
    (["stylize", "a.png", "b.png", "--size", "abc"], "Invalid value for '--size'"),
    (["stylize"], "Missing argument 'CONTENT'"),
    (["no-such-command"], "No such command"),
    (["stylize", "a.png", "b.png", "--provider", "tpu"], "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
])
def test_usage_errors_are_clicks_own_with_exit_code_2(argv, expected):
    done = subprocess.run([sys.executable, "-m", "nst_rt", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: nst-rt") and "--help" in done.stderr
    assert "\nError: " in done.stderr and expected in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_bare_command_prints_the_help():
    done = subprocess.run([sys.executable, "-m", "nst_rt"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert all(command in done.stderr + done.stdout for command in ("stylize", "export", "info"))


def test_cli_choices_are_the_librarys():
    from nst_rt.export import vgg
    from nst_rt.model_format import ARCHITECTURES, POOLINGS
    from nst_rt.network.session import PROVIDERS
    from nst_rt.pipeline.options import OPTIMIZERS

    import typing

    from nst_rt.cli import common as cli_common

    # Annotated stripped; the stylization options are declared once, for stylize and batch alike
    hints = {**typing.get_type_hints(cli_common.stylization_options), **typing.get_type_hints(cli.export)}
    choices = {name: tuple(member.value for member in hints[name]) for name in ("provider", "optimizer", "pooling",
                                                                                  "arch")}
    assert choices == {"provider": PROVIDERS, "optimizer": OPTIMIZERS, "pooling": POOLINGS,
                       "arch": tuple(ARCHITECTURES)}
    assert vgg.ARCHITECTURES is ARCHITECTURES and vgg.POOLINGS is POOLINGS  # the exporter reads the same tables


def test_stylize_defaults_are_the_options_defaults():
    command = typer.main.get_command(app).commands["stylize"]
    defaults = Options()
    compared = 0
    for param in command.params:
        if param.name in vars(defaults):
            want = getattr(defaults, param.name)
            want = ",".join(want) if isinstance(want, tuple) else want
            got = param.default.value if hasattr(param.default, "value") else param.default
            assert got == want, param.name
            compared += 1
    assert compared == len(vars(defaults))
