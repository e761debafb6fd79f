"""Environment that keeps numpy's threads out of ONNX Runtime's way.

numpy's OpenBLAS keeps its idle threads spinning for a while after each product; in the gap between two ONNX
Runtime runs that steals the cores ONNX Runtime needs. A short timeout lets them sleep. It takes effect only
in a process that has not imported numpy yet (so ``nst_rt/__init__`` sets it, and Ray workers get it as their
environment).
"""

OPENBLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}
