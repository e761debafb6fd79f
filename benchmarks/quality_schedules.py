"""Schedules of scales and iterations against each other: the score along the last scale, against CPU time.

    python benchmarks/quality_schedules.py --model vgg16 --models-dir DIR --pairs chelsea:the_scream \\
        --schedule "today: 128x400, 256x200, 512x100" --schedule "sqrt2: 128x100, 181x70, 256x50, 362x50, 512x80" \\
        --schedule "ema: 128x100, 256x50, 512x120; ema=0.9" --schedule "history 25: 128x100, 256x50, 512x120; history=25"

A schedule is ``NAME: SIZExITERATIONS, ...`` (coarsest first), optionally ``; FIELD=VALUE, ...`` over
``nst_rt.Options`` fields, and ``ema=DECAY``: an exponential moving average of the picture over each scale's
iterations (as crowsonkb/style-transfer-pytorch keeps one) that starts the next scale and is the output. Each
scale is a one-scale run started from the last one's result, resized (what the coarse-to-fine schedule does inside
one run, so any sizes can be tried, e.g. scales a factor of sqrt(2) apart). Every 10 iterations of the last scale
the picture as it would be saved is scored by one objective, today's defaults at the last size
(``quality.score``; lower is better), and by the same recipe at layers the run does not optimise
(``quality.HELD_OUT_LAYERS``), with the process's CPU seconds and the wall seconds since the schedule started.
So one run of a schedule gives its whole trade-off curve: the score it would end with at any iteration count of the
last scale, and when. ``quality_candidates.py`` then checks a chosen setting pair by pair as a whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does: it sets thread settings before numpy loads)
import numpy as np

from footprint import cpu_model
from quality import CONTENTS, HELD_OUT_LAYERS, PICTURES, STYLES, parse_overrides, save_png, score

MARK_EVERY = 10  # iterations of the last scale between scores


def parse_schedule(text: str) -> tuple[str, list[tuple[int, int]], float, dict]:
    name, _, rest = text.partition(":")
    stages_text, _, settings_text = rest.partition(";")
    stages = []
    for part in stages_text.split(","):
        size, _, iterations = part.strip().partition("x")
        stages.append((int(size), int(iterations)))
    settings = [s.strip() for s in settings_text.split(",") if s.strip()]
    ema = next((float(s.partition("=")[2]) for s in settings if s.startswith("ema=")), 0.0)
    return name.strip(), stages, ema, parse_overrides([s for s in settings if not s.startswith("ema=")])


def run_schedule(base, stages, ema: float, content: Path, style: Path) -> dict:
    """Run the stages one after the other; the pictures (8-bit) and times at every MARK_EVERY of the last scale."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start, marks = None, {}
    for index, (size, iterations) in enumerate(stages):
        stylizer = base.derive(size=size, iterations=iterations, scales=1)
        last = index == len(stages) - 1
        average = {"image": None}

        def on_progress(p, last=last, average=average):
            if p.iteration == 0:
                return
            if ema > 0:
                image = p.image()
                average["image"] = image if average["image"] is None else ema * average["image"] + (1 - ema) * image
            if last and p.iteration % MARK_EVERY == 0:
                picture = average["image"] if ema > 0 else p.image()
                marks[p.iteration] = (np.array(picture), time.process_time() - cpu0, time.perf_counter() - wall0)

        result = stylizer.run(content, [style], progress=on_progress, start=start)
        start = average["image"] if ema > 0 else result.image
    return marks


def main() -> None:
    from nst_rt.pipeline.stylizer import Stylizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--pairs", nargs="+", default=["chelsea:the_scream"], metavar="CONTENT:STYLE")
    parser.add_argument("--schedule", action="append", required=True, metavar="'NAME: SIZExITERS, ...[; K=V, ...]'")
    parser.add_argument("--out", type=Path, default=Path("quality-schedules"))
    args = parser.parse_args()
    schedules = [parse_schedule(s) for s in args.schedule]
    by_stem = {p.stem: p for p in CONTENTS + PICTURES + STYLES}
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    print("| pair | schedule | last-scale iterations | CPU | wall | loss | held-out loss |")
    print("|---|---|---|---|---|---|---|")
    figures = []
    for pair in args.pairs:
        content, _, style = pair.partition(":")
        content, style = by_stem[content], by_stem[style]
        for name, stages, ema, settings in schedules:
            base = Stylizer(model=args.model, models_dir=args.models_dir, threads=args.threads, settle=0.0, **settings)
            scorer = Stylizer(model=args.model, models_dir=args.models_dir, threads=args.threads,
                              size=stages[-1][0])
            marks = run_schedule(base, stages, ema, content, style)
            for iteration, (picture, cpu, wall) in sorted(marks.items()):
                loss = score(scorer, picture, content, style)["loss"]
                held_out = score(scorer, picture, content, style, HELD_OUT_LAYERS)["loss"]
                figures.append({"pair": pair, "schedule": name, "stages": stages, "ema": ema, "settings": settings,
                                "iteration": iteration, "cpu": round(cpu, 1), "wall": round(wall, 1),
                                "loss": loss, "held_out": held_out})
                print(f"| {content.stem} × {style.stem} | {name} | {iteration} | {cpu:.0f} s | {wall:.0f} s | "
                      f"{loss:.4f} | {held_out:.4f} |", flush=True)
            save_png(marks[max(marks)][0], args.out / f"{content.stem}_{style.stem}_{name.replace(' ', '_')}.png")
    (args.out / "schedules.json").write_text(json.dumps({"cpu": cpu_model(), "figures": figures}, indent=1,
                                                        default=str))


if __name__ == "__main__":
    main()
