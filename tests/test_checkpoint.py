"""Checkpoints in-process: a run stopped and resumed from its checkpoint gives the uninterrupted result bit for bit;
a checkpoint of another run is refused with what differs; the command line never loses a checkpoint's work."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst_rt.io import images
from nst_rt.pipeline.checkpoint import Checkpoint, path_for
from nst_rt.cli import app
from nst_rt.errors import CheckpointError, OptionError
from nst_rt.pipeline.stylizer import Stylizer
from synthetic import gradient, noise, stripes

EVERY_ITERATION = 1e-9  # seconds: a checkpoint at every iteration boundary
runner = CliRunner()


def every_iteration(path, **kwargs) -> Checkpoint:
    return Checkpoint(path, EVERY_ITERATION, write_share=None, **kwargs)


@pytest.fixture(scope="module")
def stylizer(models):
    return Stylizer(models_dir=models, size=32, iterations=12, threads=1)


def stop_at(scale: int, iteration: int):
    """A progress callback that stops the run (like Ctrl-C) once the given iteration has been reported."""

    def progress(p):
        if (p.scale, p.iteration) == (scale, iteration):
            raise KeyboardInterrupt

    return progress


TWO_SCALES = {"scales": 2, "size": 48, "coarse_iterations": 2.0}  # the first scale runs 2x the second's
CASES = {  # options, where the first run is stopped (scale, iteration)
    "lbfgs, stopped mid-scale": ({}, (1, 5)),
    "lbfgs, two scales, stopped in the first": (TWO_SCALES, (1, 7)),
    "lbfgs, two scales, stopped in the second": ({**TWO_SCALES, "history": 4}, (2, 9)),
    "lbfgs, stopped at a scale's last iteration": (TWO_SCALES, (1, 24)),
    "adam, noise start": ({"optimizer": "adam", "init": "noise", "seed": 3}, (1, 6)),
}


@pytest.mark.parametrize("overrides, where", CASES.values(), ids=CASES.keys())
def test_stopped_and_resumed_equals_uninterrupted(stylizer, tmp_path, overrides, where):
    run = stylizer.derive(**overrides)
    content, styles = gradient(), [noise(), stripes()]
    whole = run.run(content, styles)

    path = tmp_path / "out.png.ckpt"
    stopped = run.run(content, styles, stop_at(*where), checkpoint=every_iteration(path))
    assert stopped.interrupted and path.exists()
    seen = []
    resuming = every_iteration(path, resume=True)
    resumed = run.run(content, styles, lambda p: seen.append((p.scale, p.iteration)), checkpoint=resuming)

    assert resuming.saved[0] >= where[0]
    last_of_scale = where == (1, 24)  # scale 1 of 2 runs twice the iterations
    assert seen[0] == ((2, 0) if last_of_scale else (where[0], where[1] + 1))  # it went on from the checkpoint
    assert not resumed.interrupted
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.loss, resumed.iterations, resumed.evaluations, resumed.message) == \
        (whole.loss, whole.iterations, whole.evaluations, whole.message)
    assert resumed.terms == whole.terms


def test_a_checkpoint_holds_the_state_the_fingerprint_and_no_pickles(stylizer, tmp_path):
    path = tmp_path / "out.png.ckpt"
    stylizer.derive(history=5).run(gradient(), [noise()], stop_at(1, 8), checkpoint=every_iteration(path))
    with np.load(path, allow_pickle=False) as saved:  # plain arrays: numpy alone reads them
        arrays = {name: saved[name] for name in saved.files}
    assert int(arrays["scale"]) == 1 and int(arrays["opt_nit"]) == 8 and str(arrays["opt_method"]) == "lbfgs"
    assert arrays["opt_x"].shape == (1, 3, 21, 32) and arrays["opt_s"].shape == (5, 3 * 21 * 32)
    prints = json.loads(str(arrays["fingerprint"]))
    assert prints["--style-weight"] == "10.0" and prints["--history"] == "5"
    assert {"model", "content image", "style image 1"} <= set(prints) and "--threads" not in prints


@pytest.mark.parametrize("change, message", [
    ({"style_weight": 20.0}, "--style-weight 10.0 then, 20.0 now"),
    ({"content": stripes()}, "another content image"),
    ({"styles": [noise(), stripes()]}, "style image 2 now, none then"),
    ({"model": "other weights"}, "another model"),
    ({"history": 7, "seed": 4}, "--seed 0 then, 4 now; --history 25 then, 7 now"),
    ({"scales": 1}, "--scales default then, 1 now"),
])
def test_a_checkpoint_of_another_run_is_refused_with_what_differs(stylizer, tmp_path, change, message):
    path = tmp_path / "out.png.ckpt"
    stylizer.run(gradient(), [noise()], stop_at(1, 3), checkpoint=every_iteration(path))
    before = path.read_bytes()
    change = dict(change)
    content, styles = change.pop("content", gradient()), change.pop("styles", [noise()])
    other = stylizer.derive(**{k: v for k, v in change.items() if k != "model"})
    if "model" in change:
        other.model = dataclasses.replace(other.model, metadata={**other.model.metadata, "weights_sha256": "0" * 64})
    with pytest.raises(CheckpointError, match="is of another run") as caught:
        other.run(content, styles, checkpoint=every_iteration(path, resume=True))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert path.read_bytes() == before  # refused, untouched


def test_an_unreadable_checkpoint_is_refused(stylizer, tmp_path):
    path = tmp_path / "out.png.ckpt"
    path.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        stylizer.run(gradient(), [noise()], checkpoint=Checkpoint(path, resume=True))


class FakeClock:
    def __init__(self):
        self.now, self.write_takes = 0.0, 0.0

    def __call__(self):
        return self.now


def test_saves_are_spaced_so_that_writing_takes_a_bounded_share_of_the_time(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("nst_rt.pipeline.checkpoint.time.monotonic", clock)
    real_savez = np.savez

    def slow_savez(*args, **kwargs):
        clock.now += clock.write_takes
        real_savez(*args, **kwargs)

    monkeypatch.setattr("nst_rt.pipeline.checkpoint.np.savez", slow_savez)
    checkpoint = Checkpoint(tmp_path / "out.png.ckpt", every=10.0, write_share=0.05)
    checkpoint._fingerprint = {}
    checkpoint.enter_scale(1, 0, 0, {})
    step = type("Step", (), {"state": lambda self, copy=True: {"nit": 1, "x": np.zeros(3)}})()
    saved_at = []
    for second in range(200):
        clock.now = float(second)
        clock.write_takes = 2.0 if second >= 50 else 0.0  # from then on each write takes 2 s
        if checkpoint.maybe_save(step):
            saved_at.append(second)
    # every 10 s while writing is free; then 2 s / 0.05 = 40 s from the end of one write to the next: 2 s in 42
    assert saved_at == [10, 20, 30, 40, 50, 92, 134, 176]


def test_checkpoint_every_must_be_a_duration(tmp_path):
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(OptionError, match="--checkpoint-every"):
            Checkpoint(tmp_path / "x.ckpt", bad)


# ----------------------------------------------------------------------------- the command line


def inputs(directory):
    """The content and style files of the command-line tests."""
    content, style = directory / "content.png", directory / "style.png"
    for image, path in ((gradient(), content), (noise(), style)):
        if not path.exists():
            Image.fromarray(images.to_uint8(image)).save(path)
    return content, style


def stylize(directory, models, *extra):
    args = ["stylize", *inputs(directory), "-o", directory / "out.png", "--size", "32", "--iterations", "6",
            "--threads", "1", "--models-dir", models, *extra]
    return runner.invoke(app, [str(a) for a in args])


def test_the_cli_deletes_the_checkpoint_when_the_run_completes(tmp_path, models):
    result = stylize(tmp_path, models, "--checkpoint-every", str(EVERY_ITERATION))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "out.png", "style.png"]


def test_the_cli_never_silently_drops_a_checkpoint(tmp_path, models):
    checkpoint = path_for(tmp_path / "out.png")
    checkpoint.write_bytes(b"the work of an unfinished run")
    refused = stylize(tmp_path, models)
    assert refused.exit_code == 1 and checkpoint.read_bytes() == b"the work of an unfinished run"
    assert refused.stderr.splitlines() == [
        f"nst-rt: error: '{checkpoint}' holds a checkpoint of an unfinished run to this output; pass --resume to "
        "continue it, or --overwrite to start again"]
    assert not (tmp_path / "out.png").exists()

    restarted = stylize(tmp_path, models, "--overwrite")
    assert restarted.exit_code == 0, restarted.output
    assert (tmp_path / "out.png").exists() and not checkpoint.exists()


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path, models):
    result = stylize(tmp_path, models, "--resume")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (f"nst-rt: no checkpoint yet ({path_for(tmp_path / 'out.png')}): the "
                                             "run starts again")
    again = stylize(tmp_path, models, "--resume")  # finished: its output is not replaced without --overwrite
    assert again.exit_code == 1 and len(again.stderr.splitlines()) == 1 and "already exists; pass --overwrite" in \
        again.stderr


def test_resume_after_a_stop_before_the_first_checkpoint_replaces_the_stopped_runs_output(tmp_path, models,
                                                                                           monkeypatch):
    from nst_rt.cli.progress import ProgressDisplay

    def stop_at_iteration_2(self, p):  # Ctrl-C after a few seconds, long before the first checkpoint
        if p.iteration == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ProgressDisplay, "__call__", stop_at_iteration_2)
        first = stylize(tmp_path, models)
    assert first.exit_code == 130, first.output
    assert (tmp_path / "out.png").exists() and not path_for(tmp_path / "out.png").exists()

    again = stylize(tmp_path, models, "--resume")
    assert again.exit_code == 0, again.output
    assert again.stderr.splitlines()[0] == (f"nst-rt: no checkpoint yet ({path_for(tmp_path / 'out.png')}): the run "
                                            f"starts again; it replaces {tmp_path / 'out.png'}, the best image of "
                                            "the stopped run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "out.png", "style.png"]  # no record left
    finished = stylize(tmp_path, models, "--resume")  # a finished run's output is only replaced with --overwrite
    assert finished.exit_code == 1 and "already exists; pass --overwrite" in finished.stderr


def test_resume_does_not_replace_a_file_that_the_stopped_run_did_not_write(tmp_path, models):
    from nst_rt.pipeline import stopped

    output = tmp_path / "out.png"
    output.write_bytes(b"the stopped run's image")
    stopped.record(output)
    output.write_bytes(b"the user's own file, put there since")
    result = stylize(tmp_path, models, "--resume")
    assert result.exit_code == 1 and "already exists; pass --overwrite" in result.stderr
    assert output.read_bytes() == b"the user's own file, put there since"


def test_the_cli_refuses_a_checkpoint_of_other_options_in_one_line(tmp_path, models, stylizer):
    content, style = inputs(tmp_path)
    stylizer.derive(iterations=6).run(content, [style], stop_at(1, 2),
                                      checkpoint=every_iteration(path_for(tmp_path / "out.png")))
    result = stylize(tmp_path, models, "--resume", "--tv-weight", "3")
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-rt: error: checkpoint") and "--tv-weight 10.0 then, 3.0 now" \
        in lines[0], lines
    assert not (tmp_path / "out.png").exists()


def test_the_progress_display_of_a_resumed_run_shows_the_earlier_scales_as_run_before():
    import io

    from rich.console import Console

    from nst_rt.pipeline.stylizer import Progress
    from nst_rt.cli.progress import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(enabled=True, console=Console(file=stream, force_terminal=True, width=160))
    display(Progress(2, 2, 3, 5, 1.0, {}, 0, 0.1, lambda: None))  # the first report comes from scale 2
    display._progress.refresh()
    text = stream.getvalue()
    display.close()
    assert "stopped at" not in text and "before the resume" in text
