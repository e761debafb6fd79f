"""Tests for nst_rt.objective.losses: values and gradients against torch autograd and central finite differences."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from nst_rt.objective import losses
from nst_rt.export.reference import gram as torch_gram
from oracles import rel_l2, tv as t_tv

SHAPES = [(1, 4, 5, 7), (1, 3, 6, 6), (1, 5, 1, 9), (1, 2, 7, 1)]  # odd, even, one-row and one-column maps
SHAPE_IDS = ["4x5x7", "3x6x6", "5x1x9", "2x7x1"]
# The gradient scale factors are float32 constants (the runtime's activations are float32), so even float64
# inputs get gradients accurate to float32 rounding of that scale only.
GRAD64_TOL = 1e-7


def _rng(*parts) -> np.random.Generator:
    """A generator seeded from the test's own parameters (stable across runs and processes)."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little"))


def _features(rng, shape, dtype=np.float64):
    # ReLU-like activations: non-negative with some exact zeros
    return np.maximum(rng.standard_normal(shape), 0.0).astype(dtype) + np.asarray(0.01, dtype)


# torch float64 definitions straight from the module docstring


def t_content(f, p, w):
    return w * torch.mean((f - p) ** 2)


def t_style(f, a, w):
    return w * torch.mean((torch_gram(f) - a) ** 2)


def torch_value_grad(fn, x, *args):
    t = torch.from_numpy(np.asarray(x, np.float64)).requires_grad_(True)
    value = fn(t, *[torch.from_numpy(np.asarray(a, np.float64)) if isinstance(a, np.ndarray) else a for a in args])
    (grad,) = torch.autograd.grad(value, [t])
    return float(value.detach()), grad.numpy()


def finite_diff(f, x, n_probe=None, eps=1e-6, rng=None):
    """Central differences of scalar f at x (float64): all coordinates, or n_probe random ones."""
    x = np.array(x, np.float64)
    flat = x.reshape(-1)
    idx = np.arange(flat.size) if n_probe is None else rng.choice(flat.size, size=n_probe, replace=False)
    out = np.zeros(flat.size)
    for i in idx:
        old = flat[i]
        flat[i] = old + eps
        up = f(x)
        flat[i] = old - eps
        down = f(x)
        flat[i] = old
        out[i] = (up - down) / (2 * eps)
    return out.reshape(x.shape), idx


# ------------------------------------------------------------------ gram


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_gram_matches_definition(shape):
    f = _features(_rng("gram", shape), shape)
    g = losses.gram(f)
    c = shape[1]
    assert g.shape == (c, c)
    np.testing.assert_allclose(g, torch_gram(torch.from_numpy(f)).numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(g, g.T, rtol=0, atol=0)
    # a (C, H, W) input gives the same matrix
    np.testing.assert_allclose(losses.gram(f[0]), g, rtol=1e-12, atol=0)


def test_gram_float32_keeps_float32_and_normalisation():
    f = np.ones((1, 3, 4, 5), np.float32)
    g = losses.gram(f)
    assert g.dtype == np.float32
    # each entry sums 20 ones, normalised by C*H*W = 60
    np.testing.assert_allclose(g, np.full((3, 3), 20 / 60, np.float32), rtol=1e-7)


# ------------------------------------------------------------------ content


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_content_loss_against_autograd_and_finite_differences(shape):
    rng = _rng("content", shape)
    f, p = _features(rng, shape), _features(rng, shape)
    weight = 0.7
    grad = np.zeros(shape)
    value = losses.content_loss(f.copy(), p, weight, grad, accumulate=False)
    t_value, t_grad = torch_value_grad(t_content, f, p, weight)
    assert value == pytest.approx(t_value, rel=1e-12)
    assert rel_l2(grad, t_grad) <= GRAD64_TOL
    fd, _ = finite_diff(lambda z: losses.content_loss(z, p, weight), f)
    assert rel_l2(grad, fd) <= 1e-7


def test_content_loss_float32():
    rng = _rng("content32")
    shape = (1, 8, 9, 11)
    f, p = _features(rng, shape, np.float32), _features(rng, shape, np.float32)
    grad = np.zeros(shape, np.float32)
    value = losses.content_loss(f, p, 2.5, grad, accumulate=False)
    t_value, t_grad = torch_value_grad(t_content, f, p.astype(np.float64), 2.5)
    assert grad.dtype == np.float32
    assert value == pytest.approx(t_value, rel=1e-5)
    assert rel_l2(grad, t_grad) <= 1e-6


@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_content_loss_accumulate(accumulate, dtype):
    rng = _rng("content-acc", accumulate, dtype.__name__)
    shape = (1, 3, 5, 7)
    f, p = _features(rng, shape, dtype), _features(rng, shape, dtype)
    f0, p0 = f.copy(), p.copy()
    prior = rng.standard_normal(shape).astype(dtype)
    grad = prior.copy()
    losses.content_loss(f, p, 1.3, grad, accumulate=accumulate)
    expected = torch_value_grad(t_content, f0, p0, 1.3)[1] + (prior if accumulate else 0)
    tol = 1e-6 if dtype == np.float32 else GRAD64_TOL
    assert rel_l2(grad, expected) <= tol
    # the inputs are left alone
    np.testing.assert_array_equal(f, f0)
    np.testing.assert_array_equal(p, p0)


def test_content_loss_without_grad_out_and_zero_weight():
    rng = _rng("content-none")
    f, p = _features(rng, (1, 2, 4, 4)), _features(rng, (1, 2, 4, 4))
    assert losses.content_loss(f, p) == pytest.approx(float(np.mean((f - p) ** 2)), rel=1e-12)
    assert losses.content_loss(f, f.copy()) == 0.0
    grad = np.ones_like(f)
    assert losses.content_loss(f, p, 0.0, grad, accumulate=False) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


# ------------------------------------------------------------------ style


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_style_loss_against_autograd_and_finite_differences(shape):
    rng = _rng("style", shape)
    f = _features(rng, shape)
    target = losses.gram(_features(rng, (1, shape[1], 3, 4)))  # a Gram matrix from a differently sized map
    weight = 3.0
    grad = np.zeros(shape)
    value = losses.style_loss(f.copy(), target.copy(), weight, grad, accumulate=False)
    t_value, t_grad = torch_value_grad(t_style, f, target, weight)
    assert value == pytest.approx(t_value, rel=1e-12)
    assert rel_l2(grad, t_grad) <= GRAD64_TOL
    fd, _ = finite_diff(lambda z: losses.style_loss(z, target, weight), f)
    assert rel_l2(grad, fd) <= 1e-6


def test_style_loss_float32_larger_map():
    rng = _rng("style32")
    shape = (1, 16, 13, 9)
    f = _features(rng, shape, np.float32)
    target = losses.gram(_features(rng, (1, 16, 10, 12), np.float32))
    grad = np.zeros(shape, np.float32)
    value = losses.style_loss(f, target, 1e3, grad, accumulate=False)
    t_value, t_grad = torch_value_grad(t_style, f, target.astype(np.float64), 1e3)
    assert grad.dtype == np.float32
    assert value == pytest.approx(t_value, rel=1e-5)
    assert rel_l2(grad, t_grad) <= 1e-5
    # float32 central differences on a few coordinates, loose tolerance
    g = rng.choice(f.size, 10, replace=False)
    flat = f.reshape(-1)
    for i in g:
        eps = 1e-2
        up, down = flat.copy(), flat.copy()
        up[i] += eps
        down[i] -= eps
        fd = (losses.style_loss(up.reshape(shape), target, 1e3) - losses.style_loss(down.reshape(shape), target, 1e3)) / (2 * eps)
        assert fd == pytest.approx(float(grad.reshape(-1)[i]), rel=2e-2, abs=1e-3 * float(np.abs(grad).max()))


@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_style_loss_accumulate(accumulate, dtype):
    rng = _rng("style-acc", accumulate, dtype.__name__)
    shape = (1, 4, 6, 5)
    f = _features(rng, shape, dtype)
    target = losses.gram(_features(rng, shape, dtype))
    f0, t0 = f.copy(), target.copy()
    prior = rng.standard_normal(shape).astype(dtype)
    grad = prior.copy()
    losses.style_loss(f, target, 2.0, grad, accumulate=accumulate)
    expected = torch_value_grad(t_style, f0, t0.astype(np.float64), 2.0)[1] + (prior if accumulate else 0)
    tol = 1e-5 if dtype == np.float32 else GRAD64_TOL
    assert rel_l2(grad, expected) <= tol
    np.testing.assert_array_equal(f, f0)
    np.testing.assert_array_equal(target, t0)


def test_style_loss_zero_at_own_gram():
    f = _features(_rng("style-zero"), (1, 3, 5, 5))
    grad = np.ones_like(f)
    assert losses.style_loss(f, losses.gram(f), 1.0, grad, accumulate=False) == pytest.approx(0.0, abs=1e-30)
    np.testing.assert_allclose(grad, 0.0, atol=1e-15)


@pytest.mark.parametrize("accumulate", [True, False])
def test_style_loss_non_contiguous_grad_out(accumulate):
    rng = _rng("style-noncontig", accumulate)
    shape = (1, 3, 4, 5)
    f = _features(rng, shape)
    target = losses.gram(_features(rng, shape))
    backing = np.zeros((1, 3, 4, 7))
    grad = backing[..., :5]  # a view whose rows are not adjacent: reshape(c, -1) must copy it
    assert np.shares_memory(grad, backing) and not grad.flags.c_contiguous
    losses.style_loss(f, target, 1.0, grad, accumulate=accumulate)
    expected = torch_value_grad(t_style, f, target, 1.0)[1]
    assert rel_l2(grad, expected) <= GRAD64_TOL


# ------------------------------------------------------------------ total variation


TV_SHAPES = [(1, 3, 5, 7), (1, 3, 8, 8), (1, 3, 1, 6), (1, 3, 6, 1)]


@pytest.mark.parametrize("shape", TV_SHAPES, ids=["5x7", "8x8", "1x6", "6x1"])
def test_tv_loss_against_autograd_and_finite_differences(shape):
    rng = _rng("tv", shape)
    x = rng.random(shape)
    weight = 0.4
    grad = np.zeros(shape)
    value = losses.tv_loss(x.copy(), weight, grad)
    if 1 in shape[2:]:  # one axis has no neighbours: only the other term counts
        axis = 3 if shape[2] == 1 else 2
        expected_value = weight * float(np.mean(np.diff(x, axis=axis) ** 2))
        assert value == pytest.approx(expected_value, rel=1e-12)
    else:
        t_value, t_grad = torch_value_grad(t_tv, x, weight)
        assert value == pytest.approx(t_value, rel=1e-12)
        assert rel_l2(grad, t_grad) <= 1e-12
    fd, _ = finite_diff(lambda z: losses.tv_loss(z, weight), x)
    assert rel_l2(grad, fd) <= 1e-7


def test_tv_loss_accumulates_and_float32():
    rng = _rng("tv-acc")
    shape = (1, 3, 9, 6)
    x = rng.random(shape).astype(np.float32)
    x0 = x.copy()
    prior = rng.standard_normal(shape)
    grad = prior.copy()
    value = losses.tv_loss(x, 2.0, grad)
    t_value, t_grad = torch_value_grad(t_tv, x, 2.0)
    assert value == pytest.approx(t_value, rel=1e-5)
    assert rel_l2(grad - prior, t_grad) <= 1e-6
    np.testing.assert_array_equal(x, x0)
    assert losses.tv_loss(np.full(shape, 0.3), 5.0) == 0.0
