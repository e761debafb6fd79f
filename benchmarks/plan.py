"""The memory plan of a run, without running it: each scale's tiles and L-BFGS history, planned for the whole
--history (as the runtime did before it counted the pairs a scale's iterations can use) and for what L-BFGS
keeps there, min(--history, iterations).

    python benchmarks/plan.py CONTENT STYLE --model DIR [--size 4096] [--iterations 5] [--style-scale 0.5]
        [--available-gib 22.6]

``--available-gib`` stands for the memory free when the run starts (default: what this machine has now).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nst_rt.pipeline import memory

from nst_rt.pipeline import schedule

from nst_rt.pipeline import plan as tiling
from nst_rt.io.image_load import load_image
from nst_rt.network.model import load_model
from nst_rt.network.session import Network
from nst_rt.pipeline.options import Options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("--model", required=True, help="an exported model directory (its shapes are what count)")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--style-scale", type=float, default=0.5)
    parser.add_argument("--available-gib", type=float)
    args = parser.parse_args()
    if args.available_gib is not None:
        memory.available_bytes = lambda: int(args.available_gib * (1 << 30))
    model_dir = Path(args.model)
    model = load_model(model_dir.name, model_dir.parent)
    network = Network(model, "cpu")
    options = Options(size=args.size, iterations=args.iterations, style_scale=args.style_scale)
    content, style = load_image(args.content, role="content image"), load_image(args.style, role="style image")
    stages = schedule.stages_for(options.size, options.iterations, options.scales, options.style_scale, content,
                                 [style])
    sizes = [s.size for s in stages]
    before = tiling.plan_scales(network, model.architecture, options, content, [style], sizes)
    after = tiling.plan_scales(network, model.architecture, options, content, [style], sizes,
                               [s.iterations for s in stages])
    print(f"available {memory.gib(memory.available_bytes())}, --history {options.history}")
    print(f"{'size':>6} {'iters':>5} | {'before: tile':>12} {'history':>7} {'need':>9} | "
          f"{'after: tile':>11} {'history':>7} {'need':>9}")
    for stage, b, a in zip(stages, before, after):
        print(f"{stage.size:>6} {stage.iterations:>5} | {str(b.tile or 'whole'):>12} {b.history:>7} "
              f"{memory.gib(b.need):>9} | {str(a.tile or 'whole'):>11} {a.history:>7} {memory.gib(a.need):>9}")
    for label, plans in (("before", before), ("after", after)):
        notes = [p.note for p in plans if p.note]
        print(f"{label}: {'; '.join(notes) if notes else 'no shrink note'}")


if __name__ == "__main__":
    main()
