"""Tiny generated video clips for the video tests: a textured picture panning, optionally with a tone."""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def panning_frames(count: int = 4, h: int = 36, w: int = 48, step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """``count`` uint8 frames of a smooth random picture seen through a window moving ``step`` px right."""
    import cv2

    raw = np.random.default_rng(seed).random((h + 8, w + step * count + 8, 3)).astype(np.float32)
    picture = cv2.GaussianBlur(raw, (0, 0), 2.0)
    picture = (picture - picture.min()) / (picture.max() - picture.min())
    return [np.round(picture[4:4 + h, 4 + step * t:4 + step * t + w] * 255).astype(np.uint8) for t in range(count)]


def write_clip(path, frames: list[np.ndarray], rate: Fraction, *, audio_seconds: float = 0.0,
               sample_rate: int = 44100) -> None:
    """Write ``frames`` as H.264 at ``rate``, with an AAC sine tone of ``audio_seconds`` when it is > 0."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        audio = None
        if audio_seconds > 0:
            audio = out.add_stream("aac", rate=sample_rate)
            audio.layout = "mono"
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            t = np.arange(int(sample_rate * audio_seconds)) / sample_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            samples = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
            samples.sample_rate, samples.pts = sample_rate, 0
            out.mux(audio.encode(samples))
            out.mux(audio.encode(None))


def audio_seconds(path) -> float:
    """Duration of the first audio stream, from its packets (0 when there is none)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0.0
        stream = container.streams.audio[0]
        end = 0
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = max(end, packet.pts + (packet.duration or 0))
        return float(end * stream.time_base)
