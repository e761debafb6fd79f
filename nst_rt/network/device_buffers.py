"""Arrays a graph reads and writes in place: the graphs' inputs and outputs bound by pointer to buffers of the
optimiser's array module, and the choice of that module for a network.

A buffer is bound with ONNX Runtime's ``IOBinding.bind_input``/``bind_output`` and its ``buffer_ptr``: a numpy
array on the host (``a.ctypes.data``, device ``cpu``), a CuPy array on its CUDA device (``a.data.ptr``, device
``cuda``). Where the array lives comes from its ``__dlpack_device__()``, the array API's one way to say it, so
a buffer of another library is refused rather than read from the wrong memory.

Stream contract (CuPy and ONNX Runtime's CUDA stream): CuPy queues the copy of the iterate into the bound image
(and the losses' writes into the bound cotangents) on its current stream; ONNX Runtime runs the graph on a
stream of its own. Before each run ``settle`` waits for CuPy's current stream, so the graph reads the new
image, never the last one; ``run_with_iobinding`` synchronises ONNX Runtime's stream before it returns, so
the outputs (gradient, activations) are complete before CuPy reads them. The other contract, a shared
``user_compute_stream`` (the CUDA provider's option, set when the session is made), would order the two
without waiting; it ties each session to one CuPy stream for its life and still leaves ONNX Runtime's
end-of-run synchronisation in place, so it would save one wait per run, after a copy the run must wait for
anyway (docs/gpu.md).
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import DeviceNotice, OptionError, install_hint

# DLPack's device types (kDLCPU, kDLCUDA, kDLCUDAManaged: managed memory is addressable by the device too).
_DLPACK_DEVICES = {1: "cpu", 2: "cuda", 13: "cuda"}


def placement(a: Any) -> tuple[str, int, int]:
    """``(device_type, device_id, pointer)`` of a C-contiguous array, as ``IOBinding.bind_input`` takes them."""
    if not a.flags.c_contiguous:
        raise ValueError("a bound buffer must be C-contiguous")
    kind, device_id = a.__dlpack_device__()
    device = _DLPACK_DEVICES.get(int(kind))
    if device is None:
        raise OptionError(f"arrays of {type(a).__module__} live on a device ONNX Runtime cannot bind (DLPack "
                          f"device type {int(kind)}); use numpy or CuPy")
    pointer = a.ctypes.data if isinstance(a, np.ndarray) else a.data.ptr  # CuPy's MemoryPointer
    return device, int(device_id), int(pointer)


def bind(binding, name: str, a: Any, network, output: bool = False) -> None:
    """Bind input (or output) ``name`` of ``binding`` to ``a``'s memory, which must be where ``network`` runs."""
    device, device_id, pointer = placement(a)
    if (device, device_id) != (network.device, network.device_id if device != "cpu" else 0):
        raise OptionError(f"the image is on {device}:{device_id} but the network runs on "
                          f"{network.device}:{network.device_id}; make the arrays on the network's device")
    bind_to = binding.bind_output if output else binding.bind_input
    bind_to(name, device, device_id, np.dtype(str(a.dtype)).type, list(a.shape), pointer)


def settle(xp: ModuleType) -> None:
    """Wait for the work ``xp`` has queued (the copy into a bound image) before a graph reads it: CuPy's
    current stream; numpy has nothing queued."""
    cuda = getattr(xp, "cuda", None) if xp is not np else None
    if cuda is not None:
        cuda.get_current_stream().synchronize()


def array_module_for(network) -> ModuleType:
    """The array module a run on ``network`` keeps its iterate in: CuPy on a CUDA network where CuPy imports (and
    uses the network's GPU), else numpy (with a notice on CUDA: the optimiser then runs on the host)."""
    if network.device != "cuda":
        return np
    try:
        import cupy
    except ImportError:
        warnings.warn("CuPy is not installed, so the optimiser runs on the host and the image and gradient cross "
                      f"to the device at each evaluation; {install_hint('gpu')} keeps them on the GPU",
                      DeviceNotice, stacklevel=3)
        return np
    current = cupy.cuda.runtime.getDevice()
    if current != network.device_id:
        warnings.warn(f"CuPy uses GPU {current}, the network GPU {network.device_id}, so the optimiser runs on the "
                      "host; pick the GPU with CUDA_VISIBLE_DEVICES instead", DeviceNotice, stacklevel=3)
        return np
    return cupy
