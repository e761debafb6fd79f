"""CUDA execution provider checks: run with `python -m pytest -m gpu` on a machine with onnxruntime-gpu and a GPU.

Skipped where onnxruntime offers no CUDA provider or the provider cannot start.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from nst_rt.errors import ProviderError
from nst_rt.network.session import Network
from nst_rt.objective.whole import Objective
from nst_rt.pipeline.stylizer import Stylizer

from synthetic import gradient, noise

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                                 reason="onnxruntime offers no CUDA provider here")]


@pytest.fixture(scope="module")
def cuda_network(vgg19):
    try:
        return Network(vgg19, "cuda")
    except ProviderError as exc:
        pytest.skip(str(exc))


def test_cuda_takes_the_device_path(cuda_network):
    assert cuda_network.device == "cuda" and not cuda_network.shares_host_memory


def test_cuda_gradient_matches_cpu(vgg19, cuda_network):
    content, style = gradient(48, 64), noise(48, 48)
    x = np.random.default_rng(5).random((1, 3, 48, 64))
    results = []
    for network in (Network(vgg19, "cpu"), cuda_network):
        objective = Objective(network, content, [style])
        # Several steps on different images: every step must see its own image and cotangents.
        for step in range(3):
            loss, grad = objective(np.clip(x + 0.05 * step, 0, 1))
        results.append((loss, grad.copy()))
    (cpu_loss, cpu_grad), (cuda_loss, cuda_grad) = results
    assert np.linalg.norm(cuda_grad - cpu_grad) / np.linalg.norm(cpu_grad) < 1e-4
    assert abs(cuda_loss - cpu_loss) / abs(cpu_loss) < 1e-4


def test_cuda_stylization_loss_falls(models_dir, isolated):
    stylizer = Stylizer(size=64, iterations=20, models_dir=models_dir(), provider="cuda")
    losses = []
    result = stylizer.run(gradient(), noise(), progress=lambda p: losses.append(p.loss))
    losses = [loss for loss in losses if np.isfinite(loss)]  # the start frame carries no loss yet
    assert stylizer.network.device == "cuda"
    assert len(losses) >= 2 and result.iterations >= 10
    assert result.loss < losses[0]
