"""The losses of Gatys et al. in numpy, each with its gradient.

With F the activations (C x H x W) of the image being optimised at one layer, P the content image's
activations there, and A a style image's Gram matrix there:

  gram(F)        G = F' F'^T / (C H W), with F' = F reshaped to C x (H W)
  content(F, P)  mean((F - P)^2)                       dL/dF = 2 (F - P) / (C H W)
  style(F, A)    mean((G - A)^2) = sum((G - A)^2) / C^2 dL/dF = 4 (G - A) F' / (C^2 C H W)   (G, A symmetric)
  tv(x)          mean((x[:, :, 1:, :] - x[:, :, :-1, :])^2) + mean((x[:, :, :, 1:] - x[:, :, :, :-1])^2)

Every term is a mean, so weights keep their meaning across image sizes. Activations stay float32 (as
ONNX Runtime gives them) for the matrix products; sums are taken in float64. Each function runs on the array
module of its arrays (numpy, or CuPy on a device): only the loss value comes to the host.
"""

from __future__ import annotations

import numpy as np

from ..system.array_module import array_module


def gram(features: np.ndarray) -> np.ndarray:
    """Gram matrix of (1, C, H, W) or (C, H, W) activations, normalised by C*H*W."""
    c = features.shape[-3]
    flat = features.reshape(c, -1)
    return (flat @ flat.T) / np.float32(flat.size)  # numpy computes X @ X.T with a symmetric rank-k update


def content_loss(features: np.ndarray, target: np.ndarray, weight: float = 1.0,
                 grad_out: np.ndarray | None = None, accumulate: bool = True) -> float:
    """weight * mean((F - P)^2); writes (or adds, with ``accumulate``) its gradient into ``grad_out``."""
    xp = array_module(features)
    diff = features - target
    value = weight * float(xp.dot(diff.ravel(), diff.ravel())) / diff.size
    if grad_out is not None:
        scale = np.float32(2.0 * weight / diff.size)
        if accumulate:
            diff *= scale
            grad_out += diff
        else:
            xp.multiply(diff, scale, out=grad_out)
    return value


def style_loss(features: np.ndarray, target_gram: np.ndarray, weight: float = 1.0,
               grad_out: np.ndarray | None = None, accumulate: bool = True) -> float:
    """weight * mean((gram(F) - A)^2); writes (or adds, with ``accumulate``) its gradient into ``grad_out``."""
    xp = array_module(features)
    c = features.shape[-3]
    flat = features.reshape(c, -1)
    diff = gram(features) - target_gram
    value = weight * float(xp.sum(xp.square(diff, dtype=xp.float64))) / diff.size
    if grad_out is not None:
        diff *= np.float32(4.0 * weight / (diff.size * flat.size))  # scale the small C x C matrix, not C x HW
        if not grad_out.flags.c_contiguous:  # no flat view to write through: compute, then copy in
            update = (diff @ flat).reshape(grad_out.shape)
            grad_out[...] = grad_out + update if accumulate else update
        elif accumulate:
            grad_out.reshape(c, -1)[...] += diff @ flat
        else:
            xp.matmul(diff, flat, out=grad_out.reshape(c, -1))
    return value


def tv_loss(image: np.ndarray, weight: float = 1.0, grad_out: np.ndarray | None = None) -> float:
    """weight * total variation of (1, 3, H, W) pixels (squared differences of neighbours, as means)."""
    xp = array_module(image)
    value = 0.0
    for axis in (2, 3):
        count = image.size // image.shape[axis] * (image.shape[axis] - 1)  # the differences along this axis
        if count == 0:
            continue
        lead, lag = [slice(None)] * 4, [slice(None)] * 4
        lead[axis], lag[axis] = slice(1, None), slice(None, -1)
        total = 0.0
        for c in range(image.shape[1]):  # a channel at a time: the differences of one, not of the whole image
            diff = xp.diff(image[:, c:c + 1], axis=axis)
            total += float(xp.dot(diff.ravel(), diff.ravel()))
            if grad_out is not None:
                diff *= 2.0 * weight / count
                channel = grad_out[:, c:c + 1]
                channel[tuple(lead)] += diff
                channel[tuple(lag)] -= diff
        value += weight * total / count
    return value
