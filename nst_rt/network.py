"""ONNX Runtime sessions for the two graphs, and the buffers that carry data between them.

One optimisation step is: features run (image -> activations), numpy losses (activations ->
cotangents), VJP run (activations + cotangents -> image gradient). ``Network.bind`` preallocates every
buffer once per image size and binds them to both sessions, so each step copies nothing: on CPU the
features graph writes its activations straight into numpy arrays that the losses read and the VJP
graph reads back; on CUDA the activations stay on the device for the VJP and are copied to the host
only for the losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ModelError, OptionError, ProviderError
from .model import ModelInfo, import_onnxruntime
from .model_format import GRAD_OUTPUT, IMAGE_INPUT, MIN_SIZE, cotangent_name, layer_depth

PROVIDERS = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


def choose_providers(provider: str = "auto") -> list[str]:
    """ONNX Runtime provider list for ``auto`` (CUDA when offered, else CPU), ``cpu`` or ``cuda``."""
    if provider not in PROVIDERS:
        raise OptionError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    available = available_providers()
    if provider == "cuda" and CUDA not in available:
        raise ProviderError(
            f"the CUDA execution provider is not available (onnxruntime offers {', '.join(available)}); "
            f"install 'nst-rt[gpu]' on a machine with CUDA, or use --provider cpu"
        )
    if provider == "cpu" or (provider == "auto" and CUDA not in available):
        return [CPU]
    return [CUDA, CPU]  # CPU takes any node CUDA has no kernel for


def activation_shape(layer: str, channels: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Shape of ReLU ``layer`` for an image of height x width: each earlier pooling halved it (floor)."""
    depth = layer_depth(layer)
    return (1, channels, height >> depth, width >> depth)


@dataclass
class _Bound:
    height: int
    width: int
    image: np.ndarray
    activations: dict  # layer -> host array (CPU: written by ORT; CUDA: copied from the device)
    cotangents: dict  # layer -> host array the losses write into (zeros for layers no loss uses)
    grad: np.ndarray
    features_binding: object
    vjp_binding: object
    device_activations: dict | None


class Network:
    """The features and VJP sessions of one exported model on one execution provider."""

    def __init__(self, model: ModelInfo, provider: str = "auto", threads: int | None = None):
        ort = import_onnxruntime()
        if threads is not None and threads < 1:
            raise OptionError(f"--threads must be at least 1, got {threads}")
        self.model = model
        self.providers = choose_providers(provider)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Between the two runs numpy's BLAS threads compute the losses; spinning ORT workers would steal their cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Cotangents of a converging run get tiny; denormal arithmetic would slow the VJP by orders of magnitude.
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        try:
            self.features_session = ort.InferenceSession(str(model.features_path), options, providers=self.providers)
            self.vjp_session = ort.InferenceSession(str(model.vjp_path), options, providers=self.providers)
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load {model.path} ({str(exc).splitlines()[0][:160]}); "
                             f"re-export it with --force") from None
        if self.providers[0] == CUDA and CUDA not in self.features_session.get_providers():
            # onnxruntime falls back to CPU when the CUDA libraries fail to load; an explicit request must not.
            if provider == "cuda":
                raise ProviderError("onnxruntime could not start the CUDA provider (CUDA or cuDNN libraries missing?); "
                                    "use --provider cpu")
            self.providers = [CPU]
        self.device = "cuda" if self.providers[0] == CUDA else "cpu"
        self.layers = [o.name for o in self.features_session.get_outputs()]
        self.channels = {o.name: int(o.shape[1]) for o in self.features_session.get_outputs()}
        vjp_inputs = {i.name for i in self.vjp_session.get_inputs()}
        missing = [n for n in self.layers + [cotangent_name(n) for n in model.cotangent_layers] if n not in vjp_inputs]
        if self.layers != model.layers or missing:
            raise ModelError(f"the graphs of {model.path} do not match their metadata; re-export it with --force")
        self._bound: _Bound | None = None
        self._written: set[str] = set()

    def features(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Activations of an (1, 3, H, W) image as fresh arrays (used for content and style targets)."""
        check_image_size(image.shape[2], image.shape[3])
        outputs = self.features_session.run(None, {IMAGE_INPUT: np.ascontiguousarray(image, dtype=np.float32)})
        return dict(zip(self.layers, outputs))

    def bind(self, height: int, width: int) -> _Bound:
        """Allocate and bind the buffers of the optimisation loop for one image size (kept until the size changes)."""
        if self._bound and (self._bound.height, self._bound.width) == (height, width):
            return self._bound
        check_image_size(height, width)
        ort = import_onnxruntime()
        self._bound, self._written = None, set()  # free the previous size's buffers first
        shapes = {n: activation_shape(n, self.channels[n], height, width) for n in self.layers}
        image = np.zeros((1, 3, height, width), np.float32)
        activations = {n: np.empty(s, np.float32) for n, s in shapes.items()}
        cotangents = {n: np.zeros(s, np.float32) for n, s in shapes.items()}
        grad = np.empty((1, 3, height, width), np.float32)
        features_binding = self.features_session.io_binding()
        vjp_binding = self.vjp_session.io_binding()
        device_activations = None
        if self.device == "cpu":
            for n, array in activations.items():
                _bind_array(features_binding.bind_output, n, array)
                _bind_array(vjp_binding.bind_input, n, array)
        else:
            device_activations = {n: ort.OrtValue.ortvalue_from_shape_and_type(s, np.float32, "cuda", 0)
                                  for n, s in shapes.items()}
            for n, value in device_activations.items():
                features_binding.bind_ortvalue_output(n, value)
                vjp_binding.bind_ortvalue_input(n, value)
        _bind_array(features_binding.bind_input, IMAGE_INPUT, image)
        for n, array in cotangents.items():
            _bind_array(vjp_binding.bind_input, cotangent_name(n), array)
        _bind_array(vjp_binding.bind_output, GRAD_OUTPUT, grad)
        self._bound = _Bound(height, width, image, activations, cotangents, grad, features_binding, vjp_binding,
                             device_activations)
        return self._bound

    def forward(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run the features graph on ``image`` (any float dtype); returns the bound activation arrays."""
        bound = self.bind(image.shape[2], image.shape[3])
        np.copyto(bound.image, image, casting="same_kind")
        bound.features_binding.synchronize_inputs()
        self.features_session.run_with_iobinding(bound.features_binding)
        if bound.device_activations is not None:
            for n, value in bound.device_activations.items():
                bound.activations[n][...] = value.numpy()
        return bound.activations

    def cotangents(self, used: set[str]) -> dict[str, np.ndarray]:
        """The bound cotangent arrays; the caller overwrites those in ``used``, every other one is zero."""
        if self._bound is None:
            raise RuntimeError("call forward() before cotangents()")
        for layer in self._written - used:  # left over from an objective that used other layers
            self._bound.cotangents[layer].fill(0)
        self._written = set(used)
        return self._bound.cotangents

    def backward(self) -> np.ndarray:
        """Run the VJP graph on the last forward's activations and the cotangent arrays; returns dL/d(image)."""
        bound = self._bound
        if bound is None:
            raise RuntimeError("call forward() before backward()")
        bound.vjp_binding.synchronize_inputs()
        self.vjp_session.run_with_iobinding(bound.vjp_binding)
        bound.vjp_binding.synchronize_outputs()
        return bound.grad


def _bind_array(bind, name: str, array: np.ndarray) -> None:
    """Bind a C-contiguous float32 host array by pointer: ORT reads or writes it in place."""
    bind(name, "cpu", 0, np.float32, list(array.shape), array.ctypes.data)


def check_image_size(height: int, width: int) -> None:
    if min(height, width) < MIN_SIZE:
        raise OptionError(f"the image is {width}x{height} px but the network needs at least {MIN_SIZE} px on each "
                          f"side; use a larger --size or a less elongated image")
