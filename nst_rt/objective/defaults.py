"""The loss recipe's default layers and the check of a weight: plain Python, so that ``Options`` (and with it
the CLI's startup) does not import numpy's objective code."""

from __future__ import annotations

import math

from ..errors import OptionError

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def check_weight(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise OptionError(f"{name} must be a finite number >= 0, got {value}")
    return value
