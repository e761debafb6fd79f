"""The memory plan of every scale of a run: whole or in tiles, and the L-BFGS history each one gets."""

from __future__ import annotations

from ..errors import MemoryLimitError
from ..io.sizes import longest_side_size
from ..objective.tiled import exact_halo
from ..optimize import pairs_kept
from . import memory
from .schedule import style_size


def plan_scales(network, architecture: str, options, content, styles, sizes, iterations=None, kept=None,
                device_optimizer: bool = False, cluster=None) -> list:
    """Each scale's memory plan (whole or in tiles, and the L-BFGS history), from the shapes alone, so a huge
    --size is refused before anything is allocated. ``iterations``: each scale's, for the history L-BFGS can
    use there (one pair per iteration at most); without them the whole --history is planned for. ``kept``:
    (scale, pairs) of a resumed run, whose saved history is reused as it is; MemoryLimitError if it cannot fit.
    ``device_optimizer``: the untiled scales keep the optimiser on the GPU (memory.check_fits).
    ``cluster``: (bytes per worker or None, workers) when the windows run on Ray (every scale then in tiles)."""
    o = options
    iterations = list(iterations) if iterations is not None else [o.history] * len(sizes)
    histories = [pairs_kept(o.history, its) if o.optimizer == "lbfgs" else 0 for its in iterations]
    if kept is not None:
        histories[kept[0] - 1] = kept[1]
    used = [l for l in (*o.content_layers, *o.style_layers) if l in network.layers]
    halo = exact_halo(architecture, used) if used else 0
    plans = []

    def shape_at(scale):
        return longest_side_size(*content.shape[:2], sizes[scale - 1])

    for longest, history in reversed(list(zip(sizes, histories))):  # the full size first: a refusal names it
        shape = longest_side_size(*content.shape[:2], longest)
        style_shapes = [longest_side_size(*s.shape[:2], style_size(longest, o.style_scale)) for s in styles]
        content_layers = o.content_layers if o.content_weight > 0 else ()
        plans.append(memory.plan(network, *shape, history, style_shapes, tile=o.tile, halo=halo,
                                 content_layers=content_layers, device_optimizer=device_optimizer) if cluster is None
                     else memory.cluster_plan(network, *shape, history, tile=o.tile, halo=halo,
                                              content_layers=content_layers, worker_bytes=cluster[0],
                                              workers=cluster[1]))
    plans = plans[::-1]
    if kept is not None and plans[kept[0] - 1].history < kept[1]:
        need = memory.tiled_estimate_bytes(network, *shape_at(kept[0]), kept[1], plans[kept[0] - 1].tile, halo,
                                    o.content_layers if o.content_weight > 0 else ())
        raise MemoryLimitError(f"the checkpoint holds an L-BFGS history of {kept[1]} pairs, which needs about "
                               f"{memory.gib(need)} in tiles of {plans[kept[0] - 1].tile} px, but "
                               f"{memory.gib(memory.available_bytes() or 0)} is available; free some memory, or pass "
                               "--overwrite without --resume to start again")
    return plans
