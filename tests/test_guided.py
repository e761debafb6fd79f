"""Masked (guided) Gram matrices and the masked content term (nst_rt.objective.guided): values and gradients
against torch autograd with soft masks, for one and two styles; the objective with masks, whole and in tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nst_rt.model_format import model_name
from nst_rt.network.model import load_model
from nst_rt.network.session import Network
from nst_rt.objective import guided
from nst_rt.objective.tiled import TiledObjective
from nst_rt.objective.whole import Objective

SHAPE = (1, 4, 6, 7)


def _soft_mask(rng, shape):
    return rng.uniform(0.05, 0.95, shape).astype(np.float32)  # no 0 or 1: a soft mask


def _term(rng, weight, mask, c):
    target = rng.random((c, c)).astype(np.float32)
    target = (target + target.T) / 2
    return guided.MaskedTerm(weight, target, mask, c * float(mask.sum(dtype=np.float64)))


def t_guided_style(f, terms):
    """sum_k w_k mean((G_k - A_k)^2), G_k = (F m_k)(F m_k)^T / (C sum m_k), straight from the docstring."""
    c = f.shape[1]
    flat = f.reshape(c, -1)
    total = 0.0
    for t in terms:
        m = torch.tensor(t.mask, dtype=torch.float64).reshape(1, -1)
        weighted = flat * m
        g = weighted @ weighted.T / (c * m.sum())
        total = total + t.weight * torch.mean((g - torch.tensor(t.target, dtype=torch.float64)) ** 2)
    return total


def _matches_torch(f, terms, grad):
    """Writes style_loss's gradient into ``grad``, checks value and gradient against autograd, returns it."""
    value = guided.style_loss(f, terms, grad, accumulate=False)
    ft = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    expected = t_guided_style(ft, terms)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-5)
    np.testing.assert_allclose(grad, ft.grad.numpy(), rtol=1e-4, atol=1e-6 * np.abs(ft.grad.numpy()).max())
    return grad


@pytest.mark.parametrize("styles", [1, 2])
def test_guided_style_loss_value_and_gradient_match_torch(styles):
    rng = np.random.default_rng(styles)
    f = np.maximum(rng.standard_normal(SHAPE), 0).astype(np.float32) + 0.01
    terms = [_term(rng, w, _soft_mask(rng, SHAPE[2:]), SHAPE[1]) for w in (0.7, 1.9)[:styles]]
    grad = _matches_torch(f, terms, np.zeros(SHAPE, np.float32))
    again = np.ones(SHAPE, np.float32)  # accumulate adds to what is there
    guided.style_loss(f, terms, again, accumulate=True)
    np.testing.assert_allclose(again - 1, grad, rtol=1e-4, atol=1e-6)


def _split_masks(rng, shape):
    """Left and right masks with a soft, overlapping seam and zeros beyond it: each covers under 90% of the
    positions, so the style term works in each mask's box."""
    h, w = shape
    ramp = np.clip((np.arange(w) - w / 2 + 1.5) / 3, 0, 1).astype(np.float32)
    left = np.repeat((1 - ramp)[None], h, 0) * rng.uniform(0.5, 1.0, shape).astype(np.float32)
    return [left, np.repeat(ramp[None], h, 0)]


@pytest.mark.parametrize("styles", [1, 2])
def test_masks_with_zeros_work_in_their_box_and_match_torch(styles):
    rng = np.random.default_rng(10 + styles)
    f = np.maximum(rng.standard_normal(SHAPE), 0).astype(np.float32) + 0.01
    terms = [_term(rng, w, m, SHAPE[1]) for w, m in zip((0.7, 1.9), _split_masks(rng, SHAPE[2:]))][:styles]
    assert all(t.box is not None and 0 < t.box_mask.size < t.mask.size for t in terms)
    grad = _matches_torch(f, terms, np.full(SHAPE, 7.0, np.float32))  # overwritten, also where no mask reaches
    strided = np.ones((1, SHAPE[1], SHAPE[2], SHAPE[3] * 2), np.float32)[..., ::2]  # not C-contiguous
    guided.style_loss(f, terms, strided, accumulate=True)
    np.testing.assert_allclose(strided - 1, grad, rtol=1e-4, atol=1e-6)


def test_a_mask_of_ones_is_the_plain_gram():
    rng = np.random.default_rng(0)
    f = rng.random(SHAPE).astype(np.float32)
    from nst_rt.objective import losses
    flat = f.reshape(SHAPE[1], -1)
    ones = np.ones(SHAPE[2:], np.float32)
    np.testing.assert_allclose(guided.guided_gram(flat, ones, flat.size), losses.gram(f), rtol=1e-6)


def test_masked_content_loss_value_and_gradient_match_torch():
    rng = np.random.default_rng(5)
    f, p = rng.random(SHAPE).astype(np.float32), rng.random(SHAPE).astype(np.float32)
    mask = _soft_mask(rng, SHAPE[2:])
    term = guided.MaskedTerm(1.3, p, mask, SHAPE[1] * float(mask.sum(dtype=np.float64)))
    grad = np.zeros(SHAPE, np.float32)
    value = guided.content_loss(f, term, grad, accumulate=True)
    ft = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    m = torch.tensor(mask, dtype=torch.float64)
    expected = 1.3 * torch.sum(m * (ft - torch.tensor(p, dtype=torch.float64)) ** 2) / (SHAPE[1] * m.sum())
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-5)
    np.testing.assert_allclose(grad, ft.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_pool_averages_2x2_and_floors_odd_sides():
    mask = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    pooled = guided.pool(mask, 1)
    assert pooled.shape == (2, 3)
    assert pooled[0, 0] == pytest.approx(np.mean([0, 1, 7, 8]))
    assert guided.pool(mask, 2).shape == (1, 1)


@pytest.fixture(scope="module")
def network(models_dir):
    return Network(load_model(model_name("vgg16", "avg"), models_dir("vgg16", "avg")), "cpu")


def _images(h=40, w=229):
    rng = np.random.default_rng(3)
    content = rng.random((h, w, 3), dtype=np.float32)
    styles = [rng.random((40, 60, 3), dtype=np.float32), rng.random((50, 40, 3), dtype=np.float32)]
    yy, xx = np.mgrid[0:h, 0:w]
    checker = (((yy // 8) + (xx // 8)) % 2).astype(np.float32)
    soft = np.clip(0.25 + 0.5 * checker + 0.1 * rng.random((h, w)), 0, 1).astype(np.float32)
    return content, styles, [soft, 1 - soft], rng.random((1, 3, h, w))


SETTINGS = dict(content_weight=1.0, style_weight=10.0, tv_weight=2.0, normalize=True)


def _split(h=40, w=229):
    """Left and right masks, 0 beyond a soft seam: whole-image terms work in boxes, tiles skip windows."""
    ramp = np.clip((np.arange(w) - 80) / 16, 0, 1).astype(np.float32)
    return [np.repeat((1 - ramp)[None], h, 0), np.repeat(ramp[None], h, 0)]


@pytest.mark.parametrize("kind", ["checkerboard", "split"])
def test_masks_in_tiles_equal_the_untiled_run(network, kind):
    content, styles, masks, x = _images()
    if kind == "split":
        masks = _split()
    kwargs = dict(style_masks=masks, content_mask=masks[0], **SETTINGS)
    whole = Objective(network, content, styles, **kwargs)
    if kind == "split":
        assert all(t.box is not None for terms in whole.style_masked.values() for t in terms)
    value, grad = whole(x)
    grad = grad.copy()
    tiled = TiledObjective(network, content, styles, tile=32, **kwargs)
    tiled_value, tiled_grad = tiled(x)
    assert tiled_value == pytest.approx(value, rel=1e-6)
    for term, part in whole.terms_at(value).items():
        assert tiled.terms_at(tiled_value)[term] == pytest.approx(part, rel=1e-6, abs=1e-12)
    assert np.linalg.norm(tiled_grad - grad) / np.linalg.norm(grad) < 1e-6


def test_masks_of_ones_give_the_unmasked_objective_with_one_style(network):
    content, styles, _, x = _images()
    ones = np.ones(content.shape[:2], np.float32)
    plain_value, plain_grad = Objective(network, content, styles[:1], **SETTINGS)(x)
    plain_grad = plain_grad.copy()
    value, grad = Objective(network, content, styles[:1], style_masks=[ones], content_mask=ones, **SETTINGS)(x)
    assert value == pytest.approx(plain_value, rel=1e-5)
    assert np.linalg.norm(grad - plain_grad) / np.linalg.norm(plain_grad) < 1e-5


def test_the_objective_gradient_with_masks_matches_finite_differences(network):
    content, styles, masks, _ = _images(32, 48)
    objective = Objective(network, content, styles, style_masks=[m for m in masks], content_mask=masks[1],
                          content_weight=1.0, style_weight=10.0, tv_weight=0.0, normalize=True)
    rng = np.random.default_rng(1)
    x = rng.random((1, 3, 32, 48))
    _, grad = objective(x)
    grad = np.asarray(grad, np.float64).copy()
    direction = rng.standard_normal(x.shape)
    eps = 1e-4  # ReLU kinks: the unmasked objective agrees with finite differences to the same degree
    numeric = (objective(x + eps * direction)[0] - objective(x - eps * direction)[0]) / (2 * eps)
    assert float(np.sum(grad * direction)) == pytest.approx(numeric, rel=5e-3)


def test_a_wrong_mask_count_or_shape_is_refused(network):
    from nst_rt.errors import OptionError
    content, styles, masks, _ = _images(32, 48)
    with pytest.raises(OptionError, match="one mask per style image"):
        Objective(network, content, styles, style_masks=masks[:1], **SETTINGS)
    with pytest.raises(OptionError, match="px"):
        Objective(network, content, styles, style_masks=[m[:16] for m in masks], **SETTINGS)
