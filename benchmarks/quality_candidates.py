"""Candidates against today's defaults, side by side in one run: time, iterations and scores per pair.

    python benchmarks/quality_candidates.py --model vgg16 --models-dir DIR --size 256 \\
        --pairs chelsea:the_scream coffee:starry_night --candidate "settle 0.5: settle=0.5" ...

Every pair is stylized by each candidate in turn (so a change of the machine's load falls on all of them
alike), starting with ``today``: the library's defaults with the settle stop off (``settle=0``), or with
``--previous`` the schedule and memory the defaults had before (``PREVIOUS_DEFAULTS``). A candidate is
``NAME: FIELD=VALUE, FIELD=VALUE`` over ``nst_rt.Options`` fields (as ``quality.py --set``). Each saved image
(8-bit) is scored by one objective, today's defaults at that size (``quality.score``: the weighted content,
style and TV terms and their sum, the loss; lower is better), by the same recipe at layers the run does not
optimise (``quality.HELD_OUT_LAYERS``, the held-out loss), and its speckle. The pairs default to the examples and
the free-licence pictures of ``benchmarks/pictures`` (a landscape with architecture, a portrait, a night scene). Times are wall seconds and the
process's CPU seconds (all ONNX Runtime threads), the ratio to ``today``'s on the same pair. A contact sheet
(a row per pair, the candidates side by side in order) and ``candidates.json`` go to ``--out``.
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
from quality import CONTENTS, HELD_OUT_LAYERS, PICTURES, STYLES, parse_overrides, save_png, score, speckle

DEFAULT_CANDIDATES = ("settle 0.25: settle=0.25", "settle 0.5: settle=0.5", "settle 1: settle=1.0",
                      "half the iterations: iterations=50")
DEFAULT_PAIRS = ("chelsea:the_scream", "coffee:starry_night", "astronaut:woman-with-hat-matisse",
                 "china:the_scream", "grace_hopper:starry_night", "rocket:woman-with-hat-matisse")
# The schedule and memory before --coarse-iterations 0.5 and --history 25 (--previous compares against them).
PREVIOUS_DEFAULTS = {"settle": 0.0, "coarse_iterations": 2.0, "history": 100}
TOLERANCE = 0.02  # a candidate keeps today's quality if its loss is at most this much above today's, on every pair


def parse_candidate(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    return name.strip(), parse_overrides([s.strip() for s in settings.split(",") if s.strip()])


def find(stems: list[Path], stem: str) -> Path:
    match = [p for p in stems if p.stem == stem]
    if not match:
        raise SystemExit(f"no example image {stem!r}; choose one of {', '.join(p.stem for p in stems)}")
    return match[0]


def run_one(stylizer, content: Path, style: Path) -> dict:
    per_scale: dict[int, int] = {}

    def progress(p):
        per_scale[p.scale] = p.iteration

    wall, cpu = time.perf_counter(), time.process_time()
    result = stylizer.run(content, [style], progress=progress)
    return {"result": result, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "per_scale": "+".join(str(per_scale[s]) for s in sorted(per_scale))}


def main() -> None:
    from nst_rt.io import images
    from nst_rt.io.image_load import load_image
    from nst_rt.pipeline.stylizer import Stylizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), metavar="CONTENT:STYLE",
                        help="contents from examples/content or benchmarks/pictures, styles from examples/style")
    parser.add_argument("--candidate", action="append", metavar="'NAME: FIELD=VALUE, ...'",
                        help=f"a candidate to compare with today's defaults [default: {'; '.join(DEFAULT_CANDIDATES)}]")
    parser.add_argument("--previous", action="store_true",
                        help=f"'today' is {PREVIOUS_DEFAULTS} instead of the library's defaults (settle off)")
    parser.add_argument("--out", type=Path, default=Path("quality-candidates"))
    args = parser.parse_args()
    candidates = {"today": dict(PREVIOUS_DEFAULTS) if args.previous else {"settle": 0.0}}
    candidates.update(parse_candidate(c) for c in (args.candidate or DEFAULT_CANDIDATES))
    pairs = [(find(CONTENTS + PICTURES, c), find(STYLES, s)) for c, _, s in (p.partition(":") for p in args.pairs)]
    args.out.mkdir(parents=True, exist_ok=True)

    base = Stylizer(model=args.model, models_dir=args.models_dir, size=args.size, threads=args.threads, settle=0.0)
    stylizers = {name: base.derive(**settings) for name, settings in candidates.items()}
    print(f"# {args.size} px, {cpu_model()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    header = ("| pair | candidate | iterations (per scale) | wall | CPU | CPU / today | loss | loss - today | "
              "held-out | held-out - today | content | style | tv | speckle |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    figures, rows = [], []
    for content, style in pairs:
        reference, row = None, []
        for name, stylizer in stylizers.items():
            run = run_one(stylizer, content, style)
            result = run["result"]
            terms = score(base, result.image, content, style)
            held_out = score(base, result.image, content, style, HELD_OUT_LAYERS)["loss"]
            photo = images.resize_to(load_image(content), result.image.shape[:2])
            entry = {"content_image": content.stem, "style_image": style.stem, "candidate": name,
                     "iterations": result.iterations, "per_scale": run["per_scale"], "wall": round(run["wall"], 1),
                     "cpu": round(run["cpu"], 1), "speckle": round(speckle(result.image, photo), 2), "terms": terms,
                     "held_out": held_out,
                     "message": result.message}
            reference = reference or entry
            entry["cpu_ratio"] = round(entry["cpu"] / reference["cpu"], 3)
            entry["loss_change"] = round(terms["loss"] - reference["terms"]["loss"], 4)
            entry["held_out_change"] = round(held_out - reference["held_out"], 4)
            figures.append(entry)
            row.append(result.image)
            save_png(result.image, args.out / f"{content.stem}_{style.stem}_{name.replace(' ', '_')}.png")
            print(f"| {content.stem} × {style.stem} | {name} | {result.iterations} ({run['per_scale']}) | "
                  f"{entry['wall']:.0f} s | {entry['cpu']:.0f} s | {entry['cpu_ratio']:.2f} | {terms['loss']:.4f} | "
                  f"{entry['loss_change']:+.4f} | {held_out:.4f} | {entry['held_out_change']:+.4f} | "
                  f"{terms.get('content', 0):.4f} | {terms.get('style', 0):.4f} | "
                  f"{terms.get('tv', 0):.4f} | {entry['speckle']:.2f} |", flush=True)
        rows.append(np.concatenate(row, axis=1))  # the candidates side by side, in the order above
    width = max(r.shape[1] for r in rows)
    save_png(np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=1.0)
                             for r in rows], axis=0), args.out / "sheet.png")
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    for name in candidates:
        mine = [f for f in figures if f["candidate"] == name]
        worst = max(f["loss_change"] for f in mine)
        worst_held_out = max(f["held_out_change"] for f in mine)
        ratio = sum(f["cpu"] for f in mine) / sum(f["cpu"] for f in figures if f["candidate"] == "today")
        verdict = "keeps" if worst <= TOLERANCE else "does not keep"
        print(f"{name}: CPU time {ratio:.2f}x today's over the pairs; loss at most {worst:+.4f} from today's "
              f"({verdict} today's quality within {TOLERANCE}); held-out loss at most {worst_held_out:+.4f}")
    (args.out / "candidates.json").write_text(json.dumps({"size": args.size, "cpu": cpu_model(),
                                                          "candidates": candidates, "pictures": figures},
                                                         indent=1, default=str))


if __name__ == "__main__":
    main()
