"""Adam with bias correction and projection onto the box."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._box import _Box
from ._common import (
    _MSG_CALLBACK,
    _MSG_MAXITER,
    _MSG_NONFINITE,
    _MSG_NONFINITE_X0,
    OptimizeResult,
    _callback_stops,
    _Objective,
    _result,
)


def _adam(obj: _Objective, x: np.ndarray, box: _Box | None, opts: dict[str, Any], callback: Any) -> OptimizeResult:
    lr, beta1, beta2, eps, maxiter = opts["lr"], opts["beta1"], opts["beta2"], opts["eps"], opts["maxiter"]

    f, g, finite = obj(x)
    if not finite:
        return _result(obj, x, f, g, 0, 2, _MSG_NONFINITE_X0)
    best_x, best_f, best_g = x.copy(), f, g

    m = np.zeros_like(x)  # first-moment estimate
    v = np.zeros_like(x)  # second-moment estimate
    tmp = np.empty_like(x)
    status, message, nit = 1, _MSG_MAXITER, 0
    for k in range(1, maxiter + 1):
        # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2  (in place)
        m *= beta1
        m += np.multiply(g, 1.0 - beta1, out=tmp)
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp
        # x -= lr * m_hat / (sqrt(v_hat) + eps), with m_hat, v_hat the bias-corrected moments.
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(1.0 - beta2**k)
        tmp += eps
        np.divide(m, tmp, out=tmp)
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

        if _callback_stops(callback, obj, x, f, g, k):
            status, message = 99, _MSG_CALLBACK
            break
    return _result(obj, best_x, best_f, best_g, nit, status, message)
