"""Tiles whose windows differ by a few px share the network's buffers: each window shape is bound once per
image, not once per tile, and the gradient is the same as untiled."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from nst_rt.network.session import Network
from nst_rt.objective.whole import Objective
from nst_rt.objective.tiled import TiledObjective, plan_tiles

SETTINGS = dict(content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_1"], content_weight=1.0,
                style_weight=1e3, tv_weight=0.0, normalize=False)


def test_windows_of_a_few_shapes_are_bound_once_each(vgg19, monkeypatch):
    made = []
    real = ort.InferenceSession.io_binding
    monkeypatch.setattr(ort.InferenceSession, "io_binding", lambda self: made.append(1) or real(self))
    network = Network(vgg19, "cpu")
    made.clear()
    rng = np.random.default_rng(0)
    content, style = rng.random((75, 150, 3), dtype=np.float32), rng.random((64, 64, 3), dtype=np.float32)
    tiled = TiledObjective(network, content, [style], tile=32, **SETTINGS)
    tiles = plan_tiles(75, 150, 32, tiled.halo)
    shapes = {(t.window[1] - t.window[0], t.window[3] - t.window[2]) for t in tiles}
    assert len(shapes) > 1 and len(tiles) > len(shapes)  # windows of more than one shape, several of each
    x = rng.random((1, 3, 75, 150))
    loss, grad = tiled(x)
    grad = grad.copy()
    assert len(made) == 2 * len(shapes)  # the targets and the first evaluation: a features and a VJP binding each
    tiled(x * 0.9)
    assert len(made) == 2 * len(shapes)  # none again
    expected_loss, expected_grad = Objective(Network(vgg19, "cpu"), content, [style], **SETTINGS)(x)
    assert np.linalg.norm(grad - expected_grad) / np.linalg.norm(expected_grad) < 1e-4
    assert abs(loss - expected_loss) / abs(expected_loss) < 1e-4
