"""Estimate the memory a stylization needs before starting it, and refuse runs that cannot fit.

The estimate is built from the sizes the run allocates: a multiple of one image's activations (the
bound buffers and ONNX Runtime's working memory, calibrated against measured peak RSS, see
``ACTIVATION_FACTOR``), and the optimiser's float64 vectors and L-BFGS history.
"""

from __future__ import annotations

import os

from .errors import MemoryLimitError
from .network import activation_shape

# Peak RSS in units of one set of activations (all ReLU outputs of one image), fitted to measured peaks of
# CPU runs at 256, 512 and 1024 px on VGG-19 (550 MB, 1.5 GB, 5.6 GB; the fit is 6.1-6.4, rounded up): the
# bound activation and cotangent buffers, ONNX Runtime's blocked-layout copies and arena, loss temporaries.
ACTIVATION_FACTOR = 6.5
FIXED_BYTES = 300 << 20  # both graphs' weights (~100 MB), prepacked copies, Python, numpy, onnxruntime
OPTIMIZER_VECTORS = 12  # float64 vectors of image size the optimiser and objective keep


def activation_bytes(network, height: int, width: int) -> int:
    total = 0
    for layer in network.layers:
        _, c, h, w = activation_shape(layer, network.channels[layer], height, width)
        total += c * h * w * 4
    return total


def estimate_bytes(network, height: int, width: int, history: int, style_shapes=()) -> int:
    """Peak memory of a run at ``height`` x ``width`` with an L-BFGS history of ``history`` pairs.

    Style images are run through the network before the optimisation starts, so the larger of the two
    activation sets counts, not their sum.
    """
    acts = max([activation_bytes(network, height, width)] + [activation_bytes(network, h, w) for h, w in style_shapes])
    optimizer = (OPTIMIZER_VECTORS + 2 * history) * 3 * height * width * 8
    return FIXED_BYTES + int(ACTIVATION_FACTOR * acts) + optimizer


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
