"""Box bounds lo <= x <= hi on the flattened variables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import OptionError


class _Box:
    """Box bounds ``lo <= x <= hi`` on the flattened variables (scalars stay scalars)."""

    def __init__(self, lo: np.ndarray | float, hi: np.ndarray | float) -> None:
        self.lo = lo
        self.hi = hi

    @classmethod
    def from_bounds(cls, bounds: Any, shape: tuple[int, ...]) -> _Box | None:
        if bounds is None:
            return None
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise OptionError("bounds must be a pair (lo, hi) of scalars or arrays broadcastable to x0")
        lo = _bound_array(bounds[0], -np.inf, shape, "lower")
        hi = _bound_array(bounds[1], np.inf, shape, "upper")
        if np.any(lo > hi):
            raise OptionError("bounds: a lower bound is above its upper bound")
        if not np.isfinite(lo).any() and not np.isfinite(hi).any():
            return None  # unbounded everywhere: plain L-BFGS
        return cls(lo, hi)

    def project(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lo, self.hi, out=out)

    def active(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Variables on a bound whose gradient points out of the box."""
        return ((x <= self.lo) & (g > 0)) | ((x >= self.hi) & (g < 0))

    # The methods below that take `scratch` (a float64 vector of x's size whose contents they overwrite) make
    # no float64 temporaries (one boolean mask at most): the driver lends them a vector it holds anyway and is not
    # using just then.

    def projected_gradient_max(self, x: np.ndarray, g: np.ndarray, scratch: np.ndarray) -> float:
        """``max |x - P(x - g)|``: SciPy's projected gradient norm."""
        pg = np.subtract(x, g, out=scratch)
        self.project(pg, out=pg)
        np.subtract(x, pg, out=pg)
        return float(np.abs(pg, out=pg).max())

    def drop_outward(self, x: np.ndarray, d: np.ndarray) -> None:
        """Zero components of ``d`` that would push a variable sitting on a bound further out."""
        np.copyto(d, 0.0, where=((x <= self.lo) & (d < 0)) | ((x >= self.hi) & (d > 0)))

    def max_step(self, x: np.ndarray, d: np.ndarray, scratch: np.ndarray) -> float:
        """Largest ``t`` with ``x + t d`` inside the box (``inf`` if no bound is reached)."""
        return self._steps_to_bounds(x, d, np.fmin, scratch)

    def max_step_all(self, x: np.ndarray, d: np.ndarray, scratch: np.ndarray) -> float:
        """Smallest ``t`` at which every moving variable of ``x + t d`` has reached its bound (``inf`` if one never does)."""
        return self._steps_to_bounds(x, d, np.fmax, scratch)

    def _steps_to_bounds(self, x: np.ndarray, d: np.ndarray, reduce, scratch: np.ndarray) -> float:
        """``reduce`` (fmin or fmax) over the components of the step at which each reaches the bound ahead."""
        # Per component: the distance to the bound ahead over the speed, (bound - x) / d, which is >= 0 inside
        # the box; its absolute value makes d = -0.0 give +inf, not -inf. 0/0 gives nan, which fmin and fmax
        # skip.
        dist = scratch
        behind = d < 0
        np.subtract(self.hi, x, out=dist)
        np.subtract(self.lo, x, out=dist, where=behind)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(dist, d, out=dist)
        np.abs(dist, out=dist)
        t = float(reduce.reduce(dist))
        return math.inf if math.isnan(t) else t


def _bound_array(value: Any, fill: float, shape: tuple[int, ...], side: str) -> np.ndarray | float:
    """One side of the bounds as a float scalar or a flat float64 array of x0's size."""
    if value is None:
        return float(fill)
    arr = np.asarray(value)
    if arr.dtype == object:  # e.g. [0, None, 1]: None means unbounded on this side
        arr = np.array([fill if v is None else v for v in arr.ravel()], dtype=np.float64).reshape(arr.shape)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{side} bounds must be numbers, None or +-inf") from exc
    if np.isnan(arr).any():
        raise OptionError(f"{side} bounds contain nan; use None or +-inf for 'unbounded'")
    if arr.ndim == 0:
        return float(arr)
    try:
        return np.broadcast_to(arr, shape).reshape(-1).copy()
    except ValueError as exc:
        raise OptionError(f"{side} bounds of shape {arr.shape} do not broadcast to x0's shape {shape}") from exc


