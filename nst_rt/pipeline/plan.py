"""The memory plan of every scale of a run: whole or in tiles, and the L-BFGS history each one gets."""

from __future__ import annotations

from ..io.sizes import longest_side_size
from ..objective.tiled import exact_halo
from . import memory
from .schedule import style_size


def plan_scales(network, architecture: str, options, content, styles, sizes) -> list:
    """Each scale's memory plan (whole or in tiles, and the L-BFGS history), from the shapes alone, so a huge
    --size is refused before anything is allocated."""
    o = options
    history = o.history if o.optimizer == "lbfgs" else 0
    used = [l for l in (*o.content_layers, *o.style_layers) if l in network.layers]
    halo = exact_halo(architecture, used) if used else 0
    plans = []
    for longest in reversed(sizes):  # the full size first: a refusal names the size asked for
        shape = longest_side_size(*content.shape[:2], longest)
        style_shapes = [longest_side_size(*s.shape[:2], style_size(longest, o.style_scale)) for s in styles]
        plans.append(memory.plan(network, *shape, history, style_shapes, tile=o.tile, halo=halo,
                                 content_layers=o.content_layers if o.content_weight > 0 else ()))
    return plans[::-1]
