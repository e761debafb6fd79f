"""The settle stop: a scale ends once its saved (8-bit) picture stops changing, at the first window of calm
iterations; 0 turns it off; a resumed run stops where the uninterrupted one does; bad thresholds are refused."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from cli_helpers import assert_one_error_line, invoke, paths, stylize_args  # noqa: F401 (paths is a fixture)
from nst_rt.errors import OptionError
from nst_rt.io import images
from nst_rt.pipeline.checkpoint import Checkpoint
from nst_rt.pipeline.fingerprint import describe_differences
from nst_rt.pipeline.options import SETTLE_WINDOW, Options
from nst_rt.pipeline.stylizer import Progress, Stylizer
from synthetic import gradient, noise

THRESHOLD = 1.0  # grey levels per iteration: the random-weights run below settles about halfway at 32 px
ITERATIONS = 60
CONTENT, STYLES = gradient(), [noise()]


@pytest.fixture(scope="module")
def stylizer(models):
    return Stylizer(models_dir=models, size=32, iterations=ITERATIONS, threads=1, scales=1)


def recorded(stylizer, **overrides):
    """The run's result and every picture it reported, as saved (8-bit), with the reports' settled flags."""
    frames, flags = [], []

    def progress(p):
        frames.append(images.to_uint8(p.image()).astype(np.int16))
        flags.append(p.settled)

    return stylizer.derive(**overrides).run(CONTENT, STYLES, progress), frames, flags


def test_a_scale_ends_at_the_first_window_of_iterations_that_barely_change_the_picture(stylizer):
    result, frames, flags = recorded(stylizer, settle=THRESHOLD)
    n = result.iterations
    assert SETTLE_WINDOW < n < ITERATIONS
    assert result.stopped_early == {1: f"settled after {n} of {ITERATIONS} iterations"}
    assert result.message == result.stopped_early[1]
    changes = [float(np.mean(np.abs(b - a))) for a, b in zip(frames, frames[1:])]  # iteration 1, 2, ..., n
    assert len(changes) == n
    calm = [change < THRESHOLD for change in changes]
    assert all(calm[-SETTLE_WINDOW:])
    assert not any(all(calm[i:i + SETTLE_WINDOW]) for i in range(n - SETTLE_WINDOW))  # no earlier calm window
    assert flags == [False] * n + [True]  # the progress report of the last iteration says so


def test_the_stop_only_shortens_the_run_and_0_turns_it_off(stylizer):
    settled, _, _ = recorded(stylizer, settle=THRESHOLD)
    full, frames, flags = recorded(stylizer, settle=0)
    assert full.iterations == ITERATIONS and full.message == "" and not any(flags)
    # The settled result is the picture the run without the stop had at that iteration, byte for byte.
    np.testing.assert_array_equal(images.to_uint8(settled.image), frames[settled.iterations])


def stop_at(scale: int, iteration: int):
    def progress(p):
        if (p.scale, p.iteration) == (scale, iteration):
            raise KeyboardInterrupt

    return progress


@pytest.mark.parametrize("before", [4, 1, 0], ids=["before the window ends", "one before", "at the stop"])
def test_a_resumed_run_settles_where_the_uninterrupted_one_does(stylizer, tmp_path, before):
    run = stylizer.derive(settle=THRESHOLD, scales=2, size=48, iterations=ITERATIONS // 2, coarse_iterations=2.0)
    reports = []
    whole = run.run(CONTENT, STYLES, lambda p: reports.append((p.scale, p.iteration, p.settled)))
    settled_at = [(scale, iteration) for scale, iteration, settled in reports if settled]
    assert settled_at and settled_at[0][0] == 1  # the first scale settles (and maybe the second)

    path = tmp_path / "out.png.ckpt"
    stopped = run.run(CONTENT, STYLES, stop_at(1, settled_at[0][1] - before),
                      checkpoint=Checkpoint(path, 1e-9, write_share=None))
    assert stopped.interrupted and path.exists()
    resumed = run.run(CONTENT, STYLES, checkpoint=Checkpoint(path, 1e-9, write_share=None, resume=True))
    assert not resumed.interrupted
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.iterations, resumed.evaluations, resumed.stopped_early, resumed.message) == \
        (whole.iterations, whole.evaluations, whole.stopped_early, whole.message)


def test_a_checkpoint_from_before_the_stop_matches_only_a_run_without_it(stylizer):
    from nst_rt.pipeline.fingerprint import fingerprint

    def prints(settle):
        return fingerprint(Options(settle=settle), stylizer.model.metadata, CONTENT, STYLES, None)

    older = {name: value for name, value in prints(0.0).items() if name != "--settle"}
    assert describe_differences(older, prints(0.0)) == ""
    assert "--settle" in describe_differences(older, prints(0.5))
    assert json.loads(prints(0.5)["--settle"]) == 0.5


@pytest.mark.parametrize("value", [-1, 256, float("nan"), float("inf"), True, "1"])
def test_a_bad_threshold_is_refused(value):
    with pytest.raises(OptionError, match="settle must be a number of grey levels"):
        Options(settle=value).validated()


@pytest.mark.parametrize("value", ["-0.5", "nan", "300"])
def test_the_cli_refuses_a_bad_threshold_in_one_line(paths, models, value):  # noqa: F811
    result = invoke(*stylize_args(paths, models, "--settle", value))
    assert_one_error_line(result, "settle must be a number of grey levels")
    assert not paths.output.exists()


def test_the_progress_display_says_where_a_scale_settled():
    from rich.console import Console

    from nst_rt.pipeline.display import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(enabled=True, console=Console(file=stream, force_terminal=True, width=160))
    display(Progress(1, 2, 37, 80, 1.0, {}, 40, 0.1, lambda: None, settled=True))
    display(Progress(2, 2, 3, 40, 1.0, {}, 45, 0.2, lambda: None))
    display.close({1: "stopped early"})
    assert "settled at 37" in stream.getvalue()


def test_the_cli_summary_says_where_the_run_settled(paths, models):  # noqa: F811
    result = invoke(*stylize_args(paths, models, "--settle", THRESHOLD, "--print-every", "0", iterations=ITERATIONS))
    assert result.exit_code == 0, result.output
    (line,) = result.stderr.splitlines()
    match = re.fullmatch(rf"wrote .* \(\d+x\d+, (\d+) iterations, .*\); settled after (\d+) of {ITERATIONS} "
                         "iterations", line)
    assert match, line
    assert match.group(1) == match.group(2) and int(match.group(1)) < ITERATIONS
