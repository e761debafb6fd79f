"""Hand the heap's free pages back to the operating system.

Creating an ONNX Runtime session frees far more than it keeps: the parsed graph, and the intermediate tensors
of constant folding and of the weight layouts its optimisers choose. glibc keeps such freed blocks in the
process (they count in its resident memory) until ``malloc_trim`` returns them. Elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def release_free_heap() -> bool:
    """``malloc_trim(0)`` where the C library is glibc; True when it ran."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
