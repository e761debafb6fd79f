"""The objective graph reading the image from, and writing the gradient into, buffers of the caller's array module
(nst_rt/network/device_buffers.py, nst_rt/objective/fused.py), on the CPU provider: numpy, and the stand-in
device namespace of tests/strict_xp.py, whose arrays refuse conversion to numpy and are bound by pointer as
CuPy's are. What CUDA adds (the streams) is run by tests/test_gpu.py on a GPU."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from nst_rt.errors import DeviceNotice, OptionError
from nst_rt.network import device_buffers
from nst_rt.network.session import Network
from nst_rt.objective.whole import Objective
from nst_rt.pipeline.stylizer import Stylizer
from strict_xp import StrictArray, strict, to_strict

from synthetic import gradient, noise

NO_TV = dict(content_weight=1.0, style_weight=10.0, tv_weight=0.0, normalize=True)
WITH_TV = {**NO_TV, "tv_weight": 10.0}
MODULES = {"numpy": (np, np.asarray), "stand-in": (strict, to_strict)}


def host(a) -> np.ndarray:
    return strict.asnumpy(a) if isinstance(a, StrictArray) else a


def points(count=3):
    x = np.random.default_rng(4).random((1, 3, 40, 56))
    return [np.clip(x + 0.07 * step, 0, 1) for step in range(count)]


def copying_objective(vgg19, **weights):
    """Today's copying path on the CPU provider: the image bound as a host input copied at each call, the
    gradient an output ORT copies into a host array."""
    network = Network(vgg19, "cpu")
    network.shares_host_memory = False
    objective = Objective(network, gradient(40, 56), [noise()], **weights)
    assert objective._fused is not None and not objective._fused.by_pointer
    return objective


@pytest.mark.parametrize("module", list(MODULES))
def test_the_gradient_is_the_bound_buffer_and_equals_the_copying_path_bit_for_bit(vgg19, module):
    xp, upload = MODULES[module]
    objective = Objective(Network(vgg19, "cpu"), gradient(40, 56), [noise()], xp=xp, **NO_TV)
    fused = objective._fused
    assert fused.by_pointer and objective.xp is xp
    copying = copying_objective(vgg19, **NO_TV)
    for x in points():
        value, grad = objective(upload(x))
        assert grad is fused.grad and isinstance(grad, type(upload(x)))
        # ONNX Runtime's own output is the buffer: its address is the gradient's
        written = {v.data_ptr() for v in fused.binding.get_outputs()}
        assert device_buffers.placement(grad)[2] in written
        expected_value, expected_grad = copying(x)
        assert value == expected_value
        np.testing.assert_array_equal(host(grad), expected_grad)


@pytest.mark.parametrize("module", list(MODULES))
def test_with_tv_the_optimisers_float64_buffer_gets_the_gradient(vgg19, module):
    xp, upload = MODULES[module]
    objective = Objective(Network(vgg19, "cpu"), gradient(40, 56), [noise()], xp=xp, **WITH_TV)
    copying = copying_objective(vgg19, **WITH_TV)
    out = xp.empty((1, 3, 40, 56))
    for x in points(2):
        value, grad = objective(upload(x), out=out)
        assert grad is out
        expected_value, expected_grad = copying(x, out=np.empty(x.shape))
        assert value == expected_value
        np.testing.assert_array_equal(host(grad), expected_grad)
        assert objective.terms_at(value) == copying.terms_at(expected_value)


def test_an_image_changed_in_place_is_read_at_the_next_evaluation(vgg19, monkeypatch):
    """The optimiser hands the same buffer each time with new values in it: each evaluation is that point's, and
    each run waits for the module's queued copy first (on CUDA a missing wait reads the last image)."""
    order = []
    real_settle = device_buffers.settle
    monkeypatch.setattr(device_buffers, "settle", lambda xp: (xp is strict and order.append("settle"),
                                                               real_settle(xp))[1])
    objective = Objective(Network(vgg19, "cpu"), gradient(40, 56), [noise()], xp=strict, **NO_TV)
    run = objective._fused.session.run_with_iobinding
    objective._fused.session.run_with_iobinding = lambda binding: (order.append("run"), run(binding))[1]
    fresh = Objective(Network(vgg19, "cpu"), gradient(40, 56), [noise()], fused=True, **NO_TV)
    iterate = to_strict(np.zeros((1, 3, 40, 56)))
    seen = []
    for x in points():
        iterate[...] = to_strict(x)
        value, grad = objective(iterate)
        seen.append(value)
        expected_value, expected_grad = fresh(x)
        assert value == expected_value
        np.testing.assert_array_equal(host(grad), expected_grad)
    assert len(set(seen)) == 3
    assert order == ["settle", "run"] * 3


def test_an_array_on_another_device_is_refused(vgg19):
    class OnGpu(StrictArray):
        __slots__ = ()

        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA

    network = Network(vgg19, "cpu")
    binding = network.objective_session().io_binding()
    with pytest.raises(OptionError, match="the image is on cuda:0 but the network runs on cpu:0"):
        device_buffers.bind(binding, "image", OnGpu(np.zeros((1, 3, 40, 56), np.float32)), network)
    with pytest.raises(ValueError, match="C-contiguous"):
        device_buffers.placement(np.zeros((4, 4), np.float32)[:, ::2])


def test_the_array_module_of_a_run(vgg19, monkeypatch):
    network = Network(vgg19, "cpu")
    assert device_buffers.array_module_for(network) is np
    network.device = "cuda"  # what a CUDA network says; nothing runs here
    monkeypatch.setitem(sys.modules, "cupy", None)  # not installed
    with pytest.warns(DeviceNotice, match="CuPy is not installed, so the optimiser runs on the host"):
        assert device_buffers.array_module_for(network) is np
    gpu = types.SimpleNamespace(current=1)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDevice=lambda: gpu.current)))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.warns(DeviceNotice, match="CuPy uses GPU 1, the network GPU 0"):
        assert device_buffers.array_module_for(network) is np
    gpu.current = 0
    assert device_buffers.array_module_for(network) is cupy


def test_a_run_keeps_its_iterate_in_the_array_module_of_its_network(models, isolated):
    """A two-scale run with the stand-in as the run's array module (what CuPy is on CUDA): the optimiser, the
    objective graph's image and gradient stay in it; what crosses to the host is a scale's start and result, a
    preview when one is drawn, and scalars. The picture is the numpy run's, bit for bit."""
    def run(xp):
        stylizer = Stylizer(size=64, iterations=8, scales=2, models_dir=models, provider="cpu")
        assert stylizer.xp is np  # the CPU provider's
        stylizer.xp = xp
        seen = []
        strict.crossings = 0
        result = stylizer.run(gradient(), noise(), progress=seen.append)
        return result, strict.crossings, seen

    host, _, _ = run(np)
    device, crossed, seen = run(strict)
    np.testing.assert_array_equal(device.image, host.image)
    assert device.loss == host.loss and device.evaluations == host.evaluations
    sizes = {p.scale: p.image().shape for p in seen if p.iteration == 0}  # a preview comes to the host
    assert [p.image().shape for p in seen[-1:]] == [device.image.shape]
    pixels = sum(3 * h * w for h, w, _ in sizes.values())
    # per scale: the start uploaded, the result brought back (and its preview); per iteration: dot products
    assert crossed <= 3 * pixels + 16 * 20 * 8
    assert crossed < device.evaluations * min(3 * h * w for h, w, _ in sizes.values())  # no image per evaluation


def test_the_two_graphs_losses_run_on_the_device_and_equal_the_numpy_ones(vgg19):
    """Layers outside the objective graph: the two graphs write their activations into, and read the cotangents
    from, buffers of the stand-in, where the losses run; the terms and the gradient are the numpy path's."""
    kw = dict(style_layers=("relu1_2", "relu3_1"), **WITH_TV)
    network = Network(vgg19, "cpu")
    objective = Objective(network, gradient(40, 56), [noise()], xp=strict, **kw)
    expected = Objective(Network(vgg19, "cpu"), gradient(40, 56), [noise()], **kw)
    assert objective._fused is None and objective.xp is strict
    for x in points():
        strict.crossings = 0
        value, grad = objective(to_strict(x), out=strict.empty(x.shape))
        assert strict.crossings == x.size  # the point's upload in this test, nothing else
        assert all(isinstance(a, StrictArray) for a in network._bound.activations.values())
        expected_value, expected_grad = expected(x, out=np.empty(x.shape))
        assert value == expected_value and objective.terms_at(value) == expected.terms_at(expected_value)
        np.testing.assert_array_equal(strict.asnumpy(grad), expected_grad)


def test_masked_terms_run_on_the_device_and_equal_the_numpy_ones(vgg19):
    """Guided Gram matrices (one style over a box of the picture, the other over the rest) and a masked content
    term on the stand-in, against numpy, bit for bit."""
    left = np.zeros((40, 56), np.float32)
    left[:, :20] = 1.0
    kw = dict(style_masks=[left, 1 - left], content_mask=np.linspace(0, 1, 40 * 56).reshape(40, 56), **WITH_TV)
    styles = [noise(), noise(seed=2)]
    objective = Objective(Network(vgg19, "cpu"), gradient(40, 56), styles, xp=strict, **kw)
    expected = Objective(Network(vgg19, "cpu"), gradient(40, 56), styles, **kw)
    assert objective._fused is None and objective.style_masked and objective.content_masked
    assert any(t.box is not None for terms in objective.style_masked.values() for t in terms)
    for x in points(2):
        strict.crossings = 0
        value, grad = objective(to_strict(x), out=strict.empty(x.shape))
        assert strict.crossings == x.size
        expected_value, expected_grad = expected(x, out=np.empty(x.shape))
        assert value == expected_value and objective.terms_at(value) == expected.terms_at(expected_value)
        np.testing.assert_array_equal(strict.asnumpy(grad), expected_grad)


def test_a_two_graph_run_keeps_its_iterate_on_the_device_and_a_wrapped_one_on_the_host(models, isolated):
    def run(xp, iterations=6, **kw):
        stylizer = Stylizer(size=64, iterations=iterations, scales=1, models_dir=models, provider="cpu",
                            style_layers=("relu1_2",))
        stylizer.xp = xp
        strict.crossings = 0
        return stylizer.run(gradient(), noise(), **kw), strict.crossings

    (host, _), (device, crossed) = run(np), run(strict)
    np.testing.assert_array_equal(device.image, host.image)
    assert device.loss == host.loss and device.evaluations == host.evaluations
    # what the targets, the start and the result cost is paid once; an evaluation adds scalars only
    longer, more = run(strict, iterations=12)
    assert 0 < more - crossed < (longer.evaluations - device.evaluations) * device.image.size / 20
    wrapped = []

    def wrap(objective, shape):
        wrapped.append(objective.xp)
        return objective

    assert run(strict, wrap_objective=wrap)[0].iterations == 6
    assert wrapped == [np]


def test_a_run_stopped_and_resumed_from_a_checkpoint_on_the_device_equals_the_uninterrupted_one(models, tmp_path):
    """The checkpoint copies the device state to the host when it is written; the resumed run reads it back into
    the device's buffers and ends at the uninterrupted numpy run's picture, bit for bit."""
    from nst_rt.pipeline.checkpoint import Checkpoint

    def stylizer(xp):
        made = Stylizer(models_dir=models, size=48, scales=2, iterations=8, threads=1, provider="cpu")
        made.xp = xp
        return made

    def stop(p):
        if (p.scale, p.iteration) == (2, 3):
            raise KeyboardInterrupt

    whole = stylizer(np).run(gradient(), noise())
    path = tmp_path / "out.png.ckpt"
    stopped = stylizer(strict).run(gradient(), noise(), stop, checkpoint=Checkpoint(path, 1e-9, write_share=None))
    assert stopped.interrupted and path.exists()
    resumed = stylizer(strict).run(gradient(), noise(), checkpoint=Checkpoint(path, 1e-9, write_share=None,
                                                                                resume=True))
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.loss, resumed.iterations, resumed.evaluations) == (whole.loss, whole.iterations, whole.evaluations)


class _Reduced:
    """The CPU network marked as a reduced-precision one (a TF32 CUDA network's part in the switch to fp32)."""

    def __init__(self, network):
        self._network, self.precision = network, "tf32"

    def __getattr__(self, name):
        return getattr(self._network, name)


def test_going_on_in_fp32_moves_the_point_into_the_new_objectives_module(models):
    from nst_rt.pipeline.precision_switch import SwitchPolicy

    def run(xp):
        stylizer = Stylizer(models_dir=models, size=32, iterations=10, threads=1, provider="cpu")
        stylizer.network, stylizer._fp32 = _Reduced(stylizer.network), stylizer.network
        stylizer.switch_policy, stylizer.xp = SwitchPolicy(struggle=float("inf"), finish_fp32=5), xp
        return stylizer.run(gradient(), noise())

    host, device = run(np), run(strict)
    assert device.fp32_from == host.fp32_from == {1: (5, "the last iterations run in fp32")}
    np.testing.assert_array_equal(device.image, host.image)
    assert device.loss == host.loss and device.evaluations == host.evaluations


def test_the_memory_plan_knows_where_the_optimiser_runs(models, isolated, monkeypatch):
    import nst_rt.pipeline.stylizer as stylizer_module

    asked, real = [], stylizer_module.plan_scales
    monkeypatch.setattr(stylizer_module, "plan_scales",
                        lambda *a, **kw: (asked.append(kw.get("device_optimizer")), real(*a, **kw))[1])
    for xp, wrap in ((np, None), (strict, None), (strict, lambda objective, shape: objective)):
        stylizer = Stylizer(size=48, iterations=2, scales=1, models_dir=models, provider="cpu")
        stylizer.xp = xp
        stylizer.run(gradient(), noise(), wrap_objective=wrap)
    assert asked == [False, True, False]


def test_the_command_line_says_the_device_notice_once(capsys):
    import warnings

    from nst_rt.cli.common import notices

    with notices():
        for _ in range(2):  # a batch makes a Stylizer per model: the note is said once
            warnings.warn("CuPy is not installed, so the optimiser runs on the host", DeviceNotice)
    assert capsys.readouterr().err.splitlines() == ["nst-rt: note: CuPy is not installed, so the optimiser runs on "
                                                    "the host"]
