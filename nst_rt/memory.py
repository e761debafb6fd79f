"""Estimate the memory a stylization needs before starting it, and refuse runs that cannot fit.

The estimate is built from the sizes the run allocates: the activation and cotangent buffers of every
layer, the working memory ONNX Runtime takes on top of them (calibrated against measured peak RSS,
see ``ORT_WORKSPACE_FACTOR``), the style images' activations while their Gram matrices are taken,
and the optimiser's float64 vectors and L-BFGS history.
"""

from __future__ import annotations

import os

from .errors import MemoryLimitError
from .network import activation_shape

# Peak RSS minus the buffers nst-rt allocates itself, in units of one set of activations, measured
# with benchmarks/bench.py --memory at 128-1024 px on VGG-19 (CPU provider).
ORT_WORKSPACE_FACTOR = 2.0
FIXED_BYTES = 400 << 20  # both graphs' weights (~100 MB), prepacked copies, Python, numpy, onnxruntime
OPTIMIZER_VECTORS = 12  # float64 vectors of image size the optimiser and objective keep


def activation_bytes(network, height: int, width: int) -> int:
    total = 0
    for layer in network.layers:
        _, c, h, w = activation_shape(layer, network.channels[layer], height, width)
        total += c * h * w * 4
    return total


def estimate_bytes(network, height: int, width: int, history: int, style_shapes=()) -> int:
    """Peak memory of a run at ``height`` x ``width`` with an L-BFGS history of ``history`` pairs."""
    acts = activation_bytes(network, height, width)
    styles = max((activation_bytes(network, h, w) for h, w in style_shapes), default=0)
    pixels = 3 * height * width
    optimizer = (OPTIMIZER_VECTORS + 2 * history) * pixels * 8
    return FIXED_BYTES + int((2 + ORT_WORKSPACE_FACTOR) * acts) + int(ORT_WORKSPACE_FACTOR * styles) + optimizer


def available_bytes() -> int | None:
    """Memory the system can give without swapping (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_fits(network, height: int, width: int, history: int, style_shapes=()) -> int:
    """Raise MemoryLimitError when the estimate exceeds the available memory; return the estimate."""
    need = estimate_bytes(network, height, width, history, style_shapes)
    have = available_bytes()
    if have is not None and need > have:
        raise MemoryLimitError(
            f"a {width}x{height} run needs about {gib(need)} of memory but {gib(have)} is available; "
            f"use a smaller --size (memory grows with the pixel count) or a smaller --history"
        )
    return need
