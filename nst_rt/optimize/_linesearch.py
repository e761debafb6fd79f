"""Line searches: strong Wolfe (with cubic interpolation) and backtracking Armijo on a projected path."""

from __future__ import annotations

import math
from collections.abc import Callable

from typing import Any

from ._box import _Box

# Wolfe constants (sufficient decrease, curvature), as in SciPy and PyTorch.
_C1 = 1e-4
_C2 = 0.9


# _cubic_interpolate and _strong_wolfe are ported from PyTorch's torch/optim/lbfgs.py
# (BSD-3-Clause), which ported them from torch7's optim (polyinterp.lua, lswolfe.lua),
# themselves from Mark Schmidt's minFunc. Changes: plain floats and numpy; a
# non-finite trial point (f = +inf) makes the interpolation bisect; `t_max` caps the
# extrapolation (box constraints); the evaluation budget counts function evaluations.


def _cubic_interpolate(
    x1: float, f1: float, g1: float, x2: float, f2: float, g2: float, bounds: tuple[float, float] | None = None
) -> float:
    """Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to ``bounds``."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    midpoint = (xmin_bound + xmax_bound) / 2.0
    if x1 == x2 or not all(math.isfinite(v) for v in (f1, g1, f2, g2)):
        return midpoint  # a non-finite end point: bisect toward the finite one
    # Most common case: cubic interpolation of 2 points with function and derivative
    # values for both (x2 being the farthest point):
    #   d1 = g1 + g2 - 3*(f1-f2)/(x1-x2);  d2 = sqrt(d1^2 - g1*g2);
    #   min_pos = x2 - (x2 - x1)*((g2 + d2 - d1)/(g2 - g1 + 2*d2));
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            num, den, base, span = g2 + d2 - d1, g2 - g1 + 2 * d2, x2, x2 - x1
        else:
            num, den, base, span = g1 + d2 - d1, g1 - g2 + 2 * d2, x1, x1 - x2
        if den == 0 or not math.isfinite(d2):
            return midpoint
        min_pos = base - span * (num / den)
        if not math.isfinite(min_pos):
            return midpoint
        return min(max(min_pos, xmin_bound), xmax_bound)
    return midpoint


def _strong_wolfe(
    phi: Callable[[float], tuple[float, Any, float]],
    t: float,
    f: float,
    g: Any,
    gtd: float,
    d_norm: float,
    *,
    max_evals: int,
    t_max: float = math.inf,
    xtol: float = 1e-12,
    c1: float = _C1,
    c2: float = _C2,
) -> tuple[float, float, Any, int]:
    """Strong-Wolfe line search along ``phi(t) = (f, g, g.d)`` at ``x + t d``.

    Returns ``(t, f_t, g_t, evals)`` of the lowest acceptable point found; ``t == 0``
    (with ``f_t == f``) when no lower point was found. ``phi`` reports a non-finite
    point as ``f = +inf``, so it fails the sufficient-decrease test and gets bracketed.
    """
    t = min(t, t_max)
    f_new, g_new, gtd_new = phi(t)
    evals = 1

    # Bracketing phase: find an interval containing a point satisfying the Wolfe criteria.
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    bracket: list[float] = []
    while evals < max_evals:
        if f_new > f + c1 * t * gtd or (evals > 2 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if t >= t_max:
            # Still descending at the first bound: that step is as far as we may go.
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        # Extrapolate.
        min_step = min(t + 0.01 * (t - t_prev), t_max)
        max_step = min(t * 10, t_max)
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new, gtd_new = phi(t)
        evals += 1

    if not bracket:
        # Out of evaluations while extrapolating: keep the better of the last two points
        # if it decreases f sufficiently (PyTorch falls back to [0, t] here).
        if f_new <= f + c1 * t * gtd and f_new < f_prev:
            return t, f_new, g_new, evals
        return t_prev, f_prev, g_prev, evals

    # Zoom phase: shrink the bracket until a point satisfies the strong Wolfe conditions.
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and evals < max_evals:
        if abs(bracket[1] - bracket[0]) * d_norm < xtol:  # bracket too small to move x
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])

        # If t is too close to an end of the bracket (twice in a row, or outside it),
        # move it 0.1 * (bracket length) away from that end to guarantee progress.
        lo_b, hi_b = min(bracket), max(bracket)
        eps = 0.1 * (hi_b - lo_b)
        if min(hi_b - t, t - lo_b) < eps:
            if insuf_progress or t >= hi_b or t <= lo_b:
                t = hi_b - eps if abs(t - hi_b) < abs(t - lo_b) else lo_b + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new, gtd_new = phi(t)
        evals += 1

        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than the lowest point.
            bracket[high_pos], bracket_f[high_pos], bracket_g[high_pos], bracket_gtd[high_pos] = t, f_new, g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # Wolfe conditions satisfied
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # Old low becomes the new high.
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            # The new point becomes the new low.
            bracket[low_pos], bracket_f[low_pos], bracket_g[low_pos], bracket_gtd[low_pos] = t, f_new, g_new, gtd_new

    return bracket[low_pos], bracket_f[low_pos], bracket_g[low_pos], evals


def _projected_armijo(
    phi: Callable[[float], tuple[float, Any, float]],
    x: Any,
    t: float,
    f: float,
    g: Any,
    d: Any,
    box: _Box,
    x_trial: Any,
    *,
    max_evals: int,
    c1: float = _C1,
) -> tuple[float, float, Any, int]:
    """Backtracking Armijo search along the projected path ``P(x + t d)``.

    Accepts the first ``t`` with ``f(P(x + t d)) <= f + c1 * g.(P(x + t d) - x)``
    (and ``f`` lower). Backtracks with a safeguarded quadratic fit, or halves ``t``
    after a non-finite value. Returns ``(0, f, g, evals)`` if nothing was accepted.
    """
    evals = 0
    while evals < max_evals:
        f_t, g_t, _ = phi(t)  # phi leaves P(x + t d) in x_trial
        evals += 1
        if not math.isfinite(f_t):
            t *= 0.5  # back off toward the last good point (x itself)
            continue
        box.xp.subtract(x_trial, x, out=x_trial)
        slope = float(box.xp.dot(g, x_trial))  # g.(P(x + t d) - x): negative for small t
        if f_t < f and f_t <= f + c1 * slope:
            return t, f_t, g_t, evals
        # Minimiser of the quadratic through phi(0) = f with slope `slope / t`, and phi(t) = f_t,
        # kept within [0.1 t, 0.5 t] so the search neither stalls nor crawls.
        curvature = f_t - f - slope
        t_new = -0.5 * slope * t / curvature if curvature > 0 and slope < 0 else 0.5 * t
        t = min(max(t_new, 0.1 * t), 0.5 * t)
    return 0.0, f, g, evals




def _extend_on_path(
    phi: Callable[[float], tuple[float, Any, float]],
    t: float,
    f_t: float,
    max_evals: int,
    t_last: float,
    g_t: Any,
    growth: float = 4.0,
) -> tuple[float, float, Any]:
    """From an accepted step ``t``, try ``growth`` times longer steps on the projected path while f falls.

    ``phi`` projects, so each longer step puts more variables on their bounds; ``t_last`` (where every
    moving variable has reached its bound) ends the path. Returns the lowest point reached.
    """
    while max_evals > 0 and t < t_last:
        t_next = min(t * growth, t_last)
        f_next, g_next, _ = phi(t_next)
        max_evals -= 1
        if not f_next < f_t:
            break
        t, f_t, g_t = t_next, f_next, g_next
    return t, f_t, g_t
