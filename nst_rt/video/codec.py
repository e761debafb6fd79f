"""Decoding and encoding video with PyAV, which ships its own FFmpeg libraries in its wheels.

PyAV rather than imageio-ffmpeg: it runs FFmpeg in-process, so frames arrive as numpy arrays without a pipe
to a subprocess, the frame rate is an exact fraction (30000/1001 stays 30000/1001), audio packets can be
copied into the output without re-encoding, and failures are typed exceptions instead of text on a
subprocess's stderr.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ImageError, OptionError
from ..io.image_save import check_output_path, save_gif
from . import require

from .containers import CONTAINERS, SUFFIXES  # noqa: E402,F401


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # frames per second
    frames: int | None  # None when the container does not say
    audio: str | None  # the first audio stream's codec, if any


# FFmpeg's demuxers of single pictures (image2 for JPEG and numbered files, NAME_pipe for PNG, WebP, BMP, ...).
STILL_IMAGE_FORMATS = ("image2",)


def _open(path: Path):
    av = require("av")
    if not path.is_file():
        raise ImageError(f"input video '{path}' does not exist or is not a file; check the path")
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise ImageError(f"cannot read video '{path}': {exc}; give a video file FFmpeg can decode") from None
    if not container.streams.video:
        container.close()
        raise ImageError(f"'{path}' has no video stream; give a video file")
    if container.format.name in STILL_IMAGE_FORMATS or container.format.name.endswith("_pipe"):
        container.close()
        raise ImageError(f"'{path}' is a still image, not a video; stylize it with `nst-rt stylize {path} STYLE...`")
    return container


def probe(path) -> VideoInfo:
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise ImageError(f"video '{path}' does not state a frame rate; re-encode it with one (ffmpeg -r)")
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base:
            frames = max(1, round(float(stream.duration * stream.time_base * rate)))
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(rate), frames, audio)


def read_frames(path) -> Iterator[np.ndarray]:
    """The frames of the first video stream, in order, as (H, W, 3) uint8 RGB arrays."""
    av = require("av")
    path = Path(path)
    with _open(path) as container:
        try:
            for frame in container.decode(container.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise ImageError(f"cannot decode video '{path}': {exc}") from None


def even_size(height: int, width: int) -> tuple[int, int]:
    """The largest even (height, width) not above the given one: yuv420p halves both for its colour planes."""
    return max(2, height - height % 2), max(2, width - width % 2)


def check_output(path, *, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output whose suffix no encoder here handles or that cannot be written."""
    path = Path(os.fspath(path))
    if path.suffix.lower() not in CONTAINERS:
        raise OptionError(f"cannot write video '{path}': its suffix must be one of {SUFFIXES}")
    if path.suffix.lower() == ".gif":
        return check_output_path(path, overwrite=overwrite, gif=True)
    # The image checks know nothing of video suffixes: check the directory and overwrite rules on a PNG twin.
    check_output_path(path.with_suffix(".png"), overwrite=True)
    if os.path.lexists(path) and not overwrite:
        raise ImageError(f"output '{path}' already exists; pass --overwrite to replace it or choose another name")
    return path


def write_video(frames: Iterable[np.ndarray], path, rate: Fraction, *, audio_from=None,
                overwrite: bool = False) -> str:
    """Encode (H, W, 3) uint8 frames at ``rate`` frames per second to ``path``, written atomically.

    The first audio stream of ``audio_from`` is copied when the container takes its codec, else re-encoded
    to the container's default. Returns what happened to the audio, in words.
    """
    path = check_output(path, overwrite=overwrite)
    container_format, codec, codec_options = CONTAINERS[path.suffix.lower()]
    if codec is None:
        save_gif([np.asarray(f) for f in frames], path, duration_ms=max(1, round(1000 / rate)), overwrite=overwrite)
        return "no audio (a GIF has none)" if audio_from is not None and probe(audio_from).audio else "no audio"
    av = require("av")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ImageError(f"no frames to write to '{path}'")
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    audio_input = av.open(str(audio_from)) if audio_from is not None else None
    try:
        with av.open(str(partial), "w", format=container_format) as out:
            video = out.add_stream(codec, rate=rate, options=codec_options)
            video.height, video.width = first.shape[:2]
            video.pix_fmt = "yuv420p"
            audio_in = audio_input.streams.audio[0] if audio_input and audio_input.streams.audio else None
            audio_out, audio_note = None, "no audio"
            copy = audio_in is not None and audio_in.codec_context.name in out.supported_codecs
            if copy:
                audio_out = out.add_stream_from_template(audio_in)
                audio_note = f"audio copied ({audio_in.codec_context.name})"
            elif audio_in is not None:
                audio_out = out.add_stream(out.default_audio_codec, rate=_sample_rate(
                    out.default_audio_codec, audio_in.codec_context.sample_rate))
                audio_out.layout = audio_in.codec_context.layout
                audio_note = f"audio re-encoded from {audio_in.codec_context.name} to {out.default_audio_codec}"
            for index, array in enumerate(itertools.chain([first], frames)):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                frame.pts, frame.time_base = index, 1 / rate
                out.mux(video.encode(frame))
            out.mux(video.encode(None))
            if audio_in is not None:
                _move_audio(audio_input, audio_in, out, audio_out, copy)
        os.replace(partial, path)
    except av.FFmpegError as exc:
        raise ImageError(f"cannot write video '{path}': {exc}") from None
    finally:
        if audio_input is not None:
            audio_input.close()
        if partial.exists():
            partial.unlink()
    return audio_note


def _sample_rate(codec_name: str, wanted: int) -> int:
    """``wanted`` if the encoder takes it, else the nearest rate it takes (Opus takes 48 kHz only)."""
    rates = require("av").Codec(codec_name, "w").audio_rates
    return wanted if not rates or wanted in rates else min(rates, key=lambda r: abs(r - wanted))


def _move_audio(container, stream, out, audio_out, copy: bool) -> None:
    if copy:
        for packet in container.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = audio_out
            out.mux(packet)
        return
    for frame in container.decode(stream):
        frame.pts = None  # let the encoder count samples: the input's time base need not be the output's
        out.mux(audio_out.encode(frame))
    out.mux(audio_out.encode(None))
