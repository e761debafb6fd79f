"""The settings of a video run on top of the picture's ``Options``: plain Python, read by the CLI at startup."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from ..errors import OptionError
from ..objective.defaults import check_weight


@dataclass
class VideoOptions:
    """The settings of a video run on top of the picture's :class:`Options`."""

    temporal_weight: float = 100.0  # of the temporal loss, relative to the frame's loss at its start
    frame_iterations: int | None = None  # iterations of every frame after the first; None: half of iterations
    keep_frames: bool = False  # keep OUTPUT.frames/ after the video is written

    def later_iterations(self, iterations: int) -> int:
        return self.frame_iterations if self.frame_iterations is not None else max(1, (iterations + 1) // 2)

    def validated(self) -> VideoOptions:
        check_weight("temporal weight", self.temporal_weight)
        if self.frame_iterations is not None and (
                isinstance(self.frame_iterations, bool) or not isinstance(self.frame_iterations, numbers.Integral)
                or self.frame_iterations < 1):
            raise OptionError(f"frame-iterations must be a whole number >= 1, got {self.frame_iterations!r}")
        return self
