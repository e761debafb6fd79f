"""The device path of ``Network`` (CUDA), and the same test bodies on the CPU provider.

Each test runs three ways: ``cpu`` (the host path), ``cpu-device-path`` (the CPU provider driven through the
code written for a device: outputs allocated by the session, inputs copied at bind time (the test binds a copy,
so that a rebind missing fails here too), activations read back with ``OrtValue.numpy()``), and ``cuda`` (marked ``gpu``: run with `python -m pytest -m gpu` on a machine with
onnxruntime-gpu; skipped where onnxruntime offers no CUDA provider or the provider cannot start). The first two
run in every test session, so an error in the bodies cannot hide until a GPU runs them.
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

NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()
WAYS = ["cpu", "cpu-device-path",
        pytest.param("cuda", marks=[pytest.mark.gpu,
                                    pytest.mark.skipif(NO_CUDA, reason="onnxruntime offers no CUDA provider here")])]
WEIGHTS = dict(content_weight=1.0, style_weight=1e6, tv_weight=1e-3, normalize=False)


def network_for(model, way: str) -> Network:
    try:
        network = Network(model, "cuda" if way == "cuda" else "cpu")
    except ProviderError as exc:
        pytest.skip(str(exc))
    if way == "cpu-device-path":
        network.shares_host_memory = False  # take the device path's bindings on the CPU provider
        for session in (network.features_session, network.vjp_session):
            session.io_binding = _copying_bindings(session.io_binding)
    return network


def _copying_bindings(io_binding):
    """``io_binding`` whose host inputs are bound as copies taken at bind time, as a device does: the CPU
    provider would otherwise read the bound array by pointer, and a missing rebind would go unnoticed."""

    def made():
        binding = io_binding()
        bind, kept = binding.bind_cpu_input, {}

        def bind_copy(name, array):
            kept[name] = np.array(array, copy=True)  # alive as long as it is bound
            bind(name, kept[name])

        binding.bind_cpu_input = bind_copy
        return binding

    return made


@pytest.mark.parametrize("way", WAYS)
def test_the_path_taken(vgg19, way):
    network = network_for(vgg19, way)
    assert network.device == ("cuda" if way == "cuda" else "cpu")
    assert network.shares_host_memory == (way == "cpu")


@pytest.mark.parametrize("fused", [True, False], ids=["objective-graph", "two-graphs"])
@pytest.mark.parametrize("way", WAYS)
def test_gradient_matches_a_fresh_cpu_network_at_every_step(vgg19, way, fused):
    content, style = gradient(48, 64), noise(48, 48)
    x = np.random.default_rng(5).random((1, 3, 48, 64))
    objective = Objective(network_for(vgg19, way), content, [style], fused=fused, **WEIGHTS)
    assert (objective._fused is not None) == fused
    # Several steps on different images: every step must see its own image and cotangents.
    for step in range(3):
        image = np.clip(x + 0.05 * step, 0, 1)
        loss, grad = objective(image)
        grad = grad.copy()
        expected_loss, expected_grad = Objective(Network(vgg19, "cpu"), content, [style], fused=False,
                                                 **WEIGHTS)(image)
        assert np.linalg.norm(grad - expected_grad) / np.linalg.norm(expected_grad) < 1e-4
        assert abs(loss - expected_loss) / abs(expected_loss) < 1e-4


@pytest.mark.parametrize("way", WAYS)
def test_cotangents_of_layers_no_longer_used_are_zeroed_on_the_device(vgg19, way):
    network = network_for(vgg19, way)
    content, style, x = gradient(48, 64), noise(48, 48), np.random.default_rng(6).random((1, 3, 48, 64))
    # the two-graph path: the objective graph binds no cotangent
    many = Objective(network, content, [style], fused=False, **WEIGHTS)
    few = Objective(network, content, [style], style_layers=("relu1_1",), fused=False, **WEIGHTS)
    many(x)
    loss, grad = few(x)
    expected_loss, expected_grad = Objective(Network(vgg19, "cpu"), content, [style], style_layers=("relu1_1",),
                                             **WEIGHTS)(x)
    assert np.linalg.norm(grad - expected_grad) / np.linalg.norm(expected_grad) < 1e-4


@pytest.mark.parametrize("way", WAYS)
def test_stylization_loss_falls(models_dir, isolated, way, monkeypatch):
    if way == "cpu-device-path":
        real_init = Network.__init__

        def init(self, *args, **kwargs):
            real_init(self, *args, **kwargs)
            self.shares_host_memory = False

        monkeypatch.setattr(Network, "__init__", init)
    provider = "cuda" if way == "cuda" else "cpu"
    stylizer = Stylizer(size=64, iterations=20, models_dir=models_dir(), provider=provider)
    losses = []
    try:
        result = stylizer.run(gradient(), noise(), progress=lambda p: losses.append(p.loss))
    except ProviderError as exc:
        pytest.skip(str(exc))
    losses = [loss for loss in losses if np.isfinite(loss)]  # the start frame carries no loss yet
    assert stylizer.network.device == provider
    assert stylizer.network.shares_host_memory == (way == "cpu")
    assert len(losses) >= 2 and result.iterations >= 10
    assert result.loss < losses[0]


@pytest.mark.parametrize("way", WAYS)
def test_tiles_of_several_window_shapes_reuse_the_host_buffers(vgg19, way):
    """A non-square image whose last windows are larger (up to the stride) than the others: the gradient is the
    host path's, and changing window shape allocates no new host buffers."""
    from nst_rt.objective.tiled import TiledObjective

    content, style = gradient(72, 104), noise(48, 48)
    x = np.random.default_rng(8).random((1, 3, 72, 104))
    network = network_for(vgg19, way)
    objective = TiledObjective(network, content, [style], tile=32, halo=16, **WEIGHTS)
    shapes = {(t.window[1] - t.window[0], t.window[3] - t.window[2]) for t in objective.tiles}
    assert len(shapes) > 1  # the case in question: windows of more than one shape
    objective(x)
    buffers = {name: id(array) for name, array in network._flat.items()}
    loss, grad = objective(np.clip(x + 0.05, 0, 1))
    assert {name: id(array) for name, array in network._flat.items()} == buffers
    expected_loss, expected_grad = TiledObjective(Network(vgg19, "cpu"), content, [style], tile=32, halo=16,
                                                  **WEIGHTS)(np.clip(x + 0.05, 0, 1))
    assert np.linalg.norm(grad - expected_grad) / np.linalg.norm(expected_grad) < 1e-5
    assert abs(loss - expected_loss) <= 1e-6 * abs(expected_loss)


@pytest.mark.parametrize("fused, runs", [(False, 2), (True, 1)], ids=["two-graphs", "objective-graph"])
def test_device_path_follows_io_binding_semantics(vgg19, monkeypatch, fused, runs):
    """Device memory comes from the sessions (no OrtValue allocated outside them), and every run whose inputs
    were written first synchronises them."""
    from onnxruntime.capi.onnxruntime_inference_collection import IOBinding

    calls = []
    real_sync = IOBinding.synchronize_inputs
    monkeypatch.setattr(IOBinding, "synchronize_inputs", lambda self: (calls.append("sync"), real_sync(self))[1])

    def outside_the_session(*args, **kwargs):
        raise AssertionError("a device buffer allocated outside the sessions' arenas")

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_shape_and_type", staticmethod(outside_the_session))
    network = network_for(vgg19, "cpu-device-path")
    objective = Objective(network, gradient(48, 64), [noise(48, 48)], fused=fused, **WEIGHTS)
    x = np.random.default_rng(7).random((1, 3, 48, 64))
    calls.clear()  # the targets' runs bind nothing
    for step in range(2):
        objective(np.clip(x + 0.1 * step, 0, 1))
    assert calls == ["sync"] * 2 * runs  # each run of each step (forward and backward, or the objective graph)
