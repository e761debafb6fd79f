"""A run's options checked against the model and the images on their shapes alone, before anything is computed or
written: the command line reports a bad option before it looks at the output path (a clash there is resolved
by hand, and a bad option found after it costs a second try)."""

from __future__ import annotations

from . import schedule
from ..objective.whole import blend_weights, check_layers


def check_run(options, layers: list[str], content, styles) -> tuple:
    """The run's stages (see :func:`schedule.stages_for`), once the layers, the blend weights and every scale's
    image sizes of ``options`` are valid for a model with ``layers`` and these (H, W, 3) images."""
    check_layers("content", options.content_layers, layers)
    check_layers("style", options.style_layers, layers)
    blend_weights(options.style_blend_weights, len(styles))
    return schedule.stages_for(options, content, styles)
