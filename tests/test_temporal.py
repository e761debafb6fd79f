"""The temporal loss (nst_rt.video.temporal) and its gradient against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from nst_rt.errors import OptionError
from nst_rt.video.temporal import TemporalObjective, temporal_loss


def data(seed: int = 0, h: int = 5, w: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.random((1, 3, h, w))
    target = rng.random((1, 3, h, w))
    mask = rng.random((h, w))
    mask[0, :] = 0.0  # occluded pixels take no part
    return x, target, mask


def test_value_is_the_masked_mean_squared_difference():
    x, target, mask = data()
    expected = 2.5 * sum(mask[i, j] * (x[0, c, i, j] - target[0, c, i, j]) ** 2
                         for c in range(3) for i in range(5) for j in range(7)) / (3 * 5 * 7)
    assert temporal_loss(x, target, mask, 2.5) == pytest.approx(expected, rel=1e-12)


def test_gradient_matches_central_finite_differences():
    x, target, mask = data(seed=1)
    grad = np.zeros_like(x)
    temporal_loss(x, target, mask, 3.0, grad)
    step = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (temporal_loss(plus, target, mask, 3.0) - temporal_loss(minus, target, mask, 3.0)) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)
    assert np.all(grad[..., 0, :] == 0)  # masked-out row


class Quadratic:
    """A stand-in objective with a known value and gradient: sum(x^2)."""

    def __init__(self):
        self.points, self.evaluations = {}, 0

    def terms_at(self, value):
        return {"content": self.points[value], "style": 0.0}

    def __call__(self, x):
        self.evaluations += 1
        value = float(np.sum(x ** 2))
        self.points[value] = value
        return value, 2 * x


def test_wrapped_objective_adds_the_term_to_value_gradient_and_terms():
    x, target, mask = data(seed=2)
    image_target = target[0].transpose(1, 2, 0)
    wrapped = TemporalObjective(Quadratic(), image_target, mask, weight=4.0)
    start_loss = float(np.sum(x ** 2))  # the weight is relative to the wrapped objective at the first point
    for point in (x, 0.5 * x + 0.2):  # the scale stays that of the first point
        value, grad = wrapped(point)
        expected_grad = 2 * point
        temporal = temporal_loss(point, target, mask, 4.0 * start_loss, expected_grad)
        assert value == pytest.approx(np.sum(point ** 2) + temporal, rel=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)
        assert wrapped.terms_at(value) == {"content": pytest.approx(np.sum(point ** 2)), "style": 0.0,
                                           "temporal": pytest.approx(temporal)}
    assert wrapped.evaluations == 2


def test_wrapped_objective_gradient_matches_finite_differences():
    x, target, mask = data(seed=3)
    wrapped = TemporalObjective(Quadratic(), target[0].transpose(1, 2, 0), mask, weight=0.7)
    _, grad = wrapped(x)
    step = 1e-6
    for index in [(0, 0, 1, 2), (0, 1, 3, 0), (0, 2, 4, 6)]:
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        numeric = (wrapped(plus)[0] - wrapped(minus)[0]) / (2 * step)
        assert grad[index] == pytest.approx(numeric, rel=1e-6)


def test_wrapped_objective_refuses_mismatched_shapes_and_bad_weights():
    with pytest.raises(OptionError):
        TemporalObjective(Quadratic(), np.zeros((4, 4, 3)), np.ones((5, 4)), weight=1.0)
    with pytest.raises(OptionError):
        TemporalObjective(Quadratic(), np.zeros((4, 4, 3)), np.ones((4, 4)), weight=-1.0)


def test_temporal_term_follows_coarse_scales_with_a_resized_target_and_mask():
    from nst_rt.video.stylize import temporal_term

    rng = np.random.default_rng(4)
    warped, mask = rng.random((36, 48, 3)).astype(np.float32), np.ones((36, 48), np.float32)
    mask[:, :12] = 0.0
    wrap = temporal_term(warped, mask, 2.0)
    full, coarse = wrap(Quadratic(), (36, 48)), wrap(Quadratic(), (18, 24))
    assert full.target.shape == (1, 3, 36, 48) and np.array_equal(full.mask, mask)
    assert coarse.target.shape == (1, 3, 18, 24) and coarse.mask.shape == (18, 24)
    assert coarse.mask[:, :5].max() < 0.05 and coarse.mask[:, 7:].min() > 0.95  # the occluded band, halved
    assert coarse.weight == full.weight == 2.0
