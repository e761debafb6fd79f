"""The settle stop: a scale ends once the picture as it would be saved has stopped changing.

After every iteration the iterate becomes the 8-bit picture it would be saved as (clipped to [0, 1],
``round(x * 255)``) and is compared with the last iteration's. The change is the mean absolute difference in
grey levels over every pixel and channel. Once ``WINDOW`` iterations in a row each changed the picture by less
than the threshold (``Options.settle``, grey levels per iteration; 0 turns the stop off), the scale ends and the
next starts from its result; after the last scale the run ends. (With ``--original-colors`` the saved picture is
a function of this one, recoloured after the run.) docs/quality.md measures the thresholds against full runs.

Why the mean absolute change and not the share of pixels that change: near the end of a scale many values sit
at a rounding boundary and flip by one level back and forth, so the share of changed pixels stays well above
zero on a picture nobody could tell from the last one, while a mean in grey levels weighs each change by its
size (a flip of one level counts 1/255 of a jump across the range). Why a window: L-BFGS alternates short and
long steps; one calm iteration says little, ``WINDOW`` in a row say the picture has settled. The last 8-bit
picture is all the watch needs to go on, and a checkpoint holds the iterate it is made from, so a checkpoint
records only the count of calm iterations (``record``) and a resumed scale stops where the uninterrupted one does.
"""

from __future__ import annotations

import math

import numpy as np

from ..io import images, layout
from ..system.array_module import to_host
from .options import SETTLE_WINDOW as WINDOW


def as_saved(x) -> np.ndarray:
    """The (1, 3, H, W) iterate as the 8-bit picture it would be saved as (the bytes of ``images.to_uint8``)."""
    return images.to_uint8(layout.from_nchw(to_host(x)))


class Settle:
    """Watches one scale's iterates; ``observe(x)`` after each iteration is true once the picture has settled.

    ``start`` is the scale's first iterate (or the checkpoint's, when resumed); ``restored`` is ``record()`` as a
    checkpoint kept it. A threshold of 0 watches nothing (no 8-bit copy is made).
    """

    def __init__(self, threshold: float, start, restored=None):
        self.threshold = float(threshold)
        self.previous = as_saved(start) if self.threshold > 0 else None
        self.calm = int(np.asarray(restored.get("calm", 0))) if restored is not None else 0
        self.change = math.nan  # the last iteration's, in grey levels

    def observe(self, x) -> bool:
        if self.previous is None:
            return False
        current = as_saved(x)
        self.change = float(np.mean(np.abs(current.astype(np.int16) - self.previous)))
        self.previous = current
        self.calm = self.calm + 1 if self.change < self.threshold else 0
        return self.settled

    @property
    def settled(self) -> bool:
        return self.previous is not None and self.calm >= WINDOW

    def record(self) -> dict:
        """The watch's state for a checkpoint (the 8-bit picture is made again from the checkpoint's iterate)."""
        return {"calm": np.int64(self.calm)}


def settled_note(iterations_run: int, iterations: int, scale: int, scales: int) -> str:
    """The result's sentence for a scale the stop ended."""
    where = f"scale {scale} " if scales > 1 else ""
    return f"{where}settled after {iterations_run} of {iterations} iterations"
