"""A run's pictures, read once at full size: the content, the styles (with colour transfer), the init image
and the masks."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..errors import ImageError, OptionError
from ..io import colors, image_load
from ..model_format import MIN_SIZE
from . import masks as run_masks
from .options import INIT_HINTS, INITS, Options


class Inputs(NamedTuple):
    content: np.ndarray
    styles: list[np.ndarray]
    init: np.ndarray | None  # the picture --init names, when it names one
    masks: run_masks.Masks


def load_inputs(options: Options, content, styles, check_stop: Callable[[], None]) -> Inputs:
    """Read and check every picture of a run; ``check_stop`` is asked between pictures (it raises to stop)."""
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not styles:
        raise OptionError("give at least one style image")
    content_full = image_load.load_image(content, role="content image", min_side=MIN_SIZE)
    check_stop()
    styles_full = [image_load.load_image(s, role=f"style image {i + 1}", min_side=MIN_SIZE)
                   for i, s in enumerate(styles) if check_stop() is None]
    init_full = None
    if options.init not in INITS:
        if isinstance(options.init, (str, os.PathLike)) and not os.path.lexists(options.init):
            raise ImageError(f"init image {str(options.init)!r} does not exist, and it is not a keyword "
                             f"({', '.join(INITS)}){INIT_HINTS.get(str(options.init), '; check the path')}")
        init_full = image_load.load_image(options.init, role="init image", min_side=MIN_SIZE)
    masks = run_masks.load(options, len(styles_full))
    styles_full = [colors.transfer(s, content_full, options.color_transfer)
                   for s in styles_full if check_stop() is None]
    check_stop()
    return Inputs(content_full, styles_full, init_full, masks)
