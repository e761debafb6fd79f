"""The style and content terms and their image gradient from the model's objective graph: one run of one
session in place of the features run, the numpy losses and the VJP run (export/objective_graph.py).

The activations then never leave ONNX Runtime: on a CPU nothing activation-sized crosses the graph boundary,
and on a GPU only the image and the gradient travel. The graph holds the losses of fixed layers; ``FusedTerms.fits`` says whether an objective's
terms are among them. It holds ``nst_rt.objective.losses``'s recipe: a layer's weight and target here are the
ones the numpy path would use, and the terms agree to float32 rounding (the sums run in float32 in the graph).

The image and the gradient are buffers of the caller's array module (``xp``), bound by pointer
(``nst_rt.network.device_buffers``): numpy on the host, CuPy on CUDA, where the graph reads the image from and
writes the gradient into device memory the optimiser's module owns, and nothing image-sized crosses to the
host. A numpy image on a device network (no CuPy) is copied to the device when it is bound, at each call.
"""

from __future__ import annotations

import numpy as np

from ..model_format import (CONTENT_LOSS, CONTENT_WEIGHTS, GRAD_OUTPUT, IMAGE_INPUT, STYLE_LOSS, STYLE_WEIGHTS,
                            content_target_name, gram_target_name)
from ..network import device_buffers
from ..network.session import OPENVINO, activation_shape, ort_value

# Providers on which one objective-graph evaluation measured slower than the two graphs with the numpy losses
# (benchmarks/objective_graph.py, docs/performance.md): OpenVINO, 1.4x in bf16 and 1.1x in fp32 at 512 px.
SLOWER_ON = (OPENVINO,)


class FusedTerms:
    """``(style, content, gradient)`` of an image from the objective graph, for fixed weights and targets."""

    def __init__(self, network, shape: tuple[int, ...], style: dict[str, float], style_targets: dict[str, np.ndarray],
                 content: dict[str, float], content_targets: dict[str, np.ndarray], xp=np):
        style_layers, content_layers = network.model.objective_layers
        _, _, height, width = shape
        self.session = network.objective_session()
        self.xp = xp
        self.image = xp.zeros(shape, xp.float32)
        self.grad = xp.zeros(shape, xp.float32)
        self.losses = {STYLE_LOSS: np.zeros((), np.float32), CONTENT_LOSS: np.zeros((), np.float32)}
        # Layers of the graph this objective leaves out get weight 0 and a zero target.
        inputs = {STYLE_WEIGHTS: np.array([style.get(l, 0.0) for l in style_layers], np.float32),
                  CONTENT_WEIGHTS: np.array([content.get(l, 0.0) for l in content_layers], np.float32)}
        for l in style_layers:
            c = network.channels[l]
            inputs[gram_target_name(l)] = np.ascontiguousarray(style_targets.get(l, np.zeros((c, c))), np.float32)
        for l in content_layers:
            target = content_targets.get(l)
            if target is None:
                target = np.zeros(activation_shape(l, network.channels[l], height, width), np.float32)
            inputs[content_target_name(l)] = np.ascontiguousarray(target, np.float32)
        self.inputs = inputs  # kept alive: the binding reads them (on the host, by pointer)
        self.binding = self.session.io_binding()
        for name, array in inputs.items():  # on a device they are copied now, once
            self.binding.bind_cpu_input(name, array)
        self.on_host = network.shares_host_memory
        # Read and written by pointer where the buffers live where the graph runs: numpy on a host provider, a
        # device module's arrays on their device. A numpy image on a device is copied to it when bound, per call.
        self.by_pointer = self.on_host or xp is not np
        if self.by_pointer:
            device_buffers.bind(self.binding, IMAGE_INPUT, self.image, network)
            device_buffers.bind(self.binding, GRAD_OUTPUT, self.grad, network, output=True)
        else:  # the device result is copied into the host buffer at the end of each run
            self.binding.bind_ortvalue_output(GRAD_OUTPUT, ort_value(self.grad))
        for name, array in self.losses.items():
            self.binding.bind_ortvalue_output(name, ort_value(array))

    @staticmethod
    def fits(network, style: dict, content: dict, masked: bool) -> bool:
        """Should the model's objective graph compute these terms: it holds them (unmasked, every layer among the
        graph's), and the network's provider runs it faster than the two graphs?"""
        style_layers, content_layers = network.model.objective_layers
        return (network.providers[0] not in SLOWER_ON and not masked and bool(style_layers)
                and set(style) <= set(style_layers) and set(content) <= set(content_layers))

    def __call__(self, x) -> tuple[float, float, np.ndarray]:
        """Style term, content term and the image gradient (float32, a buffer of ``xp`` the next call overwrites)
        at ``x``, an array of ``xp``."""
        self.xp.copyto(self.image, x, casting="same_kind")  # on a device: on the device, float64 to float32
        if self.by_pointer:
            device_buffers.settle(self.xp)  # the copy is queued on the array module's stream, the run on ORT's
        else:
            self.binding.bind_cpu_input(IMAGE_INPUT, self.image)  # a device copies a host input when it is bound
            self.binding.synchronize_inputs()
        self.session.run_with_iobinding(self.binding)
        if not self.on_host:
            self.binding.synchronize_outputs()
        return float(self.losses[STYLE_LOSS]), float(self.losses[CONTENT_LOSS]), self.grad
