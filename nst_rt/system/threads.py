"""numpy's threads: environment that keeps them out of ONNX Runtime's way, and a limit on them while a block runs.

numpy's OpenBLAS keeps its idle threads spinning for a while after each product; in the gap between two ONNX
Runtime runs that steals the cores ONNX Runtime needs. A short timeout lets them sleep. It takes effect only
in a process that has not imported numpy yet (so ``nst_rt/__init__`` sets it, and Ray workers get it as their
environment).
"""

from __future__ import annotations

import contextlib
import functools

OPENBLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}


def blas_threads(threads: int | None):
    """A context in which numpy's BLAS runs on at most ``threads`` threads (as it is for None).

    OpenBLAS may sum a product in one order on one thread and in another on several (its AVX2 kernels do),
    so sums split across processes come out the same to the bit only with the same BLAS threads in each."""
    if threads is None:
        return contextlib.nullcontext()
    return _controller().limit(limits=threads, user_api="blas")


def with_blas_threads(threads_of):
    """A method decorator: the method runs under :func:`blas_threads` of ``threads_of(self)``."""
    def decorate(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with blas_threads(threads_of(self)):
                return method(self, *args, **kwargs)
        return run
    return decorate


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController  # it looks for the loaded BLAS libraries once

    return ThreadpoolController()
