"""The browser's L-BFGS (nst_rt/web/static/lbfgs.js, run under node) against nst_rt.minimize: the same iterates."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nst_rt.optimize import minimize

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="no node (apt-get install nodejs)")
DRIVER = Path(__file__).parent / "web_lbfgs_driver.mjs"


def rosenbrock(x):
    a, b = x[1:] - x[:-1] ** 2, 1 - x[:-1]
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * a - 2 * b
    g[1:] += 200 * a
    return float(np.sum(100 * a**2 + b**2)), g


def quadratic(A, b):
    return lambda x: (float(0.5 * x @ A @ x - b @ x), A @ x - b)


def python_iterates(fun, x0, bounds, options):
    seen = []
    result = minimize(fun, np.array(x0, float), jac=True, bounds=bounds, options=options,
                      callback=lambda r: seen.append((r.x.copy(), r.fun)))
    return seen, result


def node_iterates(problem):
    out = subprocess.run([NODE, str(DRIVER)], input=json.dumps(problem), capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)


def same_iterates(problem, fun):
    bounds = tuple(problem["bounds"]) if problem["bounds"] else None
    seen, result = python_iterates(fun, problem["x0"], bounds, problem["options"])
    js = node_iterates(problem)
    assert len(js["iterates"]) == len(seen) == result.nit
    for (x, f), step in zip(seen, js["iterates"]):
        np.testing.assert_allclose(step["x"], x, rtol=1e-6, atol=1e-12)
        assert step["fun"] == pytest.approx(f, rel=1e-6, abs=1e-12)
    assert (js["nit"], js["nfev"], js["status"]) == (result.nit, result.nfev, result.status)
    return seen


@pytest.mark.parametrize("x0, bounds", [([-1.2, 1.0, -0.5, 0.8], None), ([-1.2, 1.0, -0.5, 0.8], [-1.0, 0.5])])
def test_rosenbrock_iterates_equal_the_python_optimiser(x0, bounds):
    problem = {"name": "rosenbrock", "x0": x0, "bounds": bounds, "options": {"maxiter": 20, "gtol": 0, "ftol": 0}}
    seen = same_iterates(problem, rosenbrock)
    assert len(seen) >= 15 and seen[-1][1] < rosenbrock(np.array(x0))[0]
    if bounds:  # the bounded path is taken: some iterate holds a variable on a bound
        assert any(np.isin(x, bounds).any() for x, _ in seen)


def test_bounded_quadratic_iterates_equal_the_python_optimiser():
    rng = np.random.default_rng(3)
    n = 100  # ill-conditioned enough that 20 iterations do not reach the minimum's rounding noise
    q = rng.standard_normal((n, n))
    A = q @ q.T / n + np.diag(np.linspace(1e-3, 30, n))
    b = rng.standard_normal(n) * 2
    problem = {"name": "quadratic", "A": A.tolist(), "b": b.tolist(), "x0": rng.uniform(0, 1, n).tolist(),
               "bounds": [0.0, 1.0], "options": {"maxiter": 20, "gtol": 0, "ftol": 0, "maxcor": 5}}
    seen = same_iterates(problem, quadratic(A, b))
    assert len(seen) == 20
    last = seen[-1][0]
    assert ((last == 0) | (last == 1)).any()  # some variables end on a bound
