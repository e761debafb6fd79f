"""The progress display at the widths of common terminals: the loss and its terms are shown whole, never cut
off mid-word (at 80 columns on a line of their own under the bars, at 120 in the row)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console, Group

from nst_rt.cli.progress import ProgressDisplay
from nst_rt.pipeline.schedule import Stage
from nst_rt.pipeline.stylizer import Progress

TERMS = "loss 1.119 (content 0.819 style 3.46 tv 0.133)"


def rendered(width: int) -> list[str]:
    display = ProgressDisplay(enabled=True, console=Console(file=io.StringIO(), width=width, force_terminal=True))
    stages = (Stage(64, 40), Stage(128, 20))
    display(Progress(1, 2, 40, 40, 2.5, {"content": 0.5, "style": 2.0, "tv": 0.1}, 80, 1.0, lambda: None, stages))
    display(Progress(2, 2, 7, 20, 1.119, {"content": 0.819, "style": 3.46, "tv": 0.133}, 95, 2.0, lambda: None,
                     stages))
    screen = Console(file=io.StringIO(), width=width, record=True)
    screen.print(Group(*display._progress.get_renderables()))
    display.close()
    return screen.export_text().rstrip("\n").splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_the_loss_terms_are_shown_whole(width):
    lines = rendered(width)
    assert all(len(line) <= width for line in lines), lines
    assert not any("…" in line for line in lines), lines
    assert any(TERMS in line for line in lines), lines


def test_at_80_columns_the_terms_take_a_line_under_the_bars_and_at_120_they_stay_in_the_row():
    narrow = rendered(80)
    assert len(narrow) == 3 and narrow[0].startswith("scale 1/2") and narrow[1].startswith("scale 2/2")
    assert narrow[2].strip() == TERMS  # the scale being run
    wide = rendered(120)
    assert len(wide) == 2 and wide[1].startswith("scale 2/2") and TERMS in wide[1]


def test_the_python_api_is_silent_by_default_and_draws_the_cli_bar_when_asked(models, capsys):
    import nst_rt
    from synthetic import gradient, noise

    nst_rt.stylize(gradient(), noise(), models_dir=models, size=32, iterations=2, threads=1)
    assert capsys.readouterr().err == ""
    nst_rt.stylize(gradient(), noise(), models_dir=models, size=32, iterations=2, threads=1, scales=1, progress=True)
    err = capsys.readouterr().err
    assert "stylize" in err and "2/2" in err and "loss " in err, err


def screen_of(display, width: int = 120) -> list[str]:
    screen = Console(file=io.StringIO(), width=width, record=True)
    screen.print(Group(*display._progress.get_renderables()))
    return screen.export_text().rstrip("\n").splitlines()


def test_a_bf16_run_shows_each_scale_s_arithmetic_and_an_fp32_run_none():
    stages = (Stage(64, 40), Stage(128, 20))
    terms = {"content": 0.5, "style": 2.0, "tv": 0.1}
    display = ProgressDisplay(enabled=True, console=Console(file=io.StringIO(), width=120, force_terminal=True))
    display(Progress(1, 2, 30, 40, 2.5, terms, 31, 1.0, lambda: None, stages, "bf16"))
    assert screen_of(display)[0].startswith("scale 1/2 bf16 ")
    display(Progress(1, 2, 31, 40, 2.4, terms, 33, 1.1, lambda: None, stages, "fp32"))  # went on in fp32
    display(Progress(2, 2, 3, 20, 2.0, terms, 40, 1.5, lambda: None, stages, "bf16"))
    lines = screen_of(display)
    display.close()
    assert lines[0].startswith("scale 1/2 fp32 ") and lines[1].startswith("scale 2/2 bf16 ")
    display = ProgressDisplay(enabled=True, console=Console(file=io.StringIO(), width=120, force_terminal=True))
    display(Progress(1, 2, 30, 40, 2.5, terms, 31, 1.0, lambda: None, stages))
    assert screen_of(display)[0].startswith("scale 1/2 ") and "fp32" not in screen_of(display)[0]
    display.close()
