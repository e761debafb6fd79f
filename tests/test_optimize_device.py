"""The optimiser on a device array library, held on the CPU by a stand-in that refuses numpy (tests/strict_xp.py).

test_optimize.py and test_optimize_resume.py run every case on the stand-in too (a host objective, a device
optimiser). Here the objective runs on the device as well: the run equals the numpy run bit for bit, and what
crosses to the host per iteration is a few dozen numbers, not a vector.
"""

from __future__ import annotations

import numpy as np
import pytest

from nst_rt.optimize import minimize
from nst_rt.optimize._history import _History
from strict_xp import HostConversionError, StrictArray, strict, to_strict

N = 3000  # far more than the numbers an iteration may send to the host
MAXCOR = 5


def quadratic(xp, n=N, seed=0):
    """f(x) = 0.5 sum(w (x - c)^2) + 0.25 sum((x - c)^4), computed with the array module of x."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 20.0, n)
    c = rng.uniform(-1.0, 2.0, n)
    w, c = (xp.asarray(v) for v in (w, c))

    def fg(x):
        r = x - c
        r2 = r * r
        return xp.sum(0.5 * w * r2 + 0.25 * r2 * r2), w * r + r2 * r

    return fg


CASES = [
    ("lbfgs", None, {"maxiter": 25, "maxcor": MAXCOR, "gtol": 0.0, "ftol": 0.0}),
    ("lbfgs", (0.0, 1.0), {"maxiter": 25, "maxcor": MAXCOR, "gtol": 0.0, "ftol": 0.0}),
    ("adam", (0.0, 1.0), {"maxiter": 25, "lr": 0.05}),
]


@pytest.mark.parametrize(("method", "bounds", "options"), CASES)
def test_device_run_equals_host_run_and_sends_only_scalars(method, bounds, options):
    x0 = np.random.default_rng(1).uniform(0.0, 1.0, N)
    host = minimize(quadratic(np), x0, method=method, bounds=bounds, options=options)

    fun, start = quadratic(strict), to_strict(x0)
    seen = []
    strict.crossings = 0
    device = minimize(fun, start, method=method, bounds=bounds, options=options,
                      callback=lambda r: seen.append((type(r.x), type(r.jac))))
    crossed = strict.crossings
    assert isinstance(device.x, StrictArray) and isinstance(device.jac, StrictArray)
    assert set(seen) == {(StrictArray, StrictArray)}  # the callback sees the device arrays
    np.testing.assert_array_equal(strict.asnumpy(device.x), host.x)
    assert device.fun == host.fun and device.nit == host.nit == 25 and device.nfev == host.nfev
    # the L-BFGS recursion sends its 2k dot products and gets 2k coefficients back; the update sends 3k + 2
    assert crossed <= device.nit * 10 * MAXCOR < N


def test_state_comes_to_the_host_only_when_asked_for():
    saved = {}

    def callback(r):
        if r.nit == 6:
            strict.crossings = 0
            saved.update(r.state(copy=False))  # a device state is copied to the host whatever `copy` says
            saved["crossed"] = strict.crossings
            raise StopIteration

    minimize(quadratic(strict), to_strict(np.full(N, 0.5)), options={"maxcor": MAXCOR}, callback=callback)
    assert all(isinstance(v, np.ndarray) for k, v in saved.items() if k in ("x", "jac", "s", "y", "sy"))
    assert saved["s"].shape == (MAXCOR, N) and saved["crossed"] >= 2 * MAXCOR * N + 2 * N
    resumed = minimize(quadratic(strict), to_strict(np.zeros(N)), options={"maxcor": MAXCOR, "maxiter": 8},
                       resume={k: v for k, v in saved.items() if k != "crossed"})
    whole = minimize(quadratic(np), np.full(N, 0.5), options={"maxcor": MAXCOR, "maxiter": 8})
    np.testing.assert_array_equal(strict.asnumpy(resumed.x), whole.x)


def test_two_loop_recursion_on_the_device_equals_the_host_one():
    rng = np.random.default_rng(3)
    n, m = 50, 4
    rings = {np: _History(m, n, xp=np), strict: _History(m, n, xp=strict)}
    x, g = rng.standard_normal(n), rng.standard_normal(n)
    for _ in range(m + 2):  # wraps the ring
        x_new, g_new = x + rng.standard_normal(n), g + rng.uniform(0.5, 3.0, n) * rng.standard_normal(n)
        active = rng.random(n) < 0.1
        for xp, history in rings.items():
            up = (lambda v: v) if xp is np else to_strict
            history.update(up(x_new), up(x), up(g_new), up(g), up(active))
        x, g = x_new, g_new
    active = rng.random(n) < 0.1
    host = rings[np].direction(g, active, out=np.empty(n))
    device = rings[strict].direction(to_strict(g), to_strict(active), out=strict.empty(n))
    np.testing.assert_array_equal(strict.asnumpy(device), host)


def test_the_stand_in_refuses_what_a_device_array_refuses():
    a = to_strict(np.arange(4.0))
    for stray in (lambda: np.asarray(a), lambda: np.dot(a, a), lambda: np.linalg.norm(a),
                  lambda: a + np.ones(4), lambda: strict.copyto(a, np.ones(4))):
        with pytest.raises((HostConversionError, TypeError)):
            stray()
    assert float(strict.dot(a, a)) == 14.0  # explicit scalars cross


@pytest.mark.gpu
@pytest.mark.parametrize(("method", "bounds", "options"), CASES)
def test_cupy_run_follows_the_host_run(method, bounds, options):
    """On CUDA the reductions sum in another order: the same run to rounding, not bit for bit."""
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    x0 = np.random.default_rng(1).uniform(0.0, 1.0, N)
    host = minimize(quadratic(np), x0, method=method, bounds=bounds, options=options)
    device = minimize(quadratic(cupy), cupy.asarray(x0), method=method, bounds=bounds, options=options)
    assert isinstance(device.x, cupy.ndarray) and device.nit == host.nit
    np.testing.assert_allclose(cupy.asnumpy(device.x), host.x, rtol=1e-6, atol=1e-9)
    assert abs(device.fun - host.fun) <= 1e-8 * abs(host.fun)
