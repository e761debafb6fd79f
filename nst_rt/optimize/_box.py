"""Box bounds lo <= x <= hi on the flattened variables."""

from __future__ import annotations

import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import OptionError
from ..system.array_module import to_host


class _Box:
    """Box bounds ``lo <= x <= hi`` on the flattened variables (scalars stay scalars; arrays live in the
    iterate's array module ``xp``)."""

    def __init__(self, lo: Any, hi: Any, xp: ModuleType = np) -> None:
        self.lo = lo
        self.hi = hi
        self.xp = xp

    @classmethod
    def from_bounds(cls, bounds: Any, shape: tuple[int, ...], xp: ModuleType = np) -> _Box | None:
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
        if xp is not np:  # checked on the host, used where the iterate lives
            lo, hi = (v if isinstance(v, float) else xp.asarray(v) for v in (lo, hi))
        return cls(lo, hi, xp)

    def project(self, x: Any, out: Any) -> Any:
        return self.xp.clip(x, self.lo, self.hi, out=out)

    def active(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Variables on a bound whose gradient points out of the box."""
        return ((x <= self.lo) & (g > 0)) | ((x >= self.hi) & (g < 0))

    # The methods below that take `scratch` (a float64 vector of x's size whose contents they overwrite) make
    # no float64 temporaries (one boolean mask at most): the driver lends them a vector it holds anyway and is not
    # using just then.

    def projected_gradient_max(self, x: np.ndarray, g: np.ndarray, scratch: np.ndarray) -> float:
        """``max |x - P(x - g)|``: SciPy's projected gradient norm."""
        xp = self.xp
        pg = xp.subtract(x, g, out=scratch)
        self.project(pg, out=pg)
        xp.subtract(x, pg, out=pg)
        return float(xp.abs(pg, out=pg).max())

    def drop_outward(self, x: np.ndarray, d: np.ndarray) -> None:
        """Zero components of ``d`` that would push a variable sitting on a bound further out."""
        self.xp.copyto(d, 0.0, where=((x <= self.lo) & (d < 0)) | ((x >= self.hi) & (d > 0)))

    def max_step(self, x: np.ndarray, d: np.ndarray, scratch: np.ndarray) -> float:
        """Largest ``t`` with ``x + t d`` inside the box (``inf`` if no bound is reached)."""
        return self._steps_to_bounds(x, d, self.xp.nanmin, scratch)

    def max_step_all(self, x: np.ndarray, d: np.ndarray, scratch: np.ndarray) -> float:
        """Smallest ``t`` at which every moving variable of ``x + t d`` has reached its bound (``inf`` if one never does)."""
        return self._steps_to_bounds(x, d, self.xp.nanmax, scratch)

    def _steps_to_bounds(self, x: np.ndarray, d: np.ndarray, reduce, scratch: np.ndarray) -> float:
        """``reduce`` (nanmin or nanmax) over the components of the step at which each reaches the bound ahead."""
        # Per component: the distance to the bound ahead over the speed, (bound - x) / d, which is >= 0 inside
        # the box; its absolute value makes d = -0.0 give +inf, not -inf. 0/0 gives nan, which nanmin and
        # nanmax skip.
        xp = self.xp
        dist = scratch
        xp.copyto(dist, self.hi)  # the bound ahead ...
        xp.copyto(dist, self.lo, where=d < 0)
        xp.subtract(dist, x, out=dist)  # ... minus x
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all nan: no variable moves
            xp.divide(dist, d, out=dist)
            xp.abs(dist, out=dist)
            t = float(reduce(dist))
        return math.inf if math.isnan(t) else t


def _bound_array(value: Any, fill: float, shape: tuple[int, ...], side: str) -> np.ndarray | float:
    """One side of the bounds as a float scalar or a flat float64 array of x0's size."""
    if value is None:
        return float(fill)
    arr = to_host(value) if hasattr(value, "__array_namespace__") else np.asarray(value)
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


