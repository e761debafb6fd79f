"""The Winograd F(2x2,3x3) and F(4x4,3x3) graphs against torch's float64 convolution, forward and VJP."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from nst_rt.export.winograd import direct_model, vjp_weight, winograd_model


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("hw", [(8, 8), (9, 7), (5, 11)])
def test_winograd_matches_float64_conv(m, hw):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 8, 3, 3)) * np.sqrt(2 / 72)
    x = rng.standard_normal((1, 8, *hw)).astype(np.float32)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w), padding=1).numpy()
    got = _run(winograd_model(w, *hw, m), x)
    assert got.shape == ref.shape
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5
    assert np.linalg.norm(_run(direct_model(w, *hw), x) - ref) / np.linalg.norm(ref) < 1e-5


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_vjp_matches_autograd(m):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 8, 3, 3))
    x = torch.from_numpy(rng.standard_normal((1, 8, 7, 10))).requires_grad_()
    g = rng.standard_normal((1, 6, 7, 10))
    torch.nn.functional.conv2d(x, torch.from_numpy(w), padding=1).backward(torch.from_numpy(g))
    ref = x.grad.numpy()
    got = _run(winograd_model(vjp_weight(w), 7, 10, m), g.astype(np.float32))
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5
