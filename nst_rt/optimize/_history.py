"""The L-BFGS memory: curvature pairs in ring buffers and the two-loop recursion."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..system.array_module import fill_from, on_host, to_host

_EPS = float(np.finfo(np.float64).eps)

# The pairs are stored in float32 (half the memory: 0.63 GB instead of 1.26 GB at 512x512 with
# 100 pairs); every dot product over them is taken in float64, a block of columns at a time.
PAIR_DTYPE = np.float32
_BLOCK_ELEMENTS = 1 << 18  # float64 elements of the upcast block on the host (2 MiB: stays in cache)
# On a device each block is a few kernel launches: blocks of 128 MiB make them few (a 512 px image is one block).
_DEVICE_BLOCK_ELEMENTS = 1 << 24


class _History:
    """The last ``m`` curvature pairs and the two-loop recursion that applies ``H``.

    ``s`` and ``y`` are preallocated ``(m, n)`` ring buffers; rows ``[0, count)`` hold
    pairs (row ``head`` is written next, the oldest one once the buffer is full).

    The two-loop recursion is run "vector-free" (Chen et al., *Large-scale L-BFGS
    using MapReduce*, NIPS 2014): every vector it touches lies in the span of the
    stored ``s_i``, ``y_i`` and the input ``v``, so it tracks coefficients in that
    basis and takes its dot products from small Gram matrices (``s_i.y_j``,
    ``y_i.y_j``, kept up to date as pairs arrive). The arithmetic is the textbook
    recursion step by step, but the n-dimensional work becomes a few BLAS
    matrix-vector products (six passes over the history per iteration) instead
    of ``4 m`` separate dot/axpy passes, which matters for millions of pixels.

    The pairs are kept in ``dtype`` (float32 by default). A new pair is rounded to
    that precision before anything is computed from it, so the Gram matrices, ``rho``
    and ``gamma`` (all float64) describe exactly the vectors stored, and ``H`` stays
    the positive definite matrix of those vectors.

    The ring lives in the array module ``xp`` of the iterate (on a device with it); the
    ``m x m`` Gram matrices and the recursion's coefficients are host numpy: each
    direction sends the k dot products ``s_i.v``, ``y_i.v`` to the host and the 2k
    coefficients back, instead of the 4k small device operations of the loops.
    """

    def __init__(self, m: int, n: int, dtype: Any = PAIR_DTYPE, xp: ModuleType = np) -> None:
        self.m = m
        self.xp = xp
        self.s = xp.empty((m, n), dtype)  # untouched rows cost no physical memory until written (host)
        self.y = xp.empty((m, n), dtype)
        # The candidate pair (s, y), computed straight into storage precision and copied in if accepted: no
        # float64 copy of it (at 4096x4096 each float64 vector of the image is 400 MB).
        self.new_stored = xp.empty((2, n), dtype)
        # float64 upcast of a block of rows: the history's, or the candidate pair's two
        elements = _BLOCK_ELEMENTS if on_host(xp) else _DEVICE_BLOCK_ELEMENTS
        self.block = xp.empty((max(m, 2), max(1, min(n, elements // max(m, 2)))))
        self.sy = np.empty((m, m))  # sy[i, j] = s_i . y_j
        self.yy = np.empty((m, m))  # yy[i, j] = y_i . y_j
        self.rho = np.empty(m)  # 1 / (s_i . y_i)
        self.head = 0
        self.count = 0
        self.gamma = 1.0  # initial inverse-Hessian scale s.y / y.y of the newest pair

    def reset(self) -> None:
        self.head = 0
        self.count = 0
        self.gamma = 1.0

    def update(self, x_new: Any, x: Any, g_new: Any, g: Any, active: Any | None) -> bool:
        """Store ``s = x_new - x``, ``y = g_new - g`` unless the curvature ``y.s`` is too small.

        Components in ``active`` (variables held on a bound at ``x_new``) are zeroed: the
        pair then describes the curvature of the free variables only, which is all the
        next directions use. (Keeping them lets the gradient of a clamped pixel, which
        may change a lot while the pixel does not move, distort ``gamma`` and the
        model; on bounded Rosenbrock this halves the evaluations.)
        """
        xp = self.xp
        s_new, y_new = self.new_stored  # the differences are taken in float64, then rounded to storage precision
        xp.subtract(x_new, x, out=s_new, casting="same_kind")
        xp.subtract(g_new, g, out=y_new, casting="same_kind")
        if active is not None:
            xp.copyto(s_new, 0.0, where=active)
            xp.copyto(y_new, 0.0, where=active)
        ys, yy = self._rows_dot(self.new_stored, y_new)  # s.y and y.y in one pass
        if not ys > _EPS * yy:
            return False  # skipping keeps H positive definite
        row = self.head
        self.s[row] = self.new_stored[0]
        self.y[row] = self.new_stored[1]
        self.head = (row + 1) % self.m
        self.count = k = min(self.count + 1, self.m)
        # New row and column of the Gram matrices.
        y_dots = self._rows_dot(self.y[:k], self.new_stored)  # y_i.s_new and y_i.y_new: one pass over y
        self.sy[row, :k] = y_dots[:, 0]
        self.yy[row, :k] = self.yy[:k, row] = y_dots[:, 1]
        self.sy[:k, row] = self._rows_dot(self.s[:k], y_new)
        self.sy[row, row] = ys
        self.yy[row, row] = yy
        self.rho[row] = 1.0 / ys
        self.gamma = ys / yy
        return True

    def direction(self, g: Any, active: Any | None, out: Any) -> Any:
        """``out = -H g`` by the two-loop recursion; active components are zeroed in and out."""
        xp = self.xp
        v = xp.negative(g, out=out)
        if active is not None:
            xp.copyto(v, 0.0, where=active)
        k = self.count
        if k == 0:
            v *= self.gamma
            return v
        s, y, sy, yy, rho = self.s[:k], self.y[:k], self.sy[:k, :k], self.yy[:k, :k], self.rho[:k]
        sv = self._rows_dot(s, v)  # s_i . v
        yv = self._rows_dot(y, v)  # y_i . v
        # q = a.s + b.y + c v, as coefficients; it starts as v.
        a = np.zeros(k)
        b = np.zeros(k)
        c = 1.0
        alpha = np.empty(k)
        order = [(self.head - 1 - j) % self.m for j in range(k)]  # newest first
        for i in order:  # first loop (a is still zero): alpha_i = rho_i s_i.q; q -= alpha_i y_i
            alpha[i] = rho[i] * (sy[i] @ b + c * sv[i])
            b[i] -= alpha[i]
        b *= self.gamma  # r = gamma q
        c *= self.gamma
        for i in reversed(order):  # second loop: beta_i = rho_i y_i.r; r += (alpha_i - beta_i) s_i
            beta = rho[i] * (sy[:, i] @ a + yy[i] @ b + c * yv[i])
            a[i] += alpha[i] - beta
        # r = a.s + b.y + c v, back in n dimensions.
        v *= c
        self._add_combination(a, s, v)
        self._add_combination(b, y, v)
        if active is not None:
            xp.copyto(v, 0.0, where=active)
        return v

    def _rows_dot(self, rows: Any, v: Any) -> np.ndarray:
        """``rows @ v.T`` in float64 for stored ``rows`` and a vector ``v`` (k results) or a few stacked ones
        (k x p), of either precision, upcasting one block of columns at a time; the results on the host."""
        xp = self.xp
        k, n = rows.shape
        width = self.block.shape[1]
        out = xp.zeros((k,) + v.shape[:-1])
        for j in range(0, n, width):
            w = min(width, n - j)
            block = self.block[:k, :w]
            xp.copyto(block, rows[:, j:j + w])
            out += block @ v[..., j:j + w].T
        return to_host(out)

    def _add_combination(self, coef: np.ndarray, rows: Any, out: Any) -> None:
        """``out += coef @ rows`` in float64 for stored ``rows`` (``coef`` on the host), one block of columns at
        a time."""
        xp = self.xp
        coef = xp.asarray(coef)
        k, n = rows.shape
        width = self.block.shape[1]
        for j in range(0, n, width):
            w = min(width, n - j)
            block = self.block[:k, :w]
            xp.copyto(block, rows[:, j:j + w])
            out[j:j + w] += coef @ block

    def state(self, copy: bool = True) -> dict[str, Any]:
        """Everything the recursion uses, as plain arrays (copies, or views with ``copy=False``) and numbers."""
        k = self.count
        arrays = {"s": self.s[:k], "y": self.y[:k], "sy": self.sy[:k, :k], "yy": self.yy[:k, :k], "rho": self.rho[:k]}
        # a device ring comes to the host here, and only here (a copy whatever ``copy`` says)
        return {**{name: a.copy() if copy and isinstance(a, np.ndarray) else to_host(a)
                   for name, a in arrays.items()}, "head": self.head, "count": k, "gamma": self.gamma}

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`state` returned (shapes already checked by the caller)."""
        k = self.count = int(state["count"])
        self.head, self.gamma = int(state["head"]), float(state["gamma"])
        for name, ring in (("s", self.s), ("y", self.y)):
            if hasattr(state[name], "read_into") and on_host(self.xp):  # from a file into the ring: no whole copy
                state[name].read_into(ring[:k])
            elif hasattr(state[name], "read_into"):  # into a device ring through one host buffer
                host = np.empty((k, ring.shape[1]), np.dtype(str(ring.dtype)))
                state[name].read_into(host)
                fill_from(ring[:k], host)
            else:
                fill_from(ring[:k], state[name])
        self.sy[:k, :k], self.yy[:k, :k], self.rho[:k] = state["sy"], state["yy"], state["rho"]


