"""Resuming minimize from a saved state gives the same result, bit for bit, as a run never interrupted."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("scipy.optimize")

from nst_rt.errors import OptionError  # noqa: E402
from nst_rt.optimize import minimize  # noqa: E402
from oracles import rosen  # noqa: E402
from strict_xp import minimize_on_device  # noqa: E402


@pytest.fixture(autouse=True, params=["numpy", "device"])
def namespace(request, monkeypatch):
    """Every test twice: on numpy, and with the optimiser's vectors on a stand-in device that refuses numpy."""
    if request.param == "device":
        monkeypatch.setitem(globals(), "minimize", minimize_on_device(minimize))
    return request.param


def saved_and_loaded(state):
    """The state as it comes back from an .npz file."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    return dict(np.load(buffer))


CASES = [
    ("lbfgs", None, {"maxiter": 40, "maxcor": 5, "gtol": 0.0, "ftol": 0.0}),  # the memory wraps around
    ("lbfgs", (-0.5, np.r_[np.full(10, 0.7), np.full(10, np.inf)].reshape(4, 5)), {"maxiter": 40, "maxcor": 5, "gtol": 0.0,
                                                                     "ftol": 0.0}),
    ("adam", (0.0, 0.8), {"maxiter": 40, "lr": 0.05}),
]


@pytest.mark.parametrize(("method", "bounds", "options"), CASES)
@pytest.mark.parametrize("stop_at", [1, 17])
def test_interrupted_and_resumed_equals_uninterrupted(method, bounds, options, stop_at):
    x0 = np.random.default_rng(1).uniform(-1.0, 1.0, (4, 5))
    fun = lambda x: (lambda f, g: (f, g.reshape(x.shape)))(*rosen(x.reshape(-1)))  # noqa: E731

    whole_trace = []
    whole = minimize(fun, x0, method=method, bounds=bounds, options=options,
                     callback=lambda r: whole_trace.append(r.fun))

    saved = {}

    def checkpoint_then_die(r):
        if r.nit == stop_at:
            saved.update(saved_and_loaded(r.state()))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        minimize(fun, x0, method=method, bounds=bounds, options=options, callback=checkpoint_then_die)
    rest_trace = []
    resumed = minimize(fun, np.zeros_like(x0), method=method, bounds=bounds, options=options, resume=saved,
                       callback=lambda r: rest_trace.append(r.fun))

    assert whole.nit > stop_at
    assert whole_trace[stop_at:] == rest_trace
    assert resumed.nit == whole.nit and resumed.nfev == whole.nfev
    assert resumed.message == whole.message and resumed.fun == whole.fun
    np.testing.assert_array_equal(resumed.x, whole.x)
    np.testing.assert_array_equal(resumed.jac, whole.jac)


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_state_without_copies_holds_the_same_values_as_views(method):
    seen = []

    def callback(r):
        copies, views = r.state(), r.state(copy=False)
        assert copies.keys() == views.keys()
        for name, value in copies.items():
            np.testing.assert_array_equal(np.asarray(views[name]), np.asarray(value), err_msg=name)
            if isinstance(value, np.ndarray) and value.size:
                assert not np.shares_memory(value, views[name])  # the copies are the caller's own
        seen.append(r.nit)

    minimize(rosen, np.linspace(-1, 1, 6), method=method, options={"maxiter": 7}, callback=callback)
    assert seen == list(range(1, 8))


def test_state_is_built_only_on_request():
    calls = []

    def callback(r):
        calls.append(r.nit)
        assert set(r) == {"x", "fun", "jac", "nit", "nfev"}

    minimize(rosen, np.zeros(3), options={"maxiter": 3}, callback=callback)
    assert calls == [1, 2, 3]


def test_state_that_does_not_fit_is_refused():
    states = {}

    def keep(r):
        states[r.nit] = r.state()

    minimize(rosen, np.zeros(3), options={"maxiter": 10, "maxcor": 4}, callback=keep)
    with pytest.raises(OptionError, match="maxcor"):
        minimize(rosen, np.zeros(3), options={"maxiter": 10, "maxcor": 5}, resume=states[2])
    with pytest.raises(OptionError, match="shape"):
        minimize(rosen, np.zeros(4), options={"maxiter": 10, "maxcor": 4}, resume=states[2])
    with pytest.raises(OptionError, match="adam"):
        minimize(rosen, np.zeros(3), method="adam", resume=states[2])
    with pytest.raises(OptionError, match="'gamma'"):
        minimize(rosen, np.zeros(3), options={"maxiter": 10, "maxcor": 4},
                 resume={k: v for k, v in states[2].items() if k != "gamma"})
