"""Decoding and encoding (nst_rt.video.codec): frame count, frame rate and audio survive a round trip."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("av", reason="the video extra (av) is not installed")
pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")

from clips import audio_seconds, panning_frames, write_clip  # noqa: E402
from nst_rt.errors import ImageError, OptionError  # noqa: E402
from nst_rt.video import codec  # noqa: E402

NTSC = Fraction(30000, 1001)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "in.mp4"
    frames = panning_frames(6)
    write_clip(path, frames, NTSC, audio_seconds=6 / NTSC)
    return path, frames


def test_probe_and_read_give_the_clip_back(clip):
    path, frames = clip
    info = codec.probe(path)
    assert (info.width, info.height, info.rate, info.frames, info.audio) == (48, 36, NTSC, 6, "aac")
    decoded = list(codec.read_frames(path))
    assert len(decoded) == 6 and decoded[0].dtype == np.uint8 and decoded[0].shape == (36, 48, 3)
    # Lossy (yuv420p halves the colour resolution), but each frame is nearest to its own source, in order.
    errors = [[np.abs(d.astype(int) - f).mean() for f in frames] for d in decoded]
    assert [int(np.argmin(row)) for row in errors] == list(range(6))


@pytest.mark.parametrize("suffix, audio", [(".mp4", "aac"), (".mkv", "aac"), (".webm", "opus")])
def test_write_keeps_the_frame_rate_and_the_audio(clip, tmp_path, suffix, audio):
    path, frames = clip
    output = tmp_path / f"out{suffix}"
    note = codec.write_video(frames, output, NTSC, audio_from=path)
    info = codec.probe(output)
    assert (info.width, info.height, info.rate, info.audio) == (48, 36, NTSC, audio)
    assert len(list(codec.read_frames(output))) == 6
    assert ("copied" in note) == (audio == "aac") and ("re-encoded" in note) == (audio == "opus")
    # Within one AAC frame (1024 samples, 23 ms) and the container's millisecond time base.
    assert audio_seconds(output) == pytest.approx(audio_seconds(path), abs=0.04)


def test_gif_output_keeps_the_frames(clip, tmp_path):
    from PIL import Image

    path, frames = clip
    codec.write_video(frames, tmp_path / "out.gif", Fraction(10), audio_from=path)
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 6 and gif.info["duration"] == 100


def test_existing_output_and_unknown_suffix_are_refused_before_any_work(clip, tmp_path):
    path, frames = clip
    (tmp_path / "taken.mp4").write_bytes(b"x")
    with pytest.raises(ImageError, match="already exists"):
        codec.write_video(frames, tmp_path / "taken.mp4", NTSC)
    assert (tmp_path / "taken.mp4").read_bytes() == b"x"
    with pytest.raises(OptionError, match="suffix"):
        codec.check_output(tmp_path / "out.avi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "taken.mp4"]  # no partial files


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp"])
def test_a_still_image_is_refused_with_the_command_for_it(tmp_path, suffix):
    from synthetic import gradient, save

    still = save(gradient(40, 48), tmp_path / f"still{suffix}")
    with pytest.raises(ImageError, match=r"is a still image, not a video; stylize it with `nst-rt stylize "):
        codec.probe(still)


def test_unreadable_input_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ImageError, match="cannot read video"):
        codec.probe(bad)
    with pytest.raises(ImageError, match="does not exist"):
        codec.probe(tmp_path / "missing.mp4")
