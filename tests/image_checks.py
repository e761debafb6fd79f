"""Checks shared by the image tests: a float image's shape and range, a one-line error, saving a picture."""

from __future__ import annotations

import numpy as np
from PIL import Image


def check_float_image(x, shape=None):
    assert isinstance(x, np.ndarray)
    assert x.dtype == np.float32
    assert x.ndim == 3 and x.shape[2] == 3
    assert x.min() >= 0.0 and x.max() <= 1.0
    if shape is not None:
        assert x.shape == shape


def one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def saved(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def noise(h=64, w=64):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
