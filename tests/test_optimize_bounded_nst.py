"""The projected L-BFGS on a style-transfer objective whose pixels press against the [0, 1] box.

With max pooling and random weights, the loss along the search direction is still falling steeply
where the first pixel reaches its bound. A search that stops there takes tiny steps, skips every
curvature pair (the slope got steeper, so y.s < 0) and ends up doing steepest descent. SciPy's
L-BFGS-B on the same objective is the yardstick for what the iterations asked for can reach.
"""

from __future__ import annotations

import numpy as np
import pytest

from synthetic import gradient, noise, stripes

scipy_optimize = pytest.importorskip("scipy.optimize")

SIZE = 48
ITERATIONS = 30


@pytest.fixture(scope="module")
def saturating_objective(models_dir):
    from nst_rt.io import layout
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective

    network = Network(load_model("vgg19-max", models_dir("vgg19", "max")), "cpu", 1)
    content = gradient(SIZE, SIZE)
    # The plain recipe at its classic weights, where the search meets the bounds this test is about.
    objective = Objective(network, content, [noise(SIZE, SIZE), stripes(SIZE, SIZE)], content_weight=1.0,
                          style_weight=1e6, tv_weight=0.0, normalize=False)
    return objective, layout.to_nchw(content).astype(np.float64)


@pytest.mark.slow
def test_bounded_lbfgs_keeps_up_with_lbfgsb_when_pixels_hit_the_bounds(saturating_objective):
    from nst_rt.optimize import minimize

    objective, x0 = saturating_objective
    ours = minimize(objective, x0, bounds=(0.0, 1.0),
                    options={"maxiter": ITERATIONS, "maxfun": 10_000, "gtol": 0.0, "ftol": 0.0})

    def flat(x):
        f, g = objective(x.reshape(x0.shape))
        return f, g.reshape(-1)

    theirs = scipy_optimize.minimize(flat, x0.reshape(-1), jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * x0.size,
                                     options={"maxiter": ITERATIONS, "maxcor": 100, "gtol": 0.0, "ftol": 0.0})
    unbounded = minimize(objective, x0, options={"maxiter": ITERATIONS, "maxfun": 10_000, "gtol": 0.0, "ftol": 0.0})
    info = (f"ours {ours.fun:.4f} in {ours.nfev} evaluations, L-BFGS-B {theirs.fun:.4f} in {theirs.nfev}, "
            f"unbounded {unbounded.fun:.4f}")
    assert ours.nit == ITERATIONS, ours.message
    assert ours.x.min() >= 0.0 and ours.x.max() <= 1.0
    assert ours.fun <= theirs.fun, info
    assert ours.fun <= 1.25 * unbounded.fun, info  # the box costs little here; a stalled search costs 3x
    assert ours.nfev <= 1.5 * theirs.nfev, info
