"""The frame loop: stylize a video frame by frame, each frame tied to the previous one by optical flow.

After Ruder et al. (manuelruder/artistic-videos): the first frame is stylized like a picture, with the full
iteration count. Every later frame starts from the previous stylized frame warped to it by the backward
flow, and its objective gains the temporal loss towards that warped frame, weighted by the forward-backward
consistency mask; it needs fewer iterations. Finished frames go to a :class:`FrameStore`, so a run that is
stopped resumes, and the video is encoded once every frame is done.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import image_load, images
from ..errors import NstError, OptionError
from ..pipeline import masks
from ..model_format import MIN_SIZE
from ..pipeline.options import Options
from ..pipeline.stylizer import Progress, Stylizer
from . import codec, require
from .flow import FlowEstimator, consistency_mask, inside, warp
from ..io.digest import file_sha256
from .frames import FrameStore, frames_dir
from .options import VideoOptions  # noqa: F401 (part of this module's API)
from .temporal import TemporalObjective

# Options that change how fast a run is, not the pixels it makes: a resumed run may change them.
NOT_IN_FINGERPRINT = ("models_dir", "provider", "threads")


@dataclass
class FrameProgress:
    """What a video progress callback receives: after every iteration, and once when a frame is done."""

    frame: int  # 1-based
    frames: int | None  # None when the container does not say how many
    resumed: int  # frames that were already done when this run started
    step: Progress | None  # the current iteration; None when the frame has just been finished
    elapsed: float  # seconds since this run started


@dataclass
class VideoResult:
    output: Path
    frames: int  # frames in the output (or finished so far, when interrupted)
    resumed: int  # frames taken from an earlier run
    size: tuple[int, int]  # (width, height)
    seconds: float
    audio: str = ""
    interrupted: bool = False


def working_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) of the stylized frames: longest side ``size``, both even for the encoder, at least MIN_SIZE."""
    h, w = codec.even_size(*images.longest_side_size(height, width, size))
    if min(h, w) < MIN_SIZE:
        raise OptionError(f"the video's frames become {w}x{h} px at --size {size}, below the network's "
                          f"{MIN_SIZE} px; use a larger --size")
    return h, w


def fingerprint(source: Path, styles: Sequence[Path], options: Options, video: VideoOptions,
                size: tuple[int, int]) -> dict:
    """What identifies the frames of a run: the input, the styles' bytes and every setting that shapes pixels."""
    stat = source.stat()
    settings = {k: v for k, v in dataclasses.asdict(options).items() if k not in NOT_IN_FINGERPRINT}
    settings["model"] = str(settings["model"])
    for name in ("style_masks", "content_mask"):  # by their bytes: editing a mask restarts the frames
        value = settings.pop(name)
        if value is not None:
            settings[name] = [file_sha256(Path(m)) for m in value] if name == "style_masks" else file_sha256(Path(value))
    return {"input": [str(source.resolve()), stat.st_size, stat.st_mtime_ns],
            "styles": [file_sha256(s) for s in styles], "options": settings,
            "temporal_weight": video.temporal_weight, "frame_iterations": video.later_iterations(options.iterations),
            "size": list(size), "version": __version__}


def stylize_video(source, styles: Sequence, output, options: Options | None = None,
                  video: VideoOptions | None = None, *, overwrite: bool = False,
                  progress: Callable[[FrameProgress], None] | None = None) -> VideoResult:
    """Stylize the video ``source`` with ``styles`` (image paths) and write ``output`` (.mp4, .webm, ...).

    Ctrl-C (KeyboardInterrupt) stops after the last finished frame and returns with ``interrupted`` set; the
    same call again resumes from there.
    """
    require("av"), require("cv2")
    options = (options or Options()).validated()
    video = (video or VideoOptions()).validated()
    source, output, styles = Path(source), Path(output), [Path(s) for s in styles]
    if not styles:
        raise OptionError("give at least one style image")
    codec.check_output(output, overwrite=overwrite)
    info = codec.probe(source)
    h, w = working_size(info.height, info.width, options.size)
    style_images = [image_load.load_image(s, role=f"style image {i + 1}") for i, s in enumerate(styles)]
    masks.load(options, len(style_images))  # one mask set for every frame, checked before any frame
    first = Stylizer(options, size=max(h, w))  # a missing model is said before anything is written
    # A later frame starts from the previous result, warped: its large forms are in place, so the automatic
    # schedule runs it at the full size only (coarse scales would blur the start it inherits).
    later = first.derive(iterations=video.later_iterations(options.iterations),
                         scales=1 if options.scales is None else options.scales)
    estimate_flow = FlowEstimator()
    store = FrameStore(frames_dir(output), fingerprint(source, styles, options, video, (h, w)), overwrite=overwrite)
    try:
        return _frame_loop(source, output, info, (h, w), style_images, (first, later), estimate_flow, store, video,
                           overwrite, progress)
    except NstError:
        if store.done() == 0:  # nothing worth keeping for a resume
            store.remove()
        raise


def temporal_term(warped: np.ndarray, mask: np.ndarray, weight: float):
    """The ``wrap_objective`` hook of Stylizer.run that adds the temporal loss towards ``warped``."""

    def wrap(objective, shape):
        target, weights = warped, mask
        if shape != mask.shape:  # a coarse scale of --scales: the target and weights at its size
            target = images.resize_to(warped, shape)
            weights = images.resize_to(np.repeat(mask[..., None], 3, axis=2), shape)[..., 0]
        return TemporalObjective(objective, target, weights, weight)

    return wrap


def _frame_loop(source: Path, output: Path, info: codec.VideoInfo, size: tuple[int, int], style_images: list,
                stylizers: tuple[Stylizer, Stylizer], estimate_flow: FlowEstimator, store: FrameStore,
                video: VideoOptions, overwrite: bool, progress) -> VideoResult:
    first, later = stylizers
    h, w = size
    resumed = store.done()
    started = time.perf_counter()
    previous = previous_styled = None
    count = 0
    for index, pixels in enumerate(codec.read_frames(source)):
        count = index + 1
        content = images.resize_to(pixels.astype(np.float32) / 255.0, (h, w))
        if index < resumed:
            if index == resumed - 1:
                previous_styled = store.load(index)
            previous = content
            continue

        def on_step(step, index=index):
            if progress is not None:
                progress(FrameProgress(index + 1, info.frames, resumed, step, time.perf_counter() - started))

        if previous is None:
            result = first.run(content, style_images, on_step)
        else:
            backward, forward = estimate_flow(content, previous), estimate_flow(previous, content)
            warped = warp(previous_styled, backward)
            mask = consistency_mask(backward, forward)
            # Where the flow leaves the frame there is nothing to carry over: start from the frame itself.
            start = np.where(inside(backward)[..., None], warped, content)
            wrap = temporal_term(warped, mask, video.temporal_weight) if video.temporal_weight > 0 else None
            result = later.run(content, style_images, on_step, start=start, wrap_objective=wrap)
        if result.interrupted:  # an unfinished frame is not kept: the next run redoes it
            return VideoResult(output, index, resumed, (w, h), time.perf_counter() - started, interrupted=True)
        previous, previous_styled = content, store.save(index, result.image)
        if progress is not None:
            progress(FrameProgress(index + 1, info.frames, resumed, None, time.perf_counter() - started))
    if count == 0:
        raise OptionError(f"video '{source}' has no frames")
    audio = codec.write_video(store.frames(count), output, info.rate, audio_from=source, overwrite=overwrite)
    if not video.keep_frames:
        store.remove()
    return VideoResult(output, count, resumed, (w, h), time.perf_counter() - started, audio)
