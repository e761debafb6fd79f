"""``nst-rt video``: stylize a video with temporal consistency (the ``video`` extra).

The command takes every stylization option through ``cli.common.with_stylization_options``, the one place
they are declared, so it cannot drift from ``stylize`` and ``batch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import PlainArguments, app
from .common import fail, notice, notices, say, with_stylization_options
from ..errors import NstError
from ..system.interrupts import stop_signals
from ..pipeline.options import Options
from ..video.containers import SUFFIXES
from ..video.options import VideoOptions

VIDEO_DEFAULTS = VideoOptions()


@with_stylization_options
def video(
    source: Annotated[Path, typer.Argument(help="The input video (any container and codec FFmpeg decodes).",
                                           show_default=False, metavar="INPUT")],
    styles: Annotated[list[Path], typer.Argument(help="One or more style images.", show_default=False,
                                                 metavar="STYLE")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help=f"Where to write the video ({SUFFIXES}); finished frames are kept in "
        "OUTPUT.frames/ until it is written. [default: INPUT_STYLE.mp4 in the current directory]",
        show_default=False)] = None,
    temporal_weight: Annotated[float, typer.Option(
        help="Weight of the temporal loss, relative to the frame's loss at its start: WEIGHT x start loss x "
             "the mean squared difference to the previous stylized frame warped by optical flow, where the "
             "flow is consistent; 0 keeps only the warped start.")]
        = VIDEO_DEFAULTS.temporal_weight,
    frame_iterations: Annotated[Optional[int], typer.Option(
        help="Iterations for every frame after the first, which starts from the previous result "
             "[default: half of --iterations].", show_default=False)] = VIDEO_DEFAULTS.frame_iterations,
    keep_frames: Annotated[bool, typer.Option(help="Keep OUTPUT.frames/ (one PNG per frame) after the video "
                                                   "is written.")] = VIDEO_DEFAULTS.keep_frames,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT and start over if it exists, or if finished frames "
                                                 "of other settings are there; without it nothing is touched.")]
        = False,
    options: Options = None,  # every stylization option, declared once: see with_stylization_options
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or summary.")] = False,
) -> None:
    """Stylize the video INPUT with one or more STYLES, frame by frame, each frame tied to the previous one
    by optical flow; frame rate and audio are kept. Stopped, it resumes from the finished frames when run
    again with the same settings."""
    from ..video.frames import frames_dir
    from ..video.stylize import stylize_video
    from .video_progress import VideoProgressDisplay

    display = VideoProgressDisplay(enabled=False if quiet else None)
    if output is None:
        output = Path(f"{source.stem}_{styles[0].stem}.mp4")
    with stop_signals() as stop, notices(quiet):
        try:
            settings = VideoOptions(temporal_weight=temporal_weight, frame_iterations=frame_iterations,
                                    keep_frames=keep_frames)
            result = stylize_video(source, styles, output, options, settings, overwrite=overwrite,
                                   progress=display)
            display.close()
        except NstError as exc:
            display.close()
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            display.close()
            raise notice(f"{stop.what}; the finished frames are kept in {frames_dir(output)}: run the same "
                         "command again to resume", stop.exit_code) from None
    if result.interrupted:
        raise notice(f"{stop.what} in frame {result.frames + 1}; {result.frames} finished frames are kept in "
                     f"{frames_dir(output)}: run the same command again to resume", stop.exit_code)
    resumed = f", {result.resumed} of them from an earlier run" if result.resumed else ""
    say(f"wrote {output} ({result.size[0]}x{result.size[1]}, {result.frames} frames{resumed}, {result.audio}, "
        f"{result.seconds:.1f} s)", quiet)


app.command("video", cls=PlainArguments)(video)
