"""The models' tensor layout: images (H, W, 3) <-> pixels (1, 3, H, W). numpy only, no Pillow."""

from __future__ import annotations

import numpy as np

from ..errors import ImageError


def to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (1, 3, H, W) float32, C-contiguous (the models' input layout)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ImageError(f"image has shape {image.shape}; expected (H, W, 3) with H, W > 0")
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def from_nchw(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32/float64 -> (H, W, 3) float32. Values are not clipped."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ImageError(f"model output has shape {x.shape}; expected (1, 3, H, W)")
    if not np.issubdtype(x.dtype, np.floating):
        raise ImageError(f"model output has dtype {x.dtype}; expected float32 or float64")
    return np.ascontiguousarray(x[0].transpose(1, 2, 0), dtype=np.float32)
