"""Progress where stderr is not a terminal (a log file, nohup): a plain line every N iterations, no control codes."""

from __future__ import annotations

import re

import pytest

from cli_helpers import assert_ok, assert_one_error_line, invoke, paths, stylize_args  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("isolated")
LINE = re.compile(r"iteration (\d+)/(\d+), scale (\d+)/(\d+), loss [\d.e+-]+ \(content .*\), \d+\.\d s")


def progress_lines(result) -> list[re.Match]:
    lines = [line for line in result.stderr.splitlines() if line.startswith("iteration ")]
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert "\x1b" not in result.stderr  # no terminal control codes
    return matches


def test_print_every_prints_a_plain_line_every_n_iterations_of_each_scale(paths, models):
    result = invoke(*stylize_args(paths, models, "--print-every", "2", "--scales", "2", size=48, iterations=4))
    assert_ok(result)
    seen = [(int(m[3]), int(m[1])) for m in progress_lines(result)]
    # each scale's iterations that are multiples of 2 (a scale may stop early when it converges)
    assert seen and all(iteration % 2 == 0 for _, iteration in seen) and {s for s, _ in seen} == {1, 2}, seen
    assert seen == sorted(seen)


def test_without_a_terminal_the_lines_come_by_default_and_quiet_or_zero_silences_them(paths, models, monkeypatch):
    monkeypatch.setattr("nst_rt.pipeline.display.PRINT_EVERY", 1)
    assert [int(m[1]) for m in progress_lines(invoke(*stylize_args(paths, models)))] == [1, 2, 3]
    assert progress_lines(invoke(*stylize_args(paths, models, "--print-every", "0", "--overwrite"))) == []
    assert progress_lines(invoke(*stylize_args(paths, models, "--quiet", "--overwrite"))) == []


def test_a_negative_print_every_is_refused(paths, models):
    assert_one_error_line(invoke(*stylize_args(paths, models, "--print-every", "-1")), "--print-every")
    assert not paths.output.exists()
