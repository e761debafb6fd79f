"""The image a run starts from (``--init``, ``--noise-ratio``): the content, the style, noise or a given picture."""

from __future__ import annotations

import numpy as np

from ..io import images


def start_image(options, content: np.ndarray, style: np.ndarray, init_image: np.ndarray | None,
                rng: np.random.Generator) -> np.ndarray:
    """The (H, W, 3) float32 start at ``content``'s size; ``init_image`` is read when ``options.init`` is a path."""
    h, w = content.shape[:2]
    if options.init == "content":
        start = content
    elif options.init == "style":
        start = images.resize_to(style, (h, w))
    elif options.init == "noise":
        start = rng.random((h, w, 3), dtype=np.float32)
    else:
        start = images.resize_to(init_image, (h, w))
    if options.noise_ratio > 0 and options.init != "noise":
        noise = rng.random((h, w, 3), dtype=np.float32)
        start = (1 - options.noise_ratio) * start + options.noise_ratio * noise
    return np.asarray(start, dtype=np.float32)
