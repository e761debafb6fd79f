"""The temporal loss of Ruder, Dosovitskiy & Brox ("Artistic style transfer for videos", 2016), in numpy.

  temporal = weight * mean(c * (x - w)^2)

over all 3*H*W pixel values, with x the frame being optimised, w the previous stylized frame warped to it
by optical flow, and c in [0, 1] the per-pixel consistency weight (zero at occlusions and motion
boundaries), the same for the three channels. A mean like every other term, so the weight keeps its meaning
across frame sizes. artistic-videos' ``WeightedContentLoss`` on pixels computes exactly this.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError
from ..objective.whole import check_weight, point_key


def temporal_loss(x: np.ndarray, target: np.ndarray, mask: np.ndarray, weight: float = 1.0,
                  grad_out: np.ndarray | None = None) -> float:
    """weight * mean(mask * (x - target)^2) for (1, 3, H, W) ``x`` and ``target``, (H, W) ``mask``.

    When ``grad_out`` is given, the gradient with respect to ``x`` is added to it.
    """
    diff = np.asarray(x, dtype=np.float64) - target
    weighted = diff * mask  # broadcasts (H, W) over (1, 3, H, W)
    value = weight * float(np.vdot(weighted, diff)) / diff.size
    if grad_out is not None:
        grad_out += (2.0 * weight / diff.size) * weighted
    return value


class TemporalObjective:
    """Wraps an objective ``x -> (loss, gradient)`` and adds the temporal term to its value and gradient.

    ``target`` is the warped previous frame as an (H, W, 3) image in [0, 1], ``mask`` its (H, W) consistency
    weights. ``terms_at`` and ``evaluations`` read like the wrapped objective's, with a ``temporal`` term added.

    The weight is relative: the term is ``weight * L0 * mean(c * (x - w)^2)`` with L0 the wrapped objective's
    value at the first point evaluated (the optimiser's start). The content and style terms' scale depends on
    the network's weights, the style and the image by orders of magnitude (1e8 for ImageNet VGG-16 at the
    default style weight, far less for random weights), so a plain weight that holds the frames together for
    one would do nothing or freeze them for another; relative to L0 it means the same everywhere.
    """

    def __init__(self, objective, target: np.ndarray, mask: np.ndarray, weight: float):
        self.objective = objective
        self.weight = check_weight("temporal weight", weight)
        target = np.asarray(target, dtype=np.float64)
        mask = np.asarray(mask, dtype=np.float64)
        h, w = mask.shape
        if target.shape != (h, w, 3):
            raise OptionError(f"temporal target of shape {target.shape} does not match the mask's {mask.shape}")
        self.target = target.transpose(2, 0, 1)[None]  # (1, 3, H, W), as the optimiser's pixels
        self.mask = mask
        self.scale: float | None = None  # L0, set by the first evaluation
        self._points: dict[float | str, tuple[float, float]] = {}  # total -> (wrapped objective's value, temporal)

    @property
    def evaluations(self) -> int:
        return self.objective.evaluations

    def terms_at(self, value: float) -> dict:
        """The wrapped objective's terms of the evaluated point whose total was ``value``, and its temporal term."""
        try:
            inner, temporal = self._points[point_key(value)]
        except KeyError:
            raise KeyError(f"no evaluated point has the total {value!r}") from None
        return {**self.objective.terms_at(inner), "temporal": temporal}

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Like the wrapped objective's: the gradient goes into ``out`` (float64) when given."""
        if out is None:
            value, grad = self.objective(x)
            grad = np.array(grad, dtype=np.float64)  # never write into the wrapped objective's buffer
        else:
            value, grad = self.objective(x, out=out)
        if self.scale is None:
            self.scale = abs(float(value))
        temporal = temporal_loss(x, self.target, self.mask, self.weight * self.scale, grad)
        total = value + temporal
        self._points[point_key(total)] = (value, temporal)
        return total, grad
