"""Tests of nst_rt.optimize, held against scipy.optimize.minimize(method="L-BFGS-B").

SciPy is a test-only dependency. Every problem is small and seeded, so the file
runs in a few seconds and gives the same numbers every time.
"""

from __future__ import annotations

import numpy as np
import pytest

scipy_optimize = pytest.importorskip("scipy.optimize")

from nst_rt.errors import OptionError  # noqa: E402
from nst_rt.optimize import OptimizeResult, minimize  # noqa: E402
from nst_rt.optimize._history import _History  # noqa: E402
from oracles import rosen  # noqa: E402
from strict_xp import minimize_on_device  # noqa: E402


@pytest.fixture(autouse=True, params=["numpy", "device"])
def namespace(request, monkeypatch):
    """Every test twice: on numpy, and with the optimiser's vectors on a stand-in device that refuses numpy."""
    if request.param == "device":
        monkeypatch.setitem(globals(), "minimize", minimize_on_device(minimize))
    return request.param

# Tight tolerances used on both sides so that both optimisers run to the minimum.
TIGHT = {"gtol": 1e-10, "ftol": 0.0, "maxcor": 10, "maxiter": 5000, "maxfun": 20000}
TIGHT_BOUNDED = {"gtol": 1e-9, "ftol": 1e-15, "maxcor": 10, "maxiter": 5000, "maxfun": 20000}


# --------------------------------------------------------------------------- #
# Problems
# --------------------------------------------------------------------------- #


def make_quadratic(n=100, cond=1e4, seed=0, x_star_range=(-1.0, 2.0)):
    """f(x) = 0.5 (x - x*)' A (x - x*) with A = Q diag(logspace) Q' (not separable)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0.0, np.log10(cond), n)) @ q.T
    a = 0.5 * (a + a.T)
    x_star = rng.uniform(*x_star_range, n)
    # Evaluated in long double: in float64 the value's rounding (about 1e-14 relative, and dependent on the
    # BLAS kernel's summation order) exceeds the ftol of 1e-15 the tight tests resolve, so whether a run ended
    # on ftol or on a line search that found no lower point depended on the CPU. numpy's long double matmul
    # does not go through BLAS, so the value is the same on every CPU.
    a_long, x_star_long = a.astype(np.longdouble), x_star.astype(np.longdouble)

    def fg(x):
        r = np.asarray(x, dtype=np.longdouble) - x_star_long
        ar = a_long @ r
        return float(0.5 * (r @ ar)), ar.astype(np.float64)

    return fg, x_star


class Recorder:
    """Wraps fun(x) -> (f, g); records every point it is called with."""

    def __init__(self, fg):
        self.fg = fg
        self.points = []
        self.dtypes = set()

    def __call__(self, x):
        self.points.append(np.array(x, copy=True))
        self.dtypes.add(x.dtype)
        return self.fg(x)


def scipy_lbfgsb(fg, x0, options, bounds=None):
    sp_bounds = None
    if bounds is not None:
        lo = np.broadcast_to(bounds[0], x0.shape)
        hi = np.broadcast_to(bounds[1], x0.shape)
        sp_bounds = list(zip(lo, hi))
    return scipy_optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=sp_bounds, options=options)


def assert_close_to_scipy(ours, theirs, x_expected=None):
    info = f"ours nfev={ours.nfev} ({ours.message}); scipy nfev={theirs.nfev} ({theirs.message})"
    assert np.max(np.abs(ours.x - theirs.x)) <= 1e-6, info
    assert abs(ours.fun - theirs.fun) <= 1e-6 * max(1.0, abs(theirs.fun)), info
    if x_expected is not None:
        assert np.max(np.abs(ours.x - x_expected)) <= 1e-6, info
    assert ours.nfev <= 2 * theirs.nfev, f"too many evaluations: {info}"


# --------------------------------------------------------------------------- #
# Unconstrained: same minimum as SciPy, comparable evaluation counts
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("n", [2, 100])
def test_rosenbrock_matches_scipy(n):
    x0 = np.array([-1.2, 1.0]) if n == 2 else np.random.default_rng(0).uniform(-0.5, 1.5, n)
    ours = minimize(rosen, x0, options=TIGHT)
    theirs = scipy_lbfgsb(rosen, x0, TIGHT)
    assert ours.success, ours.message
    assert ours.status == 0
    assert_close_to_scipy(ours, theirs, x_expected=np.ones(n))


def test_ill_conditioned_quadratic_matches_scipy():
    fg, x_star = make_quadratic(n=100, cond=1e4)
    x0 = np.zeros(100)
    options = {**TIGHT, "gtol": 1e-8, "ftol": 1e-15}
    ours = minimize(fg, x0, options=options)
    theirs = scipy_lbfgsb(fg, x0, options)
    assert ours.success, ours.message
    assert_close_to_scipy(ours, theirs, x_expected=x_star)


def test_result_keeps_x0_shape_and_float64():
    fg, x_star = make_quadratic(n=12, cond=10.0)
    x0 = np.zeros((3, 4), dtype=np.float32)
    seen = Recorder(lambda x: fg(x.reshape(-1)))
    res = minimize(seen, x0, options={"gtol": 1e-10, "ftol": 0.0})
    assert isinstance(res, OptimizeResult)
    assert res.x.shape == (3, 4) and res.jac.shape == (3, 4)
    assert res.x.dtype == np.float64
    assert seen.dtypes == {np.dtype(np.float64)}
    assert all(p.shape == (3, 4) for p in seen.points)
    np.testing.assert_allclose(res.x.reshape(-1), x_star, atol=1e-8)
    assert res["nfev"] == res.nfev == len(seen.points)


# --------------------------------------------------------------------------- #
# Box bounds
# --------------------------------------------------------------------------- #


def _assert_inside(points, lo, hi):
    pts = np.array(points)
    assert np.all(pts >= np.broadcast_to(lo, pts.shape[1:])), "an iterate left the box (below)"
    assert np.all(pts <= np.broadcast_to(hi, pts.shape[1:])), "an iterate left the box (above)"


def test_bounded_quadratic_matches_scipy():
    fg, x_star = make_quadratic(n=100, cond=1e4, x_star_range=(-1.0, 2.0))
    assert np.mean((x_star < 0) | (x_star > 1)) > 0.3  # the unconstrained minimiser is mostly outside
    x0 = np.full(100, 0.5)
    seen = Recorder(fg)
    ours = minimize(seen, x0, bounds=(0.0, 1.0), options=TIGHT_BOUNDED)
    theirs = scipy_lbfgsb(fg, x0, TIGHT_BOUNDED, bounds=(0.0, 1.0))
    assert ours.success, ours.message
    _assert_inside(seen.points, 0.0, 1.0)
    assert np.any(ours.x == 0.0) and np.any(ours.x == 1.0)  # bounds really are active
    assert_close_to_scipy(ours, theirs)


@pytest.mark.parametrize(
    ("x0", "lo", "hi"),
    [
        (np.array([-1.2, 1.0]), -2.0, np.array([0.5, 2.0])),  # the bound cuts the valley
        (np.full(10, 0.3), 0.0, 0.8),
        (np.random.default_rng(1).uniform(-1.0, 1.0, 30), -0.5, np.r_[np.full(15, 0.7), np.full(15, np.inf)]),
    ],
)
def test_bounded_rosenbrock_matches_scipy(x0, lo, hi):
    seen = Recorder(rosen)
    ours = minimize(seen, x0, bounds=(lo, hi), options=TIGHT_BOUNDED)
    theirs = scipy_lbfgsb(rosen, x0, TIGHT_BOUNDED, bounds=(lo, hi))
    _assert_inside(seen.points, lo, hi)
    assert np.any(ours.x == np.broadcast_to(hi, x0.shape))  # the constraint binds
    assert_close_to_scipy(ours, theirs)


def test_x0_outside_box_is_projected_and_none_means_unbounded():
    fg, _ = make_quadratic(n=6, cond=10.0, x_star_range=(2.0, 3.0))
    seen = Recorder(fg)
    lo = np.array([0.0, 0.0, 0.0, None, None, None], dtype=object)
    res = minimize(seen, np.full(6, 5.0), bounds=(lo, 1.0), options={"gtol": 1e-9})
    assert np.all(seen.points[0] == 1.0)  # x0 = 5 was projected onto the upper bound
    _assert_inside(seen.points, -np.inf, 1.0)
    assert res.success, res.message


def test_bad_bounds_raise_option_error():
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), bounds=(1.0, 0.0))
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), bounds=(np.zeros(3), 1.0))
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), bounds=(np.nan, 1.0))
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), bounds=[(0, 1), (0, 1), (0, 1)])


# --------------------------------------------------------------------------- #
# Precision, callback, limits, options
# --------------------------------------------------------------------------- #


def test_float32_gradient_converges_with_float64_state():
    fg, x_star = make_quadratic(n=50, cond=1e3)
    seen = Recorder(lambda x: (fg(x)[0], fg(x)[1].astype(np.float32)))
    res = minimize(seen, np.zeros(50), options={"gtol": 1e-5})
    assert res.success, res.message
    assert res.x.dtype == np.float64 and res.jac.dtype == np.float64
    assert seen.dtypes == {np.dtype(np.float64)}
    np.testing.assert_allclose(res.x, x_star, atol=1e-4)


def test_the_state_is_float64_but_for_the_pairs_which_are_float32():
    """What docs/how-it-works.md says of the optimiser's precision."""
    fg, _ = make_quadratic(n=20, cond=10.0)
    states = []
    minimize(fg, np.zeros(20), jac=True, options={"maxiter": 3, "gtol": 0.0, "ftol": 0.0},
             callback=lambda r: states.append(r.state()))
    dtypes = {name: np.asarray(value).dtype for name, value in states[-1].items() if name != "method"}
    assert dtypes["s"] == dtypes["y"] == np.float32
    assert {dtypes[name] for name in ("x", "jac", "sy", "yy", "rho", "fun", "gamma")} == {np.dtype(np.float64)}


def test_callback_stop_iteration():
    seen = []

    def callback(intermediate_result):
        assert isinstance(intermediate_result, OptimizeResult)
        seen.append((intermediate_result.nit, intermediate_result.fun, intermediate_result.x.copy()))
        assert intermediate_result.nfev >= intermediate_result.nit + 1
        if intermediate_result.nit == 3:
            raise StopIteration

    res = minimize(rosen, np.array([-1.2, 1.0]), callback=callback)
    assert [nit for nit, _, _ in seen] == [1, 2, 3]
    assert res.status == 99 and not res.success
    assert res.message == "`callback` raised `StopIteration`"
    assert res.nit == 3
    np.testing.assert_array_equal(res.x, seen[-1][2])
    assert res.fun == seen[-1][1]
    assert seen[0][1] > seen[1][1] > seen[2][1]  # L-BFGS decreases f every iteration


def test_callback_other_exceptions_propagate():
    def callback(intermediate_result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        minimize(rosen, np.array([-1.2, 1.0]), callback=callback)


def test_maxiter_and_maxfun_are_respected():
    calls = Recorder(rosen)
    res = minimize(calls, np.array([-1.2, 1.0]), options={"maxiter": 5})
    assert res.status == 1 and not res.success
    assert res.nit == 5 and "ITERATIONS" in res.message
    assert res.nfev == len(calls.points)

    calls = Recorder(rosen)
    res = minimize(calls, np.array([-1.2, 1.0]), options={"maxfun": 10})
    assert res.status == 1 and not res.success
    assert "EVALUATIONS" in res.message
    assert res.nfev == len(calls.points) <= 10


def test_unknown_option_and_bad_values_raise_option_error():
    with pytest.raises(OptionError, match="maxcor") as info:
        minimize(rosen, np.zeros(2), options={"max_iter": 10})
    assert "max_iter" in str(info.value)
    for bad in ({"maxcor": 0}, {"maxiter": -1}, {"gtol": -1.0}, {"maxls": 2.5}, {"ftol": float("nan")}):
        with pytest.raises(OptionError):
            minimize(rosen, np.zeros(2), options=bad)
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), method="newton")
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), method="adam", options={"maxcor": 5})
    with pytest.raises(OptionError):
        minimize(rosen, np.zeros(2), method="adam", options={"beta1": 1.0})
    with pytest.raises(OptionError):
        minimize(rosen, np.array([0.0, np.nan]))


def test_jac_callable():
    res = minimize(scipy_optimize.rosen, np.array([-1.2, 1.0]), jac=scipy_optimize.rosen_der, options=TIGHT)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)


# --------------------------------------------------------------------------- #
# Non-finite values
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["f_inf", "f_nan", "g_nan"])
@pytest.mark.parametrize("bounded", [False, True])
def test_non_finite_region_is_backed_out_of(kind, bounded):
    """A pseudo-Huber bowl (flat far away, so the line search extrapolates hard)
    whose minimum 1.9 lies just before a region x > 2 where fun returns nan/inf."""
    hits = []

    def fg(x):
        r = x - 1.9
        f, g = float(np.sum(np.sqrt(1.0 + r * r))), r / np.sqrt(1.0 + r * r)
        if np.any(x > 2.0):
            hits.append(x.copy())
            if kind == "f_inf":
                f = np.inf
            elif kind == "f_nan":
                f = np.nan
            else:
                g = g * np.nan
        return f, g

    bounds = (-100.0, 10.0) if bounded else None
    res = minimize(fg, np.full(3, -50.0), bounds=bounds, options={"gtol": 1e-8})
    assert hits, "the test problem should make the line search overshoot into the bad region"
    assert res.success, res.message
    assert np.isfinite(res.fun) and np.all(np.isfinite(res.jac))
    np.testing.assert_allclose(res.x, 1.9, atol=1e-6)


def test_non_finite_wall_stops_gracefully():
    """f decreases toward a nan wall at x = 2: no minimum exists; the run must stop cleanly."""

    def fg(x):
        if np.any(x > 2.0):
            return np.nan, np.full_like(x, np.nan)
        return -float(np.sum(x)), -np.ones_like(x)

    res = minimize(fg, np.zeros(4), options={"ftol": 0.0})
    assert res.status == 2 and not res.success
    assert "NON-FINITE" in res.message
    assert np.isfinite(res.fun) and np.all(res.x <= 2.0)
    assert res.fun < -7.99  # it did walk up to the wall


def test_non_finite_at_x0_returns_at_once():
    res = minimize(lambda x: (np.nan, np.zeros_like(x)), np.zeros(3))
    assert res.status == 2 and not res.success
    assert "x0" in res.message and res.nfev == 1 and res.nit == 0


# --------------------------------------------------------------------------- #
# The vector-free two-loop recursion equals the textbook one
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_loop_matches_reference(dtype):
    """The recursion is the textbook one on the pairs as stored (rounded to float32 by default)."""
    rng = np.random.default_rng(3)
    n, m = 40, 5
    a = np.diag(rng.uniform(0.5, 5.0, n))
    hist = _History(m, n, dtype)
    pairs = []
    x, g = rng.standard_normal(n), rng.standard_normal(n)
    for _ in range(m + 3):  # wraps the ring buffer
        x_new = x + rng.standard_normal(n)
        g_new = g + a @ (x_new - x)
        assert hist.update(x_new, x, g_new, g, None)
        pairs.append(((x_new - x).astype(dtype).astype(np.float64), (g_new - g).astype(dtype).astype(np.float64)))
        x, g = x_new, g_new
    pairs = pairs[-m:]

    q = -g.copy()
    alphas = []
    for s, y in reversed(pairs):
        alpha = (s @ q) / (y @ s)
        q -= alpha * y
        alphas.append(alpha)
    s, y = pairs[-1]
    r = q * (s @ y) / (y @ y)
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        beta = (y @ r) / (y @ s)
        r += (alpha - beta) * s

    d = hist.direction(g, None, out=np.empty(n))
    np.testing.assert_allclose(d, r, rtol=1e-10, atol=1e-12)

    active = np.zeros(n, dtype=bool)
    active[:7] = True
    d = hist.direction(g, active, out=np.empty(n))
    assert np.all(d[:7] == 0.0) and g @ d < 0.0


def test_negative_curvature_pair_is_skipped():
    hist = _History(3, 4)
    x, g = np.zeros(4), np.ones(4)
    assert not hist.update(x + 1.0, x, g - 1.0, g, None)  # y.s < 0
    assert hist.count == 0


# --------------------------------------------------------------------------- #
# Adam
# --------------------------------------------------------------------------- #


def test_adam_reaches_quadratic_minimum():
    fg, x_star = make_quadratic(n=20, cond=10.0, x_star_range=(0.0, 1.0))
    nits = []
    res = minimize(fg, np.zeros(20), method="adam", options={"lr": 0.05, "maxiter": 1500},
                   callback=lambda r: nits.append(r.nit))
    assert res.status == 1 and res.nit == 1500 and res.nfev == 1501
    assert nits == list(range(1, 1501))
    np.testing.assert_allclose(res.x, x_star, atol=1e-3)


def test_adam_respects_bounds():
    rng = np.random.default_rng(5)
    x_star = rng.uniform(-1.0, 2.0, 30)
    weights = rng.uniform(1.0, 3.0, 30)
    seen = Recorder(lambda x: (0.5 * float(np.sum(weights * (x - x_star) ** 2)), weights * (x - x_star)))
    res = minimize(seen, np.full(30, 0.5), method="adam", bounds=(0.0, 1.0), options={"lr": 0.05, "maxiter": 800})
    _assert_inside(seen.points, 0.0, 1.0)
    np.testing.assert_allclose(res.x, np.clip(x_star, 0.0, 1.0), atol=1e-3)
    assert res.fun == min(seen.fg(p)[0] for p in seen.points)  # the best point seen is returned


def test_adam_callback_stop_iteration():
    def callback(r):
        if r.nit == 4:
            raise StopIteration

    res = minimize(rosen, np.zeros(2), method="adam", callback=callback)
    assert res.status == 99 and res.nit == 4 and res.nfev == 5
    assert res.message == "`callback` raised `StopIteration`"


def test_adam_stops_on_non_finite_and_returns_best():
    def fg(x):
        if np.any(x > 2.0):
            return np.inf, np.zeros_like(x)
        return float(np.sum((x - 5.0) ** 2)), 2.0 * (x - 5.0)

    res = minimize(fg, np.zeros(2), method="adam", options={"lr": 0.5, "maxiter": 100})
    assert res.status == 2 and not res.success and "NON-FINITE" in res.message
    assert np.isfinite(res.fun) and np.all(res.x <= 2.0)
    assert res.fun == float(np.sum((res.x - 5.0) ** 2))


# --------------------------------------------------------------------------- #
# Storage precision of the L-BFGS pairs; the evaluation budget
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("fg", "x0", "bounds"),
    [
        (rosen, np.random.default_rng(0).uniform(-0.5, 1.5, 100), None),
        (make_quadratic(n=100, cond=1e4)[0], np.zeros(100), None),
        (make_quadratic(n=100, cond=1e4)[0], np.full(100, 0.5), (0.0, 1.0)),
    ],
)
def test_float32_pairs_converge_like_float64_pairs(monkeypatch, fg, x0, bounds):
    """Storing the pairs in float32 leaves the minimum and the evaluation count as with float64."""
    from nst_rt.optimize import _history

    options = {**TIGHT_BOUNDED, "gtol": 1e-8}
    runs = {}
    for dtype in (np.float64, np.float32):
        monkeypatch.setattr(_history, "PAIR_DTYPE", dtype)
        runs[dtype] = minimize(fg, x0, bounds=bounds, options=options)
    wide, narrow = runs[np.float64], runs[np.float32]
    assert wide.success and narrow.success, (wide.message, narrow.message)
    assert np.max(np.abs(narrow.x - wide.x)) <= 1e-6
    assert abs(narrow.fun - wide.fun) <= 1e-9 * max(1.0, abs(wide.fun))
    assert narrow.nfev <= 1.25 * wide.nfev + 5


def test_maxfun_none_runs_the_iterations_asked_for():
    """With no evaluation limit only maxiter (or a true stop) ends the run, however many evaluations it takes."""
    calls = Recorder(rosen)
    res = minimize(calls, np.array([-1.2, 1.0]), options={"maxiter": 30, "maxfun": None, "maxls": 50,
                                                          "gtol": 0.0, "ftol": 0.0})
    assert res.nit == 30 and res.status == 1 and "ITERATIONS" in res.message
    assert res.nfev == len(calls.points) > 30
    limited = minimize(rosen, np.array([-1.2, 1.0]), options={"maxiter": 30, "maxfun": 20, "gtol": 0.0,
                                                              "ftol": 0.0})
    assert limited.nit < 30 and limited.status == 1 and "EVALUATIONS" in limited.message
