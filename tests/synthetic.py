"""Tiny generated pictures for the end-to-end tests (fast and deterministic, no files needed), and ``save``
to write one where a test needs a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nst_rt.io.images import to_uint8


def gradient(h: int = 40, w: int = 60) -> np.ndarray:
    """A smooth, colourful content image: red grows left to right, green top to bottom."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xx / (w - 1), yy / (h - 1), np.full_like(xx, 0.5)], axis=-1).astype(np.float32)


def noise(h: int = 48, w: int = 48, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def stripes(h: int = 48, w: int = 48) -> np.ndarray:
    out = np.zeros((h, w, 3), np.float32)
    out[:, ::4, 0] = 1.0
    out[::3, :, 2] = 1.0
    out[:, 1::4, 1] = 0.7
    return out


def save(array: np.ndarray, path: Path) -> Path:
    """Write an (H, W, 3) float image in [0, 1] as an 8-bit file (its folder created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(array)).save(path)
    return path
