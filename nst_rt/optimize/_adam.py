"""Adam with bias correction and projection onto the box."""

from __future__ import annotations

import math
from typing import Any

from ._box import _Box
from ._common import (
    _read_into,
    _MSG_CALLBACK,
    _MSG_MAXITER,
    _MSG_NONFINITE,
    _MSG_NONFINITE_X0,
    OptimizeResult,
    _callback_stops,
    _check_state,
    _Objective,
    _result,
    _shaped,
)
from ..system.array_module import array_module


def adam(obj: _Objective, x: Any, box: _Box | None, opts: dict[str, Any], callback: Any,
          resume: dict[str, Any] | None = None) -> OptimizeResult:
    lr, beta1, beta2, eps, maxiter = opts["lr"], opts["beta1"], opts["beta2"], opts["eps"], opts["maxiter"]

    xp = obj.xp = array_module(x)  # every vector below lives where x does
    m = xp.zeros_like(x)  # first-moment estimate
    v = xp.zeros_like(x)  # second-moment estimate
    if resume is None:
        f, g, finite = obj(x)
        if not finite:
            return _result(obj, x, f, g, 0, 2, _MSG_NONFINITE_X0)
        best_x, best_f, best_g = x.copy(), f, g
        start = 0
    else:  # continue exactly after the saved step
        state = _check_state(resume, "adam", obj.shape)
        for out, name in ((x, "x"), (m, "m"), (v, "v")):
            _read_into(out, state[name])
        f, start, obj.nfev, best_f = state["fun"], state["nit"], state["nfev"], state["best_fun"]
        g, best_x, best_g = (_read_into(xp.empty_like(x), state[name]) for name in ("jac", "best_x", "best_jac"))

    tmp = xp.empty_like(x)
    status, message, nit = 1, _MSG_MAXITER, start
    for k in range(start + 1, maxiter + 1):
        # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2  (in place)
        m *= beta1
        m += xp.multiply(g, 1.0 - beta1, out=tmp)
        v *= beta2
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp
        # x -= lr * m_hat / (sqrt(v_hat) + eps), with m_hat, v_hat the bias-corrected moments.
        xp.sqrt(v, out=tmp)
        tmp /= math.sqrt(1.0 - beta2**k)
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= lr / (1.0 - beta1**k)
        x -= tmp
        if box is not None:
            box.project(x, out=x)

        f, g, finite = obj(x)
        nit = k
        if not finite:
            status, message = 2, _MSG_NONFINITE
            break
        if f < best_f:
            best_x[...] = x
            best_f, best_g = f, g

        def state(copy: bool = True, f=f, g=g, k=k, best_f=best_f, best_g=best_g) -> dict[str, Any]:
            shape = obj.shape
            return {"method": "adam", "x": _shaped(x, shape, copy), "fun": f, "jac": _shaped(g, shape, copy),
                    "m": _shaped(m, shape, copy), "v": _shaped(v, shape, copy), "nit": k, "nfev": obj.nfev,
                    "best_x": _shaped(best_x, shape, copy), "best_fun": best_f,
                    "best_jac": _shaped(best_g, shape, copy)}

        if _callback_stops(callback, obj, x, f, g, k, state):
            status, message = 99, _MSG_CALLBACK
            break
    return _result(obj, best_x, best_f, best_g, nit, status, message)
