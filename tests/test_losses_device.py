"""The losses on a device array library, held on the CPU by the stand-in that refuses numpy (tests/strict_xp.py).

test_losses.py holds every loss against torch autograd and finite differences on numpy; here each runs on the
stand-in device with the same inputs and gives the same value and gradient, bit for bit (the same arithmetic
underneath), with the gradient left on the device: a stray ``np.`` call on a device array fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from nst_rt.objective import losses
from strict_xp import StrictArray, strict, to_strict

SHAPE = (1, 6, 9, 11)


def inputs(seed: int, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(SHAPE).astype(dtype), rng.standard_normal(SHAPE).astype(dtype),
            rng.standard_normal(SHAPE).astype(dtype))


def test_gram_on_the_device():
    f, _, _ = inputs(0)
    device = losses.gram(to_strict(f))
    assert isinstance(device, StrictArray)
    np.testing.assert_array_equal(strict.asnumpy(device), losses.gram(f))


@pytest.mark.parametrize("accumulate", [True, False])
@pytest.mark.parametrize("loss", ["content", "style"])
def test_content_and_style_on_the_device(loss, accumulate):
    f, p, prior = inputs(1)
    target = p if loss == "content" else losses.gram(p)
    fun = losses.content_loss if loss == "content" else losses.style_loss
    grad = prior.copy()
    value = fun(f.copy(), target, 0.7, grad, accumulate=accumulate)
    device_grad = to_strict(prior)
    device_value = fun(to_strict(f), to_strict(target), 0.7, device_grad, accumulate=accumulate)
    assert isinstance(device_value, float) and device_value == value
    np.testing.assert_array_equal(strict.asnumpy(device_grad), grad)


@pytest.mark.parametrize("accumulate", [True, False])
def test_style_into_a_non_contiguous_gradient_on_the_device(accumulate):
    f, p, prior = inputs(2)
    wide = np.concatenate([prior, prior], axis=3)  # the gradient is written into a strided view of it
    device_wide = to_strict(wide)
    value = losses.style_loss(f, losses.gram(p), 1.3, wide[..., ::2], accumulate=accumulate)
    device_value = losses.style_loss(to_strict(f), to_strict(losses.gram(p)), 1.3, device_wide[..., ::2],
                                     accumulate=accumulate)
    assert device_value == value
    np.testing.assert_array_equal(strict.asnumpy(device_wide), wide)


def test_tv_on_the_device():
    image = np.random.default_rng(3).random((1, 3, 7, 10))
    prior = np.random.default_rng(4).standard_normal(image.shape)
    grad, device_grad = prior.copy(), to_strict(prior)
    value = losses.tv_loss(image, 0.3, grad)
    assert losses.tv_loss(to_strict(image), 0.3, device_grad) == value
    np.testing.assert_array_equal(strict.asnumpy(device_grad), grad)
