"""End-to-end tests of the ``nst-rt`` command line: stylize, export, info, --version.

Most tests drive ``nst_rt.cli.app`` in-process with typer's CliRunner (stdout and stderr are captured
separately); a few key ones run a real ``python -m nst_rt`` process, where "no traceback, exactly one line
on stderr" and the exit codes are what a user sees. Runs use the session's random-weights VGG-19 export
and tiny generated images (a 60x40 gradient as content, seeded noise and stripes as styles).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import typer.testing
from PIL import Image

from nst_rt.cli import commands as cli
from nst_rt.io import images
from nst_rt.pipeline.options import Options
from oracles import LAYERS
from synthetic import gradient, noise, save

VGG19_LAYERS = LAYERS["vgg19"]
from cli_helpers import (ERROR_PREFIX, assert_ok, assert_one_error_line, assert_one_notice_line, fake_stylizer,  # noqa: F401
                         invoke, listing, paths, pixels, run_process, runner, stylize_args, subprocess_env)

pytestmark = pytest.mark.usefixtures("isolated")


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
    (["--original-colors-mode", "lab"], "original_colors_mode", "lab"),
    (["--color-transfer", "pca"], "color_transfer", "pca"),
    (["--color-transfer", "histogram"], "color_transfer", "histogram"),
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


def test_the_engine_settings_reach_the_stylizer_which_is_closed(paths, fake_stylizer):
    result = invoke("stylize", paths.content, paths.style, "-o", paths.output, "--engine", "ray", "--address", "auto",
                    "--actors", "3", "--worker-memory", "2G")
    assert_ok(result)
    (stylizer,) = fake_stylizer
    assert stylizer.engine == {"engine": "ray", "address": "auto", "actors": 3, "worker_memory": "2G"}
    assert stylizer.closed


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
    result = invoke(*stylize_args(paths, models, "--save-every", "1", "--scales", "2", "--coarse-iterations", "2", "-q",
                                  size=48, iterations=2))
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
    assert_ok(invoke(*stylize_args(paths, models, "--gif", gif, "--scales", "2", "--coarse-iterations", "2", "-q",
                                   size=48, iterations=25)))
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
