"""Video end to end (nst_rt.video.stylize): a 4-frame clip on tiny frames, temporal start and loss, resume.

The session's random-weights VGG-19 export, 48x36 frames, a few iterations per frame.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("av", reason="the video extra (av) is not installed")
pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")

from PIL import Image  # noqa: E402

import nst_rt.video.stylize as video_module  # noqa: E402
from clips import audio_seconds, panning_frames, write_clip  # noqa: E402
from nst_rt.errors import ImageError, OptionError  # noqa: E402
from nst_rt.pipeline.options import Options  # noqa: E402
from nst_rt.video import codec  # noqa: E402
from nst_rt.video.frames import frames_dir  # noqa: E402
from nst_rt.video.stylize import VideoOptions, stylize_video, working_size  # noqa: E402
from synthetic import noise, save  # noqa: E402

pytestmark = pytest.mark.usefixtures("isolated")
RATE = Fraction(12)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, panning_frames(4), RATE, audio_seconds=4 / RATE)
    style = tmp_path / "style.png"
    save(noise(32, 32), style)
    return path, style


def options(models, **changes) -> Options:
    return Options(size=48, iterations=4, models_dir=models, **changes)


def test_four_frames_with_the_rate_the_audio_and_the_temporal_term(clip, tmp_path, models, monkeypatch):
    path, style = clip
    seen = []  # (frame, what the optimiser's objective reported)
    steps = []
    real_run = video_module.Stylizer.run

    def spy(self, content, styles, progress=None, **kwargs):
        seen.append((self.options.iterations, kwargs.get("start") is not None, kwargs.get("wrap_objective")))
        return real_run(self, content, styles, progress, **kwargs)

    monkeypatch.setattr(video_module.Stylizer, "run", spy)
    result = stylize_video(path, [style], tmp_path / "out.mp4", options(models),
                           VideoOptions(temporal_weight=100.0, frame_iterations=2), progress=steps.append)
    info = codec.probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.rate, info.frames, info.audio) == (48, 36, RATE, 4, "aac")
    assert audio_seconds(tmp_path / "out.mp4") == pytest.approx(audio_seconds(path), abs=0.04)
    assert (result.frames, result.resumed, result.interrupted) == (4, 0, False)
    # First frame: full iterations from --init; later frames: fewer, warped start, the temporal term added.
    calls = [(n, has_start, wrap is not None) for n, has_start, wrap in seen]
    assert calls == [(4, False, False)] + [(2, True, True)] * 3
    temporal_terms = [p.step.terms.get("temporal") for p in steps
                      if p.step is not None and p.step.iteration >= 1 and p.frame > 1]
    assert temporal_terms and all(t is not None and t >= 0 for t in temporal_terms)
    assert [p.frame for p in steps if p.step is None] == [1, 2, 3, 4]  # one "done" per frame, in order
    assert not frames_dir(tmp_path / "out.mp4").exists()  # removed once the video is written


def test_interrupted_run_resumes_and_gives_the_same_frames(clip, tmp_path, models):
    path, style = clip
    video = VideoOptions(temporal_weight=100.0, frame_iterations=2, keep_frames=True)
    whole = stylize_video(path, [style], tmp_path / "whole.mp4", options(models), video)
    assert whole.frames == 4

    def stop_in_frame_3(p):
        if p.frame == 3 and p.step is not None:
            raise KeyboardInterrupt  # what Ctrl-C does inside the optimiser

    stopped = stylize_video(path, [style], tmp_path / "resumed.mp4", options(models), video, progress=stop_in_frame_3)
    assert stopped.interrupted and stopped.frames == 2
    assert not (tmp_path / "resumed.mp4").exists()
    assert sorted(p.name for p in frames_dir(tmp_path / "resumed.mp4").glob("*.png")) == ["000000.png", "000001.png"]

    resumed = stylize_video(path, [style], tmp_path / "resumed.mp4", options(models), video)
    assert (resumed.frames, resumed.resumed, resumed.interrupted) == (4, 2, False)
    for index in range(4):
        name = f"{index:06d}.png"
        a = np.asarray(Image.open(frames_dir(tmp_path / "whole.mp4") / name))
        b = np.asarray(Image.open(frames_dir(tmp_path / "resumed.mp4") / name))
        np.testing.assert_array_equal(a, b)


def test_frames_of_other_settings_are_not_mixed_in(clip, tmp_path, models):
    path, style = clip
    video = VideoOptions(frame_iterations=1, keep_frames=True)

    def stop_in_frame_2(p):
        if p.frame == 2 and p.step is not None:
            raise KeyboardInterrupt

    stylize_video(path, [style], tmp_path / "out.mp4", options(models), video, progress=stop_in_frame_2)
    with pytest.raises(ImageError, match=r"other settings \(options\)"):
        stylize_video(path, [style], tmp_path / "out.mp4", options(models, style_weight=1e3), video)
    result = stylize_video(path, [style], tmp_path / "out.mp4", options(models, style_weight=1e3), video,
                           overwrite=True)
    assert (result.frames, result.resumed) == (4, 0)


def test_working_size_is_even_and_refuses_frames_below_the_network_minimum():
    assert working_size(360, 640, 101) == (56, 100)  # 57x101 rounded down to even
    with pytest.raises(OptionError, match="below the network"):
        working_size(100, 1000, 64)
    with pytest.raises(OptionError, match="frame-iterations"):
        VideoOptions(frame_iterations=0).validated()
    with pytest.raises(OptionError, match="temporal weight"):
        VideoOptions(temporal_weight=-1).validated()
