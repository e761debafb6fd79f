"""What a stylization reports: its progress after every iteration, and its result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..io import images


@dataclass
class Progress:
    """What a progress callback receives after every iteration."""

    scale: int  # 1-based
    scales: int
    iteration: int  # within this scale: 0 for its start image (loss not yet known, nan), then 1, 2, ...
    iterations: int  # this scale's
    loss: float
    terms: dict  # weighted content, style, tv (empty at iteration 0)
    evaluations: int
    elapsed: float  # seconds since the run started
    image: Callable[[], np.ndarray] = field(repr=False)  # the current (H, W, 3) image, as it would be saved
    stages: tuple = ()  # the whole schedule (schedule.Stage per scale), when known
    precision: str = "fp32"  # this scale's arithmetic now: bf16, or fp32 (also after a bf16 scale went on in fp32)
    settled: bool = False  # this iteration ends the scale: its picture has stopped changing (nst_rt.pipeline.settle)


@dataclass
class Result:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1], original colours applied when asked
    loss: float
    terms: dict
    iterations: int  # over all scales
    evaluations: int
    seconds: float
    interrupted: bool = False
    message: str = ""  # why fewer iterations ran than asked ("interrupted", or the optimiser's reason); else ""
    stopped_early: dict = field(default_factory=dict)  # scale (1-based) -> a sentence on why it ran fewer
    fp32_from: dict = field(default_factory=dict)  # scale -> (iteration, why) where a bf16 scale went on in fp32

    def to_pil(self):
        from PIL import Image

        return Image.fromarray(images.to_uint8(self.image))


def stop_reason(result) -> str:
    """The optimiser's reason for ending before its iteration limit, in a user's words."""
    from .. import optimize

    words = {
        optimize.GRADIENT_VANISHED: "the gradient vanished (no pixel can lower the loss further)",
        optimize.LOSS_STALLED: "the loss stopped decreasing",
        optimize.EVALUATION_LIMIT: "the optimiser used up its budget of loss evaluations "
                                   f"({int(result.nfev)}) in its line searches",
        optimize.LINE_SEARCH_FAILED: "the line search found no lower point, so the optimiser cannot make "
                                     "progress from here",
        optimize.NON_FINITE: "the loss or its gradient became nan or infinite",
    }
    return words.get(result.reason, str(result.message))


def early_stop_note(result, iterations: int, scale: int, scales: int, settled: bool) -> str:
    """The result's sentence for a scale that ended before ``iterations``: the settle stop's, or the optimiser's."""
    from .settle import settled_note

    if settled:
        return settled_note(int(result.nit), iterations, scale, scales)
    at = f" at scale {scale}" if scales > 1 else ""
    return f"stopped after {int(result.nit)} of {iterations} iterations{at}: {stop_reason(result)}"
