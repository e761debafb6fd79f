"""The array module the optimiser and the losses run on: the numpy API of whatever library holds the iterate.

numpy on the host, CuPy on a CUDA device (it mirrors numpy's API, ``out=`` and ``where=`` of ``copyto``
included). The optimiser calls only ``xp.<function>`` on its vectors, so a device iterate stays on the device;
what crosses to the host is scalars (``float(...)``, the line search's and the stop tests' dot products) and the
k-vectors of dot products the two-loop recursion works on. A device array refuses silent conversion to numpy
(CuPy's ``__array__`` raises), which the tests imitate with a stand-in namespace.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def array_module(a: Any) -> ModuleType:
    """The numpy-API module of ``a``: numpy for numpy arrays, scalars and sequences; CuPy for CuPy arrays; else
    what ``a.__array_namespace__()`` names (an array library whose main namespace follows numpy's API)."""
    if isinstance(a, (np.ndarray, np.generic, int, float, list, tuple)):
        return np
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    namespace = getattr(a, "__array_namespace__", None)
    return namespace() if namespace is not None else np


def on_host(xp: ModuleType) -> bool:
    return xp is np


def to_host(a: Any) -> np.ndarray:
    """``a`` as a numpy array: itself on the host, a copy from a device (the one explicit crossing)."""
    if isinstance(a, np.ndarray):
        return a
    xp = array_module(a)
    return np.asarray(a) if xp is np else xp.asnumpy(a)


def read_only(a: Any) -> Any:
    """A view of ``a`` that numpy refuses to write through (device arrays have no such flag: ``a`` itself)."""
    if isinstance(a, np.ndarray):
        a = a.view()
        a.flags.writeable = False
    return a


def fill_from(out: Any, source: Any) -> Any:
    """``out[...] = source`` where ``out`` may live on a device and ``source`` is host data (a loaded state) or
    already in ``out``'s module."""
    xp = array_module(out)
    if xp is np:
        out[...] = np.asarray(source).reshape(out.shape)
    elif array_module(source) is xp:  # already on the device (a handover within one run)
        out[...] = source.reshape(out.shape)
    else:
        out[...] = xp.asarray(np.asarray(source).reshape(out.shape))
    return out
