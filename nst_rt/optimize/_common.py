"""The result type, stop messages, the objective wrapper and the callback helper shared by the methods."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import OptionError
from ..system.array_module import array_module, fill_from, read_only, to_host

from ._defaults import pairs_kept  # noqa: F401
from ._reasons import (_MSG_CALLBACK, _MSG_FTOL, _MSG_LINESEARCH, _MSG_MAXFUN, _MSG_MAXITER,  # noqa: F401
                       _MSG_NONFINITE, _MSG_NONFINITE_X0, _MSG_PGTOL, REASONS)


class OptimizeResult(dict):
    """Result of :func:`minimize`: a dict whose keys are also attributes (like SciPy's).

    Keys: ``x`` (in ``x0``'s shape, float64), ``fun``, ``jac``, ``nit``,
    ``nfev``, ``status`` (0 converged, 1 iteration/evaluation limit,
    2 line-search failure or non-finite values, 99 callback stop),
    ``message``, ``reason`` (one of ``REASONS``' codes: why it ended, for code to test) and ``success``
    (``status == 0``).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    __setattr__ = dict.__setitem__  # type: ignore[assignment]
    __delattr__ = dict.__delitem__  # type: ignore[assignment]

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(len(k) for k in self) + 1
        lines = []
        for key, value in self.items():
            text = repr(value).replace("\n", "\n" + " " * (width + 2))
            lines.append(f"{key.rjust(width)}: {text}")
        return "\n".join(lines)


class _Objective:
    """Calls the user's function, counts evaluations and hands back a float64 gradient of its own.

    ``fun`` sees a read-only view of the point (no copy per evaluation; copy it to keep it). When ``fun``
    takes an ``out`` keyword it writes its float64 gradient straight into a fresh buffer of the optimiser's
    (no copy); otherwise its gradient is copied, so the optimiser's state never aliases user memory.
    """

    def __init__(self, fun: Callable[..., Any], jac: Any, shape: tuple[int, ...]) -> None:
        if jac is True:
            self._jac = None
        elif callable(jac):
            self._jac = jac
        else:
            raise OptionError("jac must be True (fun returns (f, g)) or a callable returning the gradient")
        self._fun = fun
        self.shape = shape
        self.xp = np  # the iterate's array module, set by the method from x
        self.size = int(np.prod(shape, dtype=np.int64))
        self.nfev = 0
        self.nonfinite = 0  # how many evaluations returned nan/inf
        self._takes_out = self._jac is None and _takes_out(fun)

    def __call__(self, x: Any) -> tuple[float, Any, bool]:
        """Evaluate at flat float64 ``x``; return ``(f, g, finite)`` with a fresh float64 ``g`` in ``x``'s
        array module. Only ``f`` and the finiteness test cross to the host."""
        self.nfev += 1
        xp = self.xp
        xs = read_only(x.reshape(self.shape))  # the optimiser's own vector: fun may read it, not change it
        g = None
        if self._jac is not None:
            f_raw = self._fun(xs)
            g_raw = self._jac(xs)
        elif self._takes_out:
            g = xp.empty(self.shape)
            f_raw, g_raw = self._fun(xs, out=g)
        else:
            f_raw, g_raw = self._fun(xs)
        f = _scalar(f_raw)
        if g is None or g_raw is not g:
            g = xp.array(g_raw, dtype=xp.float64)  # a copy: state never aliases user memory
        if g.size != self.size:
            raise OptionError(f"the gradient has {g.size} elements but x0 has {self.size}; fun must return (f, g)")
        g = g.reshape(-1)
        finite = math.isfinite(f) and bool(xp.isfinite(g).all())
        if not finite:
            self.nonfinite += 1
        return f, g, finite


def _scalar(value: Any) -> float:
    """The objective's value as a Python float (a 0-d or one-element device array crosses to the host here)."""
    if array_module(value) is np:
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    return float(value.reshape(()))


def _takes_out(fun: Callable[..., Any]) -> bool:
    """Whether ``fun`` accepts an ``out`` keyword (for its gradient)."""
    try:
        return "out" in inspect.signature(fun).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False


class IntermediateResult(OptimizeResult):
    """What ``callback`` receives after each iteration: ``x, fun, jac, nit, nfev``. ``x`` is a copy; ``jac`` is
    a read-only view of the optimiser's gradient, valid while the callback runs (copy it to keep it).

    ``state()`` returns the optimiser's full state at this iteration boundary, for
    ``minimize(..., resume=state)``. It copies the whole L-BFGS memory, so it is built
    only when called, and only valid while the callback runs. ``state(copy=False)`` hands
    out views of the optimiser's own arrays instead (no second copy of the memory, e.g. to
    write it straight to a file); they must not be modified or kept past the callback.
    """

    def state(self, copy: bool = True) -> dict[str, Any]:
        return self.__dict__["_state"](copy)


def _callback_stops(callback, obj: _Objective, x: Any, f: float, g: Any, nit: int,
                    state: Callable[[], dict[str, Any]]) -> bool:
    """Call ``callback`` with the current point (x copied, jac a read-only view); True when it raised StopIteration."""
    if callback is None:
        return False
    jac = read_only(g.reshape(obj.shape))  # a view, valid during the callback: the iterate is copied, the gradient not
    info = IntermediateResult(x=x.reshape(obj.shape).copy(), fun=f, jac=jac, nit=nit, nfev=obj.nfev)
    info.__dict__["_state"] = state
    try:
        callback(info)
    except StopIteration:
        return True
    return False


# What each method's state holds besides the scalars: array name -> shape, given x0's shape and
# the L-BFGS memory size m and pair count k.
_STATE_ARRAYS = {
    "lbfgs": lambda shape, m, k: {"x": shape, "jac": shape, "s": (k, _size(shape)), "y": (k, _size(shape)),
                                  "sy": (k, k), "yy": (k, k), "rho": (k,)},
    "adam": lambda shape, m, k: {"x": shape, "jac": shape, "m": shape, "v": shape, "best_x": shape,
                                 "best_jac": shape},
}
_STATE_SCALARS = {
    "lbfgs": {"fun": float, "fun_old": float, "nit": int, "nfev": int, "maxcor": int, "head": int, "count": int,
              "gamma": float},
    "adam": {"fun": float, "nit": int, "nfev": int, "best_fun": float},
}


def _shaped(a: Any, shape: tuple[int, ...], copy: bool) -> np.ndarray:
    """``a`` in ``shape`` on the host: a copy for a state that outlives the callback, else a view (a device
    array is copied to the host either way: this is where a checkpoint's state leaves the device)."""
    if not isinstance(a, np.ndarray):
        return to_host(a.reshape(shape))
    return a.reshape(shape).copy() if copy else a.reshape(shape)


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _read_into(out: Any, arr: Any) -> Any:
    """Fill ``out`` from a saved array, or from one that reads itself from a file (``read_into``: no whole copy
    of it first; into a device array through one host buffer); return ``out``."""
    if hasattr(arr, "read_into"):
        if isinstance(out, np.ndarray):
            arr.read_into(out.reshape(arr.shape))
            return out
        host = np.empty(arr.shape, np.dtype(str(out.dtype)))
        arr.read_into(host)
        arr = host
    fill_from(out, arr.reshape(out.shape) if hasattr(arr, "reshape") else np.asarray(arr).reshape(out.shape))
    return out


def _check_state(state: Any, method: str, shape: tuple[int, ...], m: int = 0) -> dict[str, Any]:
    """Check a saved state (also as loaded back by ``np.load``) against this run; return it as numbers and arrays."""
    if not isinstance(state, Mapping):
        raise OptionError("resume must be the dict returned by intermediate_result.state()")
    saved_method = str(np.asarray(state.get("method", "")))
    if saved_method != method:
        raise OptionError(f"resume: the state is from method {saved_method or 'unknown'!r}, not {method!r}")
    out: dict[str, Any] = {}
    try:
        for name, kind in _STATE_SCALARS[method].items():
            out[name] = kind(np.asarray(state[name]).reshape(()))
        if method == "lbfgs" and out["maxcor"] != m:
            raise OptionError(f"resume: the state holds an L-BFGS memory of {out['maxcor']} pairs, this run uses "
                              f"{m}; resume with the same maxcor and maxiter")
        k = out.get("count", 0)
        for name, want in _STATE_ARRAYS[method](shape, m, k).items():
            arr = state[name]  # read later; a device array stays where it is
            arr = arr if hasattr(arr, "read_into") or hasattr(arr, "__array_namespace__") else np.asarray(arr)
            if arr.shape != tuple(want):
                raise OptionError(f"resume: state array {name!r} has shape {arr.shape}, this run needs {tuple(want)}")
            out[name] = arr
    except KeyError as exc:
        raise OptionError(f"resume: the state has no {exc.args[0]!r}; pass what intermediate_result.state() "
                          "returned") from None
    return out


def _result(obj: _Objective, x: np.ndarray, f: float, g: np.ndarray, nit: int, status: int, message: str) -> OptimizeResult:
    # The method's own x and g: it is done with them, and nothing else holds them (no copy at the end).
    return OptimizeResult(
        x=x.reshape(obj.shape),
        fun=f,
        jac=g.reshape(obj.shape),
        nit=nit,
        nfev=obj.nfev,
        status=status,
        message=message,
        reason=REASONS[message],
        success=status == 0,
    )


