"""Pixel operations on float images (numpy + Pillow only).

Images inside the library are float32 numpy arrays of shape (H, W, 3), RGB in [0, 1]. This module
resizes them in float precision, turns them into the 8-bit image that is saved, and keeps the
content's colours. Reading and writing files is in :mod:`nst_rt.io.image_load` and :mod:`nst_rt.io.image_save`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ImageError, OptionError
from .sizes import longest_side_size  # noqa: F401 (part of this module's API)

__all__ = ["longest_side_size", "resize_longest", "resize_to", "to_uint8", "original_colors"]


def check_float_image(image, what: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"{what} has shape {arr.shape}; expected (H, W, 3)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{what} is empty (shape {arr.shape})")
    return arr.astype(np.float32, copy=False)


def resize_longest(image: np.ndarray, longest: int) -> np.ndarray:
    """Lanczos-resize so the longest side is ``longest`` pixels, keeping the aspect ratio."""
    image = check_float_image(image)
    return resize_to(image, longest_side_size(image.shape[0], image.shape[1], longest))


def resize_to(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Lanczos-resize to exactly ``size`` = (height, width), in float precision, clipped to [0, 1]."""
    image = check_float_image(image)
    try:
        new_h, new_w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise OptionError(f"resize size must be (height, width), not {size!r}") from None
    if new_h < 1 or new_w < 1:
        raise OptionError(f"resize size must be positive, not {(new_h, new_w)}")
    if image.shape[:2] == (new_h, new_w):
        return np.array(image, dtype=np.float32)
    from PIL import Image  # here: the schedule reads this module's size arithmetic at CLI startup

    # One mode-"F" (32-bit float) image per channel: resizing in uint8 would
    # quantize every scale of a coarse-to-fine run to 8 bits.
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[:, :, c])).resize(
                (new_w, new_h), Image.Resampling.LANCZOS
            ),
            dtype=np.float32,
        )
        for c in range(3)
    ]
    # Lanczos rings past the input range at sharp edges.
    return np.ascontiguousarray(np.clip(np.stack(channels, axis=2), 0.0, 1.0), dtype=np.float32)


# --------------------------------------------------------------- 8-bit


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float (H, W, 3) -> uint8 (H, W, 3): clip to [0, 1], round(x * 255). This is "the image as saved"."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ImageError(f"image has shape {arr.shape}; expected (H, W, 3)")
        return np.array(arr)
    arr = check_float_image(arr)
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


# ------------------------------------------------------------ original colors


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.601 full range (as in JPEG), with chroma centred on 0.5.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


def original_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Keep the content's colours: luminance (Y) from ``stylized``, chroma (Cb, Cr) from ``content``.

    The content is resized to the stylized image's size if they differ.
    """
    stylized = check_float_image(stylized, "stylized image")
    content = check_float_image(content, "content image")
    if content.shape != stylized.shape:
        content = resize_to(content, stylized.shape[:2])
    ycc = _rgb_to_ycbcr(content.astype(np.float64))
    ycc[..., 0] = _rgb_to_ycbcr(stylized.astype(np.float64))[..., 0]
    rgb = np.clip(_ycbcr_to_rgb(ycc), 0.0, 1.0)
    return np.ascontiguousarray(rgb, dtype=np.float32)
