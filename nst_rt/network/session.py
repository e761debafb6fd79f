"""ONNX Runtime sessions for the graphs of an export, and the buffers that carry data between two of them.

One optimisation step is: features run (image -> activations), numpy losses (activations ->
cotangents), VJP run (activations + cotangents -> image gradient). ``Network.bind`` preallocates the
buffers once per image size and binds them to both sessions. On the host (CPU and OpenVINO providers)
each step copies nothing: the features graph writes its activations straight into numpy arrays that the
losses read and the VJP graph reads back. On CUDA the device memory comes from the sessions' own arenas
(ONNX Runtime's IO binding): a host input is copied to the device when it is bound (``bind_cpu_input``),
so each step rebinds the image and the changed cotangents; the activations are outputs bound to the device,
handed to the VJP as they are, and only the layers the losses use are read back (``OrtValue.numpy()``
already returns a fresh host array); the gradient is an output bound to a host array, which ONNX Runtime
fills at the end of the run. Given an image of a device array module (CuPy on CUDA), the buffers are that
module's instead, bound by pointer as the host's are (nst_rt.network.device_buffers): the losses then read the
activations and write the cotangents where the graphs run, and nothing activation-sized crosses to the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, OptionError, ProviderError
from .model import ModelInfo, import_onnxruntime
from ..model_format import GRAD_OUTPUT, IMAGE_INPUT, MIN_SIZE, cotangent_name, layer_depth
from .precision import choose_precision, needs_probe
from ..system.array_module import array_module
from ..system.heap import release_free_heap
from . import device_buffers
from .provider_options import load_cuda_libraries, provider_settings
from .providers import CPU, CUDA, CUDA_STATUS, EXTRAS, NAMES, OPENVINO, PROVIDERS  # noqa: F401 (this module's API)

SLACK = 15  # px: the windows of a tiled image differ by less than the network's stride (16)
BOUND_SETS = 8  # host path: bindings kept for this many image sizes (a tiled image has at most 4 window shapes)


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


def choose_providers(provider: str = "auto") -> list[str]:
    """ONNX Runtime provider list for ``auto`` (CUDA, else OpenVINO, else CPU: the first onnxruntime
    offers), ``cpu``, ``cuda`` or ``openvino``. CPU comes last: it takes any node the first has no kernel for."""
    if provider not in PROVIDERS:
        raise OptionError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    available = available_providers()
    if provider == "auto":
        first = next((p for p in (CUDA, OPENVINO) if p in available), CPU)
    else:
        first = next(p for p, name in NAMES.items() if name == provider)
    if first not in available:
        raise ProviderError(
            f"the {first.removesuffix('ExecutionProvider')} execution provider is not available (onnxruntime offers {', '.join(available)}); "
            f"install 'nst-rt[{EXTRAS[first]}]' instead of the other onnxruntime package, or use --provider cpu"
        )
    return [first] if first == CPU else [first, CPU]


def activation_shape(layer: str, channels: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Shape of ReLU ``layer`` for an image of height x width: each earlier pooling halved it (floor)."""
    depth = layer_depth(layer)
    return (1, channels, height >> depth, width >> depth)


@dataclass
class _Bound:
    height: int
    width: int
    image: np.ndarray  # the image buffer (shared with ORT where the buffers are where the graphs run)
    activations: dict  # layer -> array of xp (written by ORT in place; device path: read back from the device)
    cotangents: dict  # layer -> array of xp the losses write into (zeros for layers no loss uses)
    grad: np.ndarray
    features_binding: object
    vjp_binding: object
    device: dict | None  # device path: layer -> activation OrtValue on the device (after a forward); else None
    xp: object = np  # the array module of the buffers


class Network:
    """The features and VJP sessions of one exported model on one execution provider (and its objective graph's,
    opened on first use: nst_rt.objective.fused binds that one itself)."""

    def __init__(self, model: ModelInfo, provider: str = "auto", threads: int | None = None, device_id: int = 0,
                 precision: str = "auto"):
        ort = import_onnxruntime()
        if threads is not None and threads < 1:
            raise OptionError(f"--threads must be at least 1, got {threads}")
        if device_id < 0:
            raise OptionError(f"the device id must be >= 0, got {device_id}")
        self.model, self.threads = model, threads
        self.providers = choose_providers(provider)
        self.device_id = device_id
        self.precision, self.precision_reason = choose_precision(precision, NAMES[self.providers[0]])
        if needs_probe(precision, NAMES[self.providers[0]]):
            from .probe import auto_precision, describe, probe  # measured once per machine, then cached

            decision, _ = auto_precision(model, threads, run_probe=lambda m, t: probe(m, t, network=Network))
            self.precision, self.precision_reason = decision["precision"], describe(decision)
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
        provider_options = [provider_settings(name, device_id, self.precision, threads) for name in self.providers]
        cuda_libraries = load_cuda_libraries(ort) if self.providers[0] == CUDA else ""
        self._session_settings = (options, provider_options)
        self.features_session = self._session(model.features_path)
        self.vjp_session = self._session(model.vjp_path)
        self._objective_session = None
        # What the sessions' creation freed (the parsed graphs, the folded intermediates) goes back to the system:
        # otherwise the process keeps about twice the weights it uses (docs/footprint.md).
        release_free_heap()
        if self.providers[0] == CUDA and CUDA not in self.features_session.get_providers():
            # onnxruntime falls back to CPU when the CUDA libraries fail to load; an explicit request must not.
            if provider == "cuda":
                missing = next((line for line in cuda_libraries.splitlines() if line.startswith("Failed to load")),
                               "CUDA or cuDNN libraries missing?")
                raise ProviderError(f"onnxruntime could not start the CUDA provider ({missing[:160]}); install "
                                    "CUDA 12+ and cuDNN 9, e.g. pip install 'onnxruntime-gpu[cuda,cudnn]', "
                                    "or use --provider cpu")
            self.providers = [CPU]
            self._session_settings = (options, [{}])
        self.device = "cuda" if self.providers[0] == CUDA else "cpu"
        # On the host ORT reads and writes numpy arrays by pointer. A device copies a host input when it is
        # bound, not when the graph runs, so there the buffers are OrtValues on the device, updated each step.
        self.shares_host_memory = self.device == "cpu"
        self.layers = [o.name for o in self.features_session.get_outputs()]
        self.channels = {o.name: int(o.shape[1]) for o in self.features_session.get_outputs()}
        vjp_inputs = {i.name for i in self.vjp_session.get_inputs()}
        missing = [n for n in self.layers + [cotangent_name(n) for n in model.cotangent_layers] if n not in vjp_inputs]
        if self.layers != model.layers or missing:
            raise ModelError(f"the graphs of {model.path} do not match their metadata; re-export it with --force")
        self._bound: _Bound | None = None
        # Host path: the bound sets of the last few image sizes, views into one buffer per graph input/output
        # large enough for the largest of them (tiles' windows differ by a few px: they share the memory).
        self._sets: dict[tuple[int, int], _Bound] = {}
        self._flat: dict[str, np.ndarray] = {}
        self._xp = np  # the array module of the buffers: numpy, or the device module of the images given
        self.bindings_made = 0
        self._written: set[str] = set()
        self._stale: set[str] = set()  # device path: cotangents changed on the host since they were uploaded

    def _session(self, path):
        options, provider_options = self._session_settings
        try:
            return import_onnxruntime().InferenceSession(str(path), options, providers=self.providers,
                                                         provider_options=provider_options)
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load {self.model.path} ({str(exc).splitlines()[0][:160]}); "
                             f"re-export it with --force") from None

    def objective_session(self):
        """The session of the model's objective graph, opened on first use (None for an export without one)."""
        if self._objective_session is None and self.model.objective_path is not None:
            self._objective_session = self._session(self.model.objective_path)
            release_free_heap()
        return self._objective_session

    def features(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Activations of an (1, 3, H, W) image as fresh arrays (used for content and style targets)."""
        check_image_size(image.shape[2], image.shape[3])
        outputs = self.features_session.run(None, {IMAGE_INPUT: np.ascontiguousarray(image, dtype=np.float32)})
        return dict(zip(self.layers, outputs))

    def bind(self, height: int, width: int, xp=np) -> _Bound:
        """Allocate and bind the buffers of the optimisation loop for one image size (kept until the size changes),
        in array module ``xp``: numpy, or a device module whose arrays live where the graphs run (CuPy on CUDA)."""
        if self._bound and (self._bound.height, self._bound.width, self._bound.xp) == (height, width, xp):
            return self._bound
        check_image_size(height, width)
        if xp is not self._xp:  # another module: its own buffers
            self._bound, self._sets, self._flat, self._written, self._stale, self._xp = None, {}, {}, set(), set(), xp
        in_place = self.shares_host_memory or xp is not np  # the graphs read and write the buffers by pointer
        if (height, width) in self._sets:
            self._bound = self._sets[height, width]
            return self._bound
        shapes = {n: activation_shape(n, self.channels[n], height, width) for n in self.layers}
        wanted = {IMAGE_INPUT: (1, 3, height, width), GRAD_OUTPUT: (1, 3, height, width), **shapes,
                  **{cotangent_name(n): s for n, s in shapes.items()}}
        # The host buffers have room for the largest window of a tiled image, so a change of window shape
        # reuses them (no allocation, no zero-fill). The host path also keeps each shape's bindings; the
        # device path rebuilds its bindings and re-uploads every cotangent at each change of window shape (about
        # twice per row of tiles), so that one shape's device activations live at a time: 0.5 ms a rebuild on
        # the CPU device path, measured by benchmarks/bindings.py --device-path (docs/gpu.md).
        if any(self._flat.get(k, np.empty(0)).size < math.prod(v) for k, v in wanted.items()):
            # free the previous buffers first; cotangents start at zero (layers no loss uses stay so)
            self._bound, self._sets, self._flat, self._written, self._stale = None, {}, {}, set(), set()
            # room for windows up to SLACK px larger (a tiled image's last row and column): they all fit
            room = {n: activation_shape(n, self.channels[n], height + SLACK, width + SLACK) for n in self.layers}
            room = {IMAGE_INPUT: (1, 3, height + SLACK, width + SLACK), GRAD_OUTPUT: (1, 3, height + SLACK,
                    width + SLACK), **room, **{cotangent_name(n): r for n, r in room.items()}}
            self._flat = {k: (xp.zeros if k == IMAGE_INPUT or k.startswith(cotangent_name("")) else xp.empty)(
                math.prod(room[k]), xp.float32) for k in wanted}
        host = {k: self._flat[k][:math.prod(v)].reshape(v) for k, v in wanted.items()}
        self.bindings_made += 1
        features_binding = self.features_session.io_binding()
        vjp_binding = self.vjp_session.io_binding()
        device = None if in_place else {}
        if in_place:  # by pointer; the activations stay where the features graph wrote them
            bound = [(features_binding, IMAGE_INPUT, False), (vjp_binding, GRAD_OUTPUT, True)]
            for n in self.layers:
                bound += [(features_binding, n, True), (vjp_binding, n, False), (vjp_binding, cotangent_name(n), False)]
            for binding, name, output in bound:
                device_buffers.bind(binding, name, host[name], self, output=output)
        else:
            for n in self.layers:  # allocated by the session's arena at the first run; the VJP gets them per forward
                features_binding.bind_output(n, self.device, self.device_id)
                # copied now; the used ones again before each run (backward)
                vjp_binding.bind_cpu_input(cotangent_name(n), host[cotangent_name(n)])
            vjp_binding.bind_ortvalue_output(GRAD_OUTPUT, ort_value(host[GRAD_OUTPUT]))  # Run copies the result in
        self._bound = _Bound(height, width, host[IMAGE_INPUT], {n: host[n] for n in self.layers},
                             {n: host[cotangent_name(n)] for n in self.layers}, host[GRAD_OUTPUT],
                             features_binding, vjp_binding, device, xp)
        if in_place:
            if len(self._sets) >= BOUND_SETS:
                self._sets.pop(next(iter(self._sets)))
            self._sets[height, width] = self._bound
        return self._bound

    def forward(self, image: np.ndarray, layers=None) -> dict[str, np.ndarray]:
        """Run the features graph on ``image`` (any float dtype); returns the bound activation arrays, of
        ``image``'s array module.

        On a device with host buffers only the activations in ``layers`` (default: all) are copied back to them.
        """
        xp = array_module(image)
        bound = self.bind(image.shape[2], image.shape[3], xp)
        xp.copyto(bound.image, image, casting="same_kind")
        device_buffers.settle(xp)  # the copy is queued on the module's stream, the run on ORT's
        if bound.device is not None:
            bound.features_binding.bind_cpu_input(IMAGE_INPUT, bound.image)  # the copy to the device is made here
            bound.features_binding.synchronize_inputs()
        self.features_session.run_with_iobinding(bound.features_binding)
        if bound.device is not None:
            bound.features_binding.synchronize_outputs()
            bound.device.update(zip(self.layers, bound.features_binding.get_outputs()))
            for n in self.layers:
                bound.vjp_binding.bind_ortvalue_input(n, bound.device[n])
            for n in self.layers if layers is None else layers:
                bound.activations[n] = bound.device[n].numpy()  # already a fresh host array: no second copy
        return bound.activations

    def cotangents(self, used: set[str]) -> dict[str, np.ndarray]:
        """The bound cotangent arrays; the caller overwrites those in ``used``, every other one is zero."""
        if self._bound is None:
            raise RuntimeError("call forward() before cotangents()")
        for layer in self._written - used:  # left over from an objective that used other layers
            # the whole buffer: the views of the other sizes bound share it
            self._flat.get(cotangent_name(layer), self._bound.cotangents[layer]).fill(0)
        self._stale |= self._written | set(used)
        self._written = set(used)
        return self._bound.cotangents

    def backward(self) -> np.ndarray:
        """Run the VJP graph on the last forward's activations and the cotangent arrays; returns dL/d(image)."""
        bound = self._bound
        if bound is None:
            raise RuntimeError("call forward() before backward()")
        if bound.device is not None:
            for layer in self._stale:
                bound.vjp_binding.bind_cpu_input(cotangent_name(layer), bound.cotangents[layer])
            self._stale = set()
            bound.vjp_binding.synchronize_inputs()
        device_buffers.settle(bound.xp)  # the losses' writes into the cotangents, queued on the module's stream
        self.vjp_session.run_with_iobinding(bound.vjp_binding)
        if bound.device is not None:
            bound.vjp_binding.synchronize_outputs()
        return bound.grad


def ort_value(array: np.ndarray):
    """An OrtValue that shares ``array``'s host memory."""
    return import_onnxruntime().OrtValue.ortvalue_from_numpy(array)


def check_image_size(height: int, width: int) -> None:
    if min(height, width) < MIN_SIZE:
        raise OptionError(f"the image is {width}x{height} px but the network needs at least {MIN_SIZE} px on each "
                          f"side; use a larger --size or a less elongated image")
