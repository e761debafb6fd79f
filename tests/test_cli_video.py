"""``nst-rt video`` end to end: a 4-frame clip of 48x36 px, the stylize options it shares, stop and resume,
one-line errors. In-process with typer's CliRunner, on the session's random-weights VGG-19 export."""

from __future__ import annotations

import inspect
import io
import typing
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("av", reason="the video extra (av) is not installed")
pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")

import nst_rt.video.stylize as video_module  # noqa: E402
from clips import panning_frames, write_clip  # noqa: E402
from nst_rt.cli import commands as cli
from nst_rt.cli import video as cli_video
from nst_rt.cli.common import SHARED  # noqa: E402
from nst_rt.pipeline.stylizer import Progress  # noqa: E402
from nst_rt.video import codec  # noqa: E402
from nst_rt.video.frames import frames_dir  # noqa: E402
from nst_rt.video.stylize import FrameProgress  # noqa: E402
from synthetic import noise, save  # noqa: E402

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("isolated")
RATE = Fraction(10)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, panning_frames(4), RATE, audio_seconds=0.4)
    style = tmp_path / "style.png"
    save(noise(32, 32), style)
    return path, style


def invoke(*args):
    return runner.invoke(cli.app, ["video", *[str(a) for a in args]])


def describe(parameter):
    """A parameter's declaration: type, option names, help and default (typer's Option objects differ per
    evaluation of the annotation, so compare what they say)."""
    kind, option = typing.get_args(parameter.annotation)
    return parameter.name, kind, option.param_decls, option.help, parameter.default


def test_video_takes_every_stylization_option_as_stylize_does():
    stylize = inspect.signature(cli.stylize, eval_str=True).parameters
    video = inspect.signature(cli_video.video).parameters
    shared = [*SHARED, "overwrite", "quiet"]
    assert [describe(video[name]) for name in SHARED] == [describe(stylize[name]) for name in SHARED]
    assert set(shared) <= video.keys() and "save_every" not in video and "gif" not in video
    assert {"temporal_weight", "frame_iterations", "keep_frames"} <= video.keys()


def test_command_writes_the_video_and_passes_the_options_on(clip, tmp_path, models, monkeypatch):
    path, style = clip
    received = {}
    real = video_module.stylize_video

    def spy(*args, **kwargs):
        received["options"], received["video"] = args[3], args[4]
        return real(*args, **kwargs)

    monkeypatch.setattr(video_module, "stylize_video", spy)
    result = invoke(path, style, "-o", tmp_path / "out.mp4", "--models-dir", models, "--size", 48,
                    "--iterations", 3, "--frame-iterations", 2, "--temporal-weight", 50, "--style-weight", 1e4,
                    "--content-layers", "relu3_1,relu4_2", "--optimizer", "adam")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and "4 frames" in result.stderr and "audio copied (aac)" in result.stderr
    info = codec.probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.rate, info.frames, info.audio) == (48, 36, RATE, 4, "aac")
    options, video = received["options"], received["video"]
    assert (options.size, options.iterations, options.style_weight, options.optimizer) == (48, 3, 1e4, "adam")
    assert list(options.content_layers) == ["relu3_1", "relu4_2"]
    assert (video.temporal_weight, video.frame_iterations, video.keep_frames) == (50.0, 2, False)


def test_stopped_command_resumes_from_the_finished_frames(clip, tmp_path, models, monkeypatch):
    path, style = clip
    output = tmp_path / "out.mp4"
    args = (path, style, "-o", output, "--models-dir", models, "--size", 48, "--iterations", 3,
            "--frame-iterations", 2)
    real_run = video_module.Stylizer.run
    runs = []

    def ctrl_c_in_frame_3(self, content, styles, progress=None, **kwargs):
        runs.append(1)

        def on_step(step):
            if len(runs) == 3 and step.iteration == 1:
                raise KeyboardInterrupt  # Ctrl-C while the optimiser works on frame 3
            progress(step)

        return real_run(self, content, styles, on_step, **kwargs)

    monkeypatch.setattr(video_module.Stylizer, "run", ctrl_c_in_frame_3)
    stopped = invoke(*args)
    assert stopped.exit_code == 130, stopped.output
    assert stopped.stderr.strip().splitlines() == [
        f"nst-rt: interrupted in frame 3; 2 finished frames are kept in {frames_dir(output)}: run the same command "
        "again to resume"]
    assert not output.exists()
    kept = {p.name: np.asarray(Image.open(p)) for p in frames_dir(output).glob("*.png")}
    assert sorted(kept) == ["000000.png", "000001.png"]

    monkeypatch.setattr(video_module.Stylizer, "run", real_run)
    resumed = invoke(*args, "--keep-frames")
    assert resumed.exit_code == 0, resumed.output
    assert "4 frames, 2 of them from an earlier run" in resumed.stderr
    for name, pixels in kept.items():  # the earlier frames were used, not redone
        np.testing.assert_array_equal(np.asarray(Image.open(frames_dir(output) / name)), pixels)
    assert codec.probe(output).frames == 4


@pytest.mark.parametrize("make_args, needle", [
    (lambda p, s, t: (p, s, "-o", t / "out.avi"), "suffix must be one of"),
    (lambda p, s, t: (t / "missing.mp4", s, "-o", t / "out.mp4"), "does not exist"),
    (lambda p, s, t: (t / "bad.mp4", s, "-o", t / "out.mp4"), "cannot read video"),
    (lambda p, s, t: (p, s, "-o", t / "out.mp4", "--frame-iterations", 0), "frame-iterations"),
    (lambda p, s, t: (p, s, "-o", t / "out.mp4", "--temporal-weight", -1), "temporal weight"),
    (lambda p, s, t: (p, s, "-o", t / "out.mp4", "--size", 8), "below the network"),
    (lambda p, s, t: (p, s, "-o", t / "out.mp4", "--model", "nonexistent"), "nonexistent"),
    (lambda p, s, t: (s, s, "-o", t / "out.mp4"), "is a still image, not a video; stylize it with `nst-rt stylize "),
])
def test_bad_input_is_one_line_and_writes_nothing(clip, tmp_path, models, make_args, needle):
    path, style = clip
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(*make_args(path, style, tmp_path), "--models-dir", models)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-rt: error: ") and needle in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_existing_output_is_kept_without_overwrite(clip, tmp_path, models):
    path, style = clip
    (tmp_path / "out.mp4").write_bytes(b"keep me")
    result = invoke(path, style, "-o", tmp_path / "out.mp4", "--models-dir", models)
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert (tmp_path / "out.mp4").read_bytes() == b"keep me"


def test_progress_display_draws_frames_and_iterations():
    from rich.console import Console

    from nst_rt.cli.video_progress import VideoProgressDisplay

    stream = io.StringIO()
    display = VideoProgressDisplay(console=Console(file=stream, force_terminal=True, width=120))

    def step(iteration, iterations):
        return Progress(1, 1, iteration, iterations, 1.5, {"content": 1.0, "temporal": 0.5}, iteration, 0.1,
                        lambda: None)

    display(FrameProgress(2, 4, 1, step(0, 6), 0.1))
    display(FrameProgress(2, 4, 1, step(3, 6), 0.2))
    display(FrameProgress(2, 4, 1, None, 0.3))
    display.close()
    text = stream.getvalue()
    assert "frames" in text and "2/4" in text and "frame 2" in text and "temporal 0.5" in text
