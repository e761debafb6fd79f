"""What the stylization tests share: the generated images, byte and smoothness measures, and fixtures that
run a small stylization and record the objectives built."""

from __future__ import annotations


import numpy as np
import pytest

import nst_rt.pipeline.stylizer as stylize_module
from nst_rt.io import images
from nst_rt.pipeline.stylizer import Stylizer
from oracles import LAYERS
from synthetic import gradient, noise, stripes

VGG19_LAYERS = LAYERS["vgg19"]


# ----------------------------------------------------------------------------- images


def as_bytes(image: np.ndarray) -> bytes:
    """The image as it would be saved (8-bit)."""
    return images.to_uint8(image).tobytes()


def mean_sq_neighbour_diff(image: np.ndarray) -> float:
    return float(np.mean(np.diff(image, axis=0) ** 2) + np.mean(np.diff(image, axis=1) ** 2))


CONTENT = gradient()
STYLE = noise()
STYLE2 = stripes()
CONTENT_32 = images.resize_longest(CONTENT, 32)  # (21, 32, 3): what the content becomes at size 32


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def run(models):
    """``run(content=CONTENT, styles=STYLE, progress=None, **options) -> Result`` with small defaults.

    The plain recipe (content 1, style 1e6, no tv, not normalised) unless a test says otherwise: the
    thresholds below were set on its scales.
    """

    def go(content=CONTENT, styles=STYLE, progress=None, **options):
        settings = {"size": 32, "iterations": 4, "models_dir": models, "threads": 1, "content_weight": 1.0,
                    "style_weight": 1e6, "tv_weight": 0.0, "normalize": False, **options}
        return Stylizer(**settings).run(content, styles, progress=progress)

    return go


@pytest.fixture
def objectives(monkeypatch):
    """Records every Objective the pipeline builds: its inputs, and each evaluation's value, terms and x range."""
    made = []

    class Recording(stylize_module.Objective):
        def __init__(self, network, content, styles, **kwargs):
            super().__init__(network, content, styles, **kwargs)
            self.content_shape = content.shape
            self.style_shapes = [s.shape for s in styles]
            self.values, self.term_log, self.x_ranges = [], [], []
            made.append(self)

        def __call__(self, x):
            value, grad = super().__call__(x)
            self.values.append(value)
            self.term_log.append(self.terms_at(value))
            self.x_ranges.append((float(np.min(x)), float(np.max(x))))
            return value, grad

    monkeypatch.setattr(stylize_module, "Objective", Recording)
    return made
