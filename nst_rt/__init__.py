"""nst-rt: Gatys neural style transfer on ONNX Runtime, with numpy losses and its own L-BFGS.

Heavy imports (onnxruntime, the pipeline) are deferred until first use, so ``import nst_rt`` is cheap.
"""

from __future__ import annotations

import os as _os
import sys as _sys
from importlib import metadata as _metadata

from .system.threads import OPENBLAS_ENV as _OPENBLAS_ENV

if "numpy" not in _sys.modules:  # embedders may set their own value first
    for _key, _value in _OPENBLAS_ENV.items():
        _os.environ.setdefault(_key, _value)

try:
    __version__ = _metadata.version("nst-rt")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# The public API: each name, and the module that defines it (imported on first use).
_PUBLIC = {
    "stylize": "pipeline.stylizer", "Stylizer": "pipeline.stylizer", "Options": "pipeline.options",
    "batch": "batching.api", "Objective": "objective.whole", "TiledObjective": "objective.tiled",
    "Network": "network.session", "load_model": "network.model", "minimize": "optimize",
}
_ERRORS = ("NstError", "OptionError", "ImageError", "ModelError", "ModelNotFoundError", "ProviderError",
           "MissingDependencyError", "MemoryLimitError", "CheckpointError", "ClusterError", "ExportError", "MemoryNotice",
           "RandomWeightsNotice", "MaskNotice")

__all__ = ["__version__", *_PUBLIC, *_ERRORS]


def __getattr__(name: str):
    import importlib

    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    if name in _ERRORS:
        return getattr(importlib.import_module(".errors", __name__), name)
    raise AttributeError(f"module 'nst_rt' has no attribute {name!r}")
