"""Optimisers for image pixels: L-BFGS (optionally box-constrained) and Adam.

The interface follows :func:`scipy.optimize.minimize`: ``minimize(fun, x0, ...)``
returns an :class:`OptimizeResult` with ``x, fun, jac, nit, nfev, status,
message, success``; options carry SciPy's names (``maxiter``, ``maxfun``,
``maxcor``, ``ftol``, ``gtol``, ``maxls``). Only numpy (or the device library
holding ``x0``) is used, so the runtime package needs no SciPy. Modules: ``_lbfgs`` (the driver), ``_history`` (the
pairs and the two-loop recursion), ``_box`` (bounds), ``_linesearch``,
``_adam``, ``_common`` (result, messages, objective wrapper); ``nst_rt.system.array_module`` finds numpy or
the device library.

Algorithms
----------
``method="lbfgs"``
    Limited-memory BFGS: the search direction is ``-H g`` where ``H`` is the
    inverse-Hessian estimate given by the two-loop recursion over the last
    ``maxcor`` pairs ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k`` (Nocedal &
    Wright, Algorithm 7.4), scaled by ``gamma = s.y / y.y``. Pairs with
    ``y.s <= eps * y.y`` are skipped so ``H`` stays positive definite; if the
    direction is still not a descent direction the memory is dropped and the
    step is steepest descent. The pairs live in preallocated ``(maxcor, n)``
    float32 ring buffers (half the memory of float64; every dot product over
    them is taken in float64, and a pair is rounded before its curvature is
    measured, so ``H`` is exactly that of the stored vectors) and the recursion runs on small Gram matrices (see
    :class:`_History`), so an iteration costs a few BLAS passes over the
    history and allocates nothing of that size. The step length comes from a
    strong-Wolfe line search (c1=1e-4, c2=0.9) ported from PyTorch's
    ``torch/optim/lbfgs.py``, itself a port of Mark Schmidt's minFunc. While
    there is no curvature information (first iteration, after a reset) the
    first trial step is scaled to at most unit length, as SciPy and PyTorch
    do; otherwise the quasi-Newton step ``t = 1`` is tried first. If the line
    search finds no lower point, the memory is dropped and steepest descent is
    tried once more before giving up (as L-BFGS-B does).

``method="lbfgs"`` with ``bounds``
    A *projected* L-BFGS, not Byrd, Lu, Nocedal & Zhu's L-BFGS-B: there is no
    generalised Cauchy point and no subspace minimisation. Each iteration

    1. fixes the *active* variables: those at a bound whose gradient points
       out of the box (moving along ``-g`` would leave it);
    2. runs the two-loop recursion on the gradient with the active components
       zeroed and zeroes them in the result too (the direction stays a
       descent direction because ``H`` is positive definite); components that
       would push a variable sitting on a bound further out are dropped;
    3. searches along the projected path ``P(x + t d)``. If the first trial
       step stays inside the box, the strong-Wolfe search is used, capped at
       the step where the first variable reaches its bound; otherwise a
       backtracking Armijo search on the projected path is used
       (sufficient decrease measured with ``g . (P(x + t d) - x)``), so many
       variables can reach their bounds in one iteration. When the capped
       Wolfe search ends at that first bound with ``f`` still falling at least
       as steeply as at ``x`` (no positive curvature along ``d``: the pair would
       be skipped), it goes on along the projected path with steps 4x longer
       while ``f`` falls. Without this, a style-transfer objective whose pixels
       press against [0, 1] took short steps, skipped every pair and was left
       doing steepest descent (max-pooling VGG-19, 48 px, 60 iterations: loss
       0.362 in 125 evaluations against 0.119 unbounded; with it 0.123 in 72);
    4. stores the new pair with the components of the (new) active variables
       zeroed, so the memory describes the free variables only.

    Convergence uses SciPy's projected gradient ``x - P(x - g)``. Every point
    handed to ``fun`` lies in the box. It is much simpler than L-BFGS-B, has
    weaker theory (no convergence proof with changing active sets) and can
    need more evaluations when the active set keeps changing; on the bounded
    test problems it used 0.9x to 1.4x L-BFGS-B's evaluations. On the
    style-transfer case above it reaches a far lower loss than SciPy's
    L-BFGS-B (0.360 after 60 iterations), whose steps are held back by the
    bounds in the same way.

``method="adam"``
    Plain Adam (Kingma & Ba 2015) with bias correction, one evaluation per
    iteration, projection onto the box after each step; returns the best
    point evaluated.

Numerics: the iterate, gradients and all scalars are float64 (only the stored
pairs are float32). ``fun`` receives a read-only float64 view of the optimiser's
point in ``x0``'s shape (copy it to keep it) and may return a float32
gradient, upcast on arrival (one copy per evaluation). A ``fun`` with an ``out``
keyword is called as ``fun(x, out=g)``, ``g`` a fresh float64 buffer: writing
the gradient into it and returning ``(f, g)`` saves that copy. The callback's
``jac`` is a read-only view too; its ``x`` a copy.
A non-finite objective or gradient at a trial point counts as ``f = +inf``:
the line search shrinks the step back toward the last good point instead of
accepting it.

Array modules
-------------
The optimiser runs on the array library that holds ``x0``: numpy on the host, CuPy on a CUDA device (any
library whose main namespace mirrors numpy's, found through ``__array_namespace__``). Its vectors (the iterate,
the gradients, the direction, the L-BFGS ring, Adam's moments, array bounds) live there; ``fun`` receives a
point of that library and may return a gradient of it (a numpy gradient is uploaded). What crosses to the host
per evaluation is scalars: the loss, the finiteness test, the dot products of the line search and the stop
tests, and per iteration the two-loop recursion's 2k dot products with its 2k coefficients sent back (the
``m x m`` Gram matrices stay on the host). ``x`` and ``jac`` of the result and of the callback's argument are
arrays of that library; ``state()`` is where a device state is copied to the host (always a copy there).
The same code runs on numpy; ``tests/strict_xp.py``'s stand-in, whose arrays refuse conversion to numpy, holds
it to that on the CPU.

Tolerances
----------
The defaults are SciPy's (``gtol=1e-5``, ``ftol=2.2e-9``, ``maxfun=15000``), so
that a problem moved from :func:`scipy.optimize.minimize` stops where it did
there. They are absolute, and no absolute tolerance suits image losses: their
scale is set by the loss weights, and mean-based style and content losses have
gradients far below 1e-5 per pixel, so with the defaults an NST objective stops
at iteration 0 ("NORM OF PROJECTED GRADIENT <= PGTOL"). For images pass
``gtol=0, ftol=0`` and let ``maxiter`` decide, as the pipeline does; add
``maxfun=None`` to lift the evaluation limit (each line search is still bounded
by ``maxls``).

Why a run stopped
-----------------
``status`` 0 with ``message`` "CONVERGENCE: ..." (a tolerance was met, or the
projected gradient is zero to rounding); 1 with "STOP: ... ITERATIONS" or
"STOP: ... EVALUATIONS" (``maxiter`` / ``maxfun``); 2 with
"ABNORMAL_TERMINATION_IN_LNSRCH" (no lower point along the direction, even
after dropping the memory) or "ABNORMAL: NON-FINITE VALUES"; 99 when the
callback raised ``StopIteration``. ``nit`` below ``maxiter`` always comes with
one of these reasons.

Resuming
--------
Inside ``callback(intermediate_result)``, ``intermediate_result.state()``
returns the optimiser's full state at that iteration boundary as a flat dict
of numpy arrays, numbers and the method name (L-BFGS: ``x``, ``fun``, ``jac``,
``fun_old``, the stored pairs ``s``, ``y`` with their Gram matrices ``sy``,
``yy``, ``rho``, the ring position ``head``, ``count``, ``gamma``, ``maxcor``,
``nit``, ``nfev``; Adam: ``x``, ``fun``, ``jac``, the moments ``m``, ``v``,
``nit``, ``nfev`` and the best point ``best_x``, ``best_fun``, ``best_jac``).
It is built only when called, so a callback that does not ask costs nothing;
``state(copy=False)`` hands out views of the optimiser's own arrays instead of
copies (no second copy of the L-BFGS memory, e.g. to write it straight to a
file), to be read, never modified, before the callback returns.
The dict can be saved with ``np.savez(path, **state)``;
``minimize(fun, x0, ..., resume=dict(np.load(path)))`` with the same objective,
method, bounds and options continues from there, and the result is
bit-identical to that of an uninterrupted run (``x0`` then only gives the
shape). A state that does not fit (other method, size or memory size) raises
:class:`OptionError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import OptionError

if TYPE_CHECKING:
    from ._common import OptimizeResult
# The reasons and the defaults are plain Python, imported by Options at CLI startup; the numpy parts of the
# optimiser are imported when minimize first runs.
from ._reasons import (CALLBACK_STOP, EVALUATION_LIMIT, GRADIENT_VANISHED, ITERATION_LIMIT,  # noqa: F401
                       LINE_SEARCH_FAILED, LOSS_STALLED, NON_FINITE)

__all__ = ["OptimizeResult", "minimize", "METHODS", "DEFAULTS", "pairs_kept"]

from ._defaults import _ADAM_DEFAULTS, _LBFGS_DEFAULTS, DEFAULTS, METHODS, pairs_kept  # noqa: E402,F401

# --------------------------------------------------------------------------- #
# Public entry point
# --------------------------------------------------------------------------- #


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    *,
    jac: bool | Callable[..., Any] = True,
    method: str = "lbfgs",
    bounds: tuple[Any, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    callback: Callable[[OptimizeResult], Any] | None = None,
    resume: Mapping[str, Any] | None = None,
) -> OptimizeResult:
    """Minimise ``fun`` starting from ``x0``.

    Parameters
    ----------
    fun:
        With ``jac=True``, ``fun(x) -> (f, g)``: the objective and its gradient.
        With ``jac`` a callable, ``fun(x) -> f`` and ``jac(x) -> g``.
        ``x`` is a float64 array in ``x0``'s shape (a copy the optimiser does not keep).
    x0:
        Starting point, any shape; converted to float64 (and projected into the box).
    method:
        ``"lbfgs"`` (default) or ``"adam"``.
    bounds:
        ``(lo, hi)``; each a scalar or an array broadcastable to ``x0``.
        ``None`` or ``-inf``/``+inf`` means unbounded on that side.
    options:
        L-BFGS: ``maxiter`` (1000), ``maxfun`` (15000; ``None`` for no limit on
        evaluations), ``maxcor`` (100), ``ftol`` (2.22e-9), ``gtol`` (1e-5),
        ``maxls`` (20), with SciPy's meanings and defaults (see "Tolerances" in the
        package docstring: image objectives want ``gtol=0, ftol=0``).
        Adam: ``lr`` (0.02), ``beta1`` (0.9), ``beta2`` (0.999), ``eps`` (1e-8),
        ``maxiter`` (1000).
    callback:
        ``callback(intermediate_result)`` after every iteration, with an
        :class:`OptimizeResult` holding ``x, fun, jac, nit, nfev``. Raising
        ``StopIteration`` ends the run (status 99); other exceptions propagate.
        ``intermediate_result.state()``, called inside the callback, returns the
        optimiser's full state for ``resume``.
    resume:
        A state from ``intermediate_result.state()`` (or that dict saved with
        ``np.savez`` and loaded back): the run continues from that iteration
        boundary, with the same ``fun``, ``x0`` shape, ``method``, ``bounds`` and
        ``options``, and gives bit-identical results to a run never interrupted.
        ``nit``, ``nfev`` and the limits count from the original start.

    Raises
    ------
    OptionError
        Unknown method or option, option value that cannot work, bad bounds,
        non-finite ``x0``, a gradient whose size does not match ``x0``, or a
        ``resume`` state that does not fit this run.
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise OptionError(f"unknown optimiser method {method!r}; use {' or '.join(map(repr, METHODS))}")
    method = method.lower()
    if callback is not None and not callable(callback):
        raise OptionError("callback must be callable or None")

    import numpy as np

    from . import _adam, _lbfgs
    from ._options import _check_options
    from ._box import _Box
    from ._common import _Objective
    from ..system.array_module import array_module

    xp = array_module(x0)  # numpy, or the device library that holds x0: every vector of the run lives there
    x = xp.array(x0, dtype=xp.float64).reshape(-1)  # our own float64 copy
    shape = tuple(x0.shape) if hasattr(x0, "shape") else np.shape(x0)
    if x.size == 0:
        raise OptionError("x0 is empty; there is nothing to optimise")
    if not bool(xp.isfinite(x).all()):
        raise OptionError("x0 contains nan or inf; start from a finite point")

    box = _Box.from_bounds(bounds, shape, xp)
    if box is not None:
        box.project(x, out=x)
    objective = _Objective(fun, jac, shape)

    if method == "lbfgs":
        opts = _check_options(options, DEFAULTS["lbfgs"], "lbfgs")
        return _lbfgs.lbfgs(objective, x, box, opts, callback, resume)
    opts = _check_options(options, DEFAULTS["adam"], "adam")
    return _adam.adam(objective, x, box, opts, callback, resume)


def __getattr__(name: str):
    if name == "OptimizeResult":  # numpy's: imported on first use
        from ._common import OptimizeResult

        return OptimizeResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
