"""nst-rt: Gatys neural style transfer on ONNX Runtime, with numpy losses and its own L-BFGS.

Heavy imports (onnxruntime, the pipeline) are deferred until first use, so ``import nst_rt`` is cheap.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from importlib import metadata as _metadata

# numpy's OpenBLAS keeps its idle threads spinning for ~0.1 s after each product; in the gap between two
# ONNX Runtime runs that steals the cores ORT needs (measured: the graphs ran 1.4x slower at 128 px). A
# short timeout lets them sleep. It only takes effect if numpy is not imported yet; embedders may set it.
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

try:
    __version__ = _metadata.version("nst-rt")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "stylize", "batch", "Objective", "TiledObjective", "load_model", "minimize"]


def __getattr__(name: str):
    if name == "stylize":
        from .pipeline import stylize

        return stylize
    if name == "batch":
        from .batching import batch

        return batch
    if name == "Objective":
        from .objective import Objective

        return Objective
    if name == "TiledObjective":
        from .tiling import TiledObjective

        return TiledObjective
    if name == "load_model":
        from .model import load_model

        return load_model
    if name == "minimize":
        from .optimize import minimize

        return minimize
    raise AttributeError(f"module 'nst_rt' has no attribute {name!r}")
