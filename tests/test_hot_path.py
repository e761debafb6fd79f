"""The per-evaluation hot path: what the optimiser copies and allocates, and the objectives' ``out`` buffer.

The optimiser hands ``fun`` a read-only view of its point (no copy), and a ``fun`` that takes ``out`` writes
its float64 gradient into the optimiser's buffer (no copy). The peak of the memory numpy holds during a
bounded L-BFGS run is counted with tracemalloc (exact bytes, not the machine's speed).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from nst_rt.network.session import Network
from nst_rt.objective.tiled import TiledObjective
from nst_rt.objective.whole import Objective
from nst_rt.optimize import minimize
from nst_rt.optimize._box import _Box
from nst_rt.video.temporal import TemporalObjective

N = 1_000_000  # float64 elements: 8 MB per vector, far above numpy's and Python's own small allocations
OPTIONS = {"maxiter": 5, "maxcor": 3, "gtol": 0.0, "ftol": 0.0, "maxfun": None}


def _problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, N), rng.uniform(-0.2, 1.2, N)  # some targets outside the box: bounds act


def test_fun_gets_a_read_only_view_of_the_point_not_a_copy():
    scale, target = _problem()
    seen = []

    def fun(x):
        seen.append(x.flags.writeable)
        with pytest.raises(ValueError):
            x[0] = 0.0  # the optimiser's own vector: writing into it is refused
        r = x - target
        return 0.5 * float(np.dot(r, scale * r)), scale * r

    result = minimize(fun, np.full(N, 0.5), jac=True, bounds=(0.0, 1.0), options=OPTIONS)
    assert result.nit == 5 and seen and not any(seen)


def test_a_fun_that_takes_out_writes_the_gradient_into_the_optimisers_buffer():
    scale, target = _problem()
    buffers = []

    def fun(x, out=None):
        assert out is not None and out.dtype == np.float64 and out.shape == x.shape
        buffers.append(out)
        r = x - target
        np.multiply(scale, r, out=out)
        return 0.5 * float(np.dot(r, out)), out

    def plain(x):
        r = x - target
        g = scale * r
        buffers.append(g)
        return 0.5 * float(np.dot(r, g)), g

    with_out = minimize(fun, np.full(N, 0.5), jac=True, bounds=(0.0, 1.0), options=OPTIONS)
    assert any(np.shares_memory(with_out.jac, b) for b in buffers)  # handed back without a copy
    buffers.clear()
    copied = minimize(plain, np.full(N, 0.5), jac=True, bounds=(0.0, 1.0), options=OPTIONS)
    assert not any(np.shares_memory(copied.jac, b) for b in buffers)  # fun's own array is never kept
    np.testing.assert_array_equal(with_out.x, copied.x)  # the same run either way


def test_peak_memory_of_a_bounded_lbfgs_run_in_image_sized_vectors():
    scale, target = _problem()

    def fun(x, out=None):
        r = x - target  # the problem's own temporary: 1 vector
        np.multiply(scale, r, out=out)
        return 0.5 * float(np.dot(r, out)), out

    x0 = np.full(N, 0.5)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = minimize(fun, x0, jac=True, bounds=(0.0, 1.0), options=OPTIONS, callback=lambda state: None)
        peak = (tracemalloc.get_traced_memory()[1] - before) / (8 * N)
    finally:
        tracemalloc.stop()
    assert result.nit == 5
    # At the peak (inside fun, during a line search): x, x_trial, d (3), the driver's gradient and the line
    # search's two (3), the pairs: 3 + 3 float32 rows and the candidate pair (4), the problem's temporary (1),
    # the history's fixed block of 2 MB (0.26) and a boolean mask (0.13): 11.4. Before the driver had its
    # scratch, fun got a copy of x per evaluation and the peak was 12.5.
    assert peak < 11.6, f"peak {peak:.2f} image-sized vectors"


def test_box_steps_to_the_bounds_match_the_direct_formula():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, 1000)
    x[:10] = 0.0
    x[10:20] = 1.0
    d = rng.normal(size=1000)
    d[5] = -0.0
    d[15] = 0.0
    box = _Box(0.0, 1.0)
    scratch = np.empty_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.abs(np.where(d < 0, 0.0, 1.0) - x) / np.abs(d)
    assert box.max_step(x, d, scratch) == np.nanmin(steps)
    assert box.max_step_all(x, d, scratch) == np.nanmax(steps)


@pytest.fixture(scope="module")
def network(vgg19):
    return Network(vgg19, "cpu")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    content = rng.random((48, 64, 3), dtype=np.float32)
    style = rng.random((40, 40, 3), dtype=np.float32)
    return content, style, rng.random((1, 3, 48, 64))


@pytest.mark.parametrize("kind", ["whole", "whole-no-tv", "tiled", "temporal"])
def test_objectives_write_the_gradient_into_out_exactly_as_they_return_it(network, images, kind):
    content, style, x = images
    tv = 0.0 if kind == "whole-no-tv" else 1e-3
    if kind == "tiled":
        objective = TiledObjective(network, content, [style], tile=32, content_weight=1.0, style_weight=1.0,
                                   tv_weight=tv, normalize=True)
    else:
        objective = Objective(network, content, [style], content_weight=1.0, style_weight=1.0, tv_weight=tv,
                              normalize=True)
    if kind == "temporal":
        objective = TemporalObjective(objective, content * 0.5, np.ones(content.shape[:2]), weight=0.5)
    value, grad = objective(x)
    grad = np.array(grad, dtype=np.float64)  # its own buffer, reused by the next call
    out = np.full(x.shape, np.nan)
    value_out, grad_out = objective(x, out=out)
    assert grad_out is out
    assert value_out == value
    np.testing.assert_array_equal(out, grad)
