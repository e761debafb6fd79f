"""The coarse-to-fine schedule: the sizes a run optimises at, and the iterations at each.

A run at SIZE optimises first at SIZE / 2^(scales-1), then at each doubling up to SIZE, every scale starting
from the last one's result, upsampled. The coarse scales are cheap (a halving costs a quarter per iteration)
and settle the picture's large forms, which the full size would need many iterations to move; the full size
then refines the strokes. So ``iterations`` is the count at the full size; the scale below it runs
``coarse_iterations`` x ``iterations`` (``COARSE_ITERATIONS`` by default), and each coarser one
``COARSER_ITERATIONS`` times as many as the next finer one, up to ``MAX_ITERATIONS_FACTOR`` x ``iterations``;
the coarsest runs at least ``iterations``, since it places the large forms that every finer scale keeps (50
iterations at 128 px for a 256 px run left the loss 0.02-0.04 above 200), and so does every scale of at least
``FULL_ITERATIONS_FROM`` px, whose detail the next scale only refines (50 at 512 px for a 1024 px run lost 0.026).
docs/quality.md measures the defaults.

``scales=None`` (the default) picks the number of scales from the size: halvings of SIZE down to the
smallest that is still at least ``COARSEST`` px, so 512 px runs at 128, 256 and 512, and 256 px at 128 and
256; below 256 px a run has one scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError
from ..io.sizes import longest_side_size
from ..model_format import MIN_SIZE

COARSEST = 128  # the auto schedule's smallest scale is the smallest halving of --size at least this large
COARSE_ITERATIONS = 0.5  # the scale below the full size runs this many times --iterations (Options' default)...
COARSER_ITERATIONS = 2  # ... each coarser scale this many times the iterations of the next finer one...
MAX_ITERATIONS_FACTOR = 4  # ... and at most this many times the full size's
FULL_ITERATIONS_FROM = 512  # a coarse scale this large (px) runs at least the full size's iterations


@dataclass(frozen=True)
class Stage:
    """One scale of the schedule: the longest side in pixels and the iterations run there."""

    size: int
    iterations: int


def auto_scales(size: int, shortest_ratio: float = 1.0) -> int:
    """The number of scales for ``scales=None``: halvings of ``size`` down to at least ``COARSEST`` px, as long
    as the images' shorter sides (``shortest_ratio`` x the longest, the narrowest image's) keep MIN_SIZE px."""
    scales = 1
    while size >> scales >= COARSEST and (size >> scales) * shortest_ratio >= MIN_SIZE:
        scales += 1
    return scales


def plan(size: int, iterations: int, scales: int | None = None, shortest_ratio: float = 1.0,
         coarse_iterations: float = COARSE_ITERATIONS) -> list[Stage]:
    """The stages of a run, coarsest first; the last is ``size`` with ``iterations``."""
    count = auto_scales(size, shortest_ratio) if scales is None else scales
    stages, factor = [Stage(size, iterations)], min(coarse_iterations, MAX_ITERATIONS_FACTOR)
    for halvings in range(1, count):  # finest first; the factor is capped as it grows, so this is linear in count
        full = halvings == count - 1 or size >> halvings >= FULL_ITERATIONS_FROM  # the coarsest, or a large scale
        stages.append(Stage(size >> halvings, max(iterations if full else 1, round(iterations * factor))))
        factor = min(factor * COARSER_ITERATIONS, MAX_ITERATIONS_FACTOR)
    return stages[::-1]


def check_min_size(what: str, shape: tuple[int, int], scale: int, scales: int) -> None:
    """Every image the network sees, at every scale, needs MIN_SIZE px on each side."""
    h, w = shape
    if min(h, w) >= MIN_SIZE:
        return
    where = f" at scale {scale} of --scales {scales}" if scales > 1 else " at this --size"
    fixes = ["a larger --size"] + (["fewer --scales"] if scales > 1 else [])
    fixes += ["a larger --style-scale"] if what.startswith("style") else []
    fixes = " or ".join(fixes) if len(fixes) < 3 else f"{fixes[0]}, {fixes[1]} or {fixes[2]}"
    raise OptionError(f"the {what} becomes {w}x{h} px{where}, below the network's {MIN_SIZE} px; use {fixes}")


def style_size(size: int, style_scale: float) -> int:
    """The longest side the style images are resized to at a scale of ``size`` px."""
    return max(1, round(size * style_scale))


def stages_for(options, content, styles) -> tuple:
    """The stages of a run with these :class:`Options` on these (H, W, 3) images, each image checked against the
    network's minimum at every scale (on the shapes alone, before anything is resized)."""
    style_scale = options.style_scale
    ratios = [min(content.shape[:2]) / max(content.shape[:2])]
    ratios += [min(s.shape[:2]) / max(s.shape[:2]) * style_scale for s in styles]
    stages = tuple(plan(options.size, options.iterations, options.scales, min(ratios), options.coarse_iterations))
    for scale, stage in enumerate(stages, start=1):
        check_min_size("content image", longest_side_size(*content.shape[:2], stage.size), scale, len(stages))
        for i, style in enumerate(styles):
            check_min_size(f"style image {i + 1}" if len(styles) > 1 else "style image",
                           longest_side_size(*style.shape[:2], style_size(stage.size, style_scale)),
                           scale, len(stages))
    return stages
