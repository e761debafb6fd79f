"""Arrays of an uncompressed ``.npz`` file read straight into a buffer the caller already holds, a chunk at a time,
so that loading a large array does not hold it twice (``np.load`` would return a new array to copy from)."""

from __future__ import annotations

import numpy as np

from ..errors import CheckpointError

_CHUNK = 1 << 24  # bytes read at a time


class Stored:
    """An array of an uncompressed ``.npz`` read on demand into a buffer of the caller's (``read_into``)."""

    def __init__(self, npz, name: str):
        self._npz, self._name = npz, name
        with self._open() as f:
            self.shape, self.dtype = _header(f)[:2]

    def _open(self):
        return self._npz.zip.open(self._name + ".npy")

    def read_into(self, out: np.ndarray) -> None:
        with self._open() as f:
            shape, dtype, fortran = _header(f)
            if shape != out.shape or dtype != out.dtype or fortran or not out.flags.c_contiguous:
                out[...] = np.lib.format.read_array(f)  # not the layout of the ring: an ordinary read
                return
            view, done = memoryview(out.reshape(-1)).cast("B"), 0
            while done < len(view):
                got = f.readinto(view[done:done + _CHUNK])
                if not got:
                    raise CheckpointError(f"checkpoint array {self._name!r} is truncated")
                done += got

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, self.dtype)
        self.read_into(out)
        return out if dtype is None else out.astype(dtype, copy=False)


def _header(f):
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    return tuple(shape), dtype, fortran
