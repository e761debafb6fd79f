"""The L-BFGS driver (projected when there are bounds)."""

from __future__ import annotations

import math
from typing import Any

from . import _history
from ._box import _Box
from ._common import (
    _read_into,
    pairs_kept,
    _MSG_CALLBACK,
    _MSG_FTOL,
    _MSG_LINESEARCH,
    _MSG_MAXFUN,
    _MSG_MAXITER,
    _MSG_NONFINITE,
    _MSG_NONFINITE_X0,
    _MSG_PGTOL,
    OptimizeResult,
    _callback_stops,
    _check_state,
    _Objective,
    _result,
    _shaped,
)
from ._linesearch import _extend_on_path, _projected_armijo, _strong_wolfe
from ..system.array_module import array_module


def _trial_point(xp, x: Any, t: float, d: Any, box: _Box | None, out: Any) -> Any:
    """``out = P(x + t d)``. Used both to evaluate and to rebuild the accepted point (bit-identical)."""
    xp.multiply(d, t, out=out)
    out += x
    if box is not None:
        box.project(out, out=out)
    return out


def _abs_max(v: Any) -> float:
    """``max |v|`` without an image-sized ``abs(v)``."""
    return max(float(v.max()), -float(v.min()))


def lbfgs(obj: _Objective, x: Any, box: _Box | None, opts: dict[str, Any], callback: Any,
          resume: dict[str, Any] | None = None) -> OptimizeResult:
    maxiter, maxfun, gtol, ftol = opts["maxiter"], opts["maxfun"], opts["gtol"], opts["ftol"]
    n = x.size
    xp = obj.xp = array_module(x)  # every vector below lives where x does; scalars come to the host
    history = _history._History(pairs_kept(opts["maxcor"], maxiter), n, _history.PAIR_DTYPE, xp)
    # The driver's vectors, made once. x_trial holds the line search's points, then the accepted one
    # (swapped with x); between line searches it is free, and the box's tests use it as their scratch.
    d = xp.empty(n)
    x_trial = xp.empty(n)

    def pg_max(x_: Any, g_: Any) -> float:
        return box.projected_gradient_max(x_, g_, x_trial) if box is not None else _abs_max(g_)

    def stop_reason(f_old: float, f: float) -> tuple[int, str] | None:
        """The tests after an iteration, in SciPy's order: (status, message), or None to go on."""
        # With gtol 0 only an exactly zero projected gradient would stop here, and the next direction
        # finds that too (no descent direction: the same message), so the pass over x and g is skipped.
        if gtol > 0 and pg_max(x, g) <= gtol:
            return 0, _MSG_PGTOL
        if (f_old - f) <= ftol * max(abs(f_old), abs(f), 1.0):
            return 0, _MSG_FTOL
        if nit >= maxiter:
            return 1, _MSG_MAXITER
        if maxfun is not None and obj.nfev >= maxfun:
            return 1, _MSG_MAXFUN
        return None

    if resume is None:
        f, g, finite = obj(x)
        if not finite:
            return _result(obj, x, f, g, 0, 2, _MSG_NONFINITE_X0)
        if pg_max(x, g) <= gtol:
            return _result(obj, x, f, g, 0, 0, _MSG_PGTOL)
        nit = 0
    else:  # continue exactly where the saved iteration ended: same arrays, same counters
        state = _check_state(resume, "lbfgs", obj.shape, history.m)
        f, nit, obj.nfev = state["fun"], state["nit"], state["nfev"]
        _read_into(x, state["x"])
        g = _read_into(xp.empty(n), state["jac"])
        history.restore(state)
        f_old = state["fun_old"]
        del state, resume  # the loaded memory can go: the history holds it now
        reason = stop_reason(f_old, f)
        if reason is not None:
            return _result(obj, x, f, g, nit, *reason)

    active = box.active(x, g) if box is not None else None

    while True:
        # ---- search direction -------------------------------------------------
        history.direction(g, active, out=d)
        gtd = float(xp.dot(g, d))
        if not gtd < 0.0:  # not a descent direction (or nan): restart from steepest descent
            history.reset()
            history.direction(g, active, out=d)
        if box is not None:
            box.drop_outward(x, d)
        gtd = float(xp.dot(g, d))
        if not gtd < 0.0:  # projected gradient is zero to rounding: nothing left to do
            return _result(obj, x, f, g, nit, 0, _MSG_PGTOL)

        # Without curvature information d = -g is badly scaled: make the first trial
        # step unit length (SciPy / PyTorch); with history, the quasi-Newton t = 1.
        t0 = min(1.0, 1.0 / float(xp.linalg.norm(d))) if history.count == 0 else 1.0

        # ---- line search ------------------------------------------------------
        budget = opts["maxls"] if maxfun is None else min(opts["maxls"], maxfun - obj.nfev)
        if budget <= 0:
            return _result(obj, x, f, g, nit, 1, _MSG_MAXFUN)
        nonfinite_before = obj.nonfinite

        def phi(t: float) -> tuple[float, Any, float]:
            f_t, g_t, ok = obj(_trial_point(xp, x, t, d, box, x_trial))
            if not ok:
                return math.inf, g_t, math.nan
            return f_t, g_t, float(xp.dot(g_t, d))

        t_break = box.max_step(x, d, x_trial) if box is not None else math.inf
        if t0 <= t_break:
            t, f_t, g_t, evals = _strong_wolfe(
                phi, t0, f, g, gtd, _abs_max(d), max_evals=budget, t_max=t_break,
                xtol=1e-12 * max(1.0, _abs_max(x)),
            )
            if t == t_break and f_t < f and float(xp.dot(g_t, d)) <= gtd:
                # Stopped by the first bound with f still falling at least as steeply as at x
                # (no positive curvature along d, so the pair would be skipped): go on along
                # the projected path instead of taking this short step.
                t, f_t, g_t = _extend_on_path(phi, t, f_t, budget - evals, box.max_step_all(x, d, x_trial), g_t)
        else:
            t, f_t, g_t, _ = _projected_armijo(phi, x, t0, f, g, d, box, x_trial, max_evals=budget)

        if not f_t < f:  # no lower point found
            if maxfun is not None and obj.nfev >= maxfun:
                return _result(obj, x, f, g, nit, 1, _MSG_MAXFUN)
            if history.count > 0:  # like L-BFGS-B: drop the memory and retry with steepest descent
                history.reset()
                continue
            met_nonfinite = obj.nonfinite > nonfinite_before
            return _result(obj, x, f, g, nit, 2, _MSG_NONFINITE if met_nonfinite else _MSG_LINESEARCH)

        # ---- accept the step, update the memory -------------------------------
        x_new = _trial_point(xp, x, t, d, box, x_trial)  # t may be an earlier trial than the last one evaluated
        active = box.active(x_new, g_t) if box is not None else None
        history.update(x_new, x, g_t, g, active)
        x, x_trial = x_new, x  # swap buffers; no allocation
        f_old, f, g = f, f_t, g_t
        nit += 1

        def state(copy: bool = True, x=x, f=f, g=g, f_old=f_old, nit=nit) -> dict[str, Any]:
            return {"method": "lbfgs", "x": _shaped(x, obj.shape, copy), "fun": f, "jac": _shaped(g, obj.shape, copy),
                    "fun_old": f_old, "nit": nit, "nfev": obj.nfev, "maxcor": history.m, **history.state(copy)}

        if _callback_stops(callback, obj, x, f, g, nit, state):
            return _result(obj, x, f, g, nit, 99, _MSG_CALLBACK)

        reason = stop_reason(f_old, f)
        if reason is not None:
            return _result(obj, x, f, g, nit, *reason)
