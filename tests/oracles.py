"""What the tests hold the library against, written once and independently of it: the layer names spelled
out, relative errors, the TV loss in torch, and SciPy's test problem. The Gram matrix and the stylization
recipe come from the plain-PyTorch reference, ``nst_rt.export.reference``."""

from __future__ import annotations

import numpy as np

# Every ReLU of the truncated networks, in order, spelled out rather than read from nst_rt.model_format.
LAYERS = {
    "vgg16": ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
              "relu4_1", "relu4_2", "relu4_3", "relu5_1"],
    "vgg19": ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4",
              "relu4_1", "relu4_2", "relu4_3", "relu4_4", "relu5_1"],
}


def rel_l2(a, b) -> float:
    """||a - b|| / ||b||, in float64."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)) / np.linalg.norm(b))


def tv(x, weight=1.0):
    """The TV loss of a torch (1, 3, H, W) tensor, straight from its definition."""
    import torch

    return weight * (torch.mean((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2)
                     + torch.mean((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2))


def rosen(x):
    """SciPy's Rosenbrock function and its gradient, as ``minimize(..., jac=True)`` takes them."""
    from scipy.optimize import rosen as value, rosen_der as gradient

    return value(x), gradient(x)
