"""The picture-quality protocol: stylize the example contents x styles and write a contact sheet with figures.

    python benchmarks/quality.py --model vgg16 --models-dir DIR [--size 384] [--out quality-out]
    python benchmarks/quality.py ... --set style_weight=10 --set tv_weight=0   (any Options field)
    python benchmarks/quality.py ... --time-to-quality [--ttq-size 512]

``benchmarks/quality_candidates.py`` compares candidate settings with the defaults pair by pair, with these scores.

Every picture is made with the library's defaults (``nst_rt.Options``) unless ``--set`` overrides a
field, so the sheet shows what a user gets. For each picture the figures are: the weighted content,
style and TV terms of the saved image (8-bit, clamped), iterations and evaluations over all scales,
wall time, and *speckle*: the mean squared difference between the image and its 3x3 box blur,
divided by the same for the content image at that size (1.0: as fine-grained as the photograph;
pixel-level colour noise shows as a value well above 2).

``--time-to-quality`` measures, side by side in one run at ``--ttq-size``: the default run against a
single-scale run of 300 iterations, both scored with the default (normalised) objective at full size
on the saved image. The goal is that the default reaches the single-scale score in at most 0.4x its
wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does: it sets thread settings before numpy loads)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENTS = sorted((ROOT / "examples" / "content").glob("*.png"))
PICTURES = sorted((ROOT / "benchmarks" / "pictures").glob("*.jpg"))  # more contents, under free licences
STYLES = sorted((ROOT / "examples" / "style").glob("*.jpg"))
THUMB = 256  # height of a tile on the contact sheet


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` strings into typed Options overrides (the field's default gives the type)."""
    from nst_rt.pipeline.options import Options

    defaults = Options()
    fields = {f.name for f in dataclasses.fields(Options)}
    overrides = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {pair}: Options has no field {key!r}")
        current = getattr(defaults, key)
        if key == "scales":
            current = 1  # None (automatic) by default; given, a whole number
        if isinstance(current, bool):
            value = text.lower() in ("1", "true", "yes")
        elif isinstance(current, int) and not isinstance(current, bool):
            value = int(text)
        elif isinstance(current, float):
            value = float(text)
        elif isinstance(current, (tuple, list)):
            value = tuple(type(current[0])(v) for v in text.split(",")) if current else tuple(text.split(","))
        else:
            value = text
        overrides[key] = value
    return overrides


def speckle(image: np.ndarray, content: np.ndarray) -> float:
    """High-frequency energy of ``image`` relative to the content photograph's (both (H, W, 3))."""

    def fine(x: np.ndarray) -> float:
        padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
        blur = sum(padded[i:i + x.shape[0], j:j + x.shape[1]] for i in range(3) for j in range(3)) / 9.0
        return float(np.mean(np.square(x - blur)))

    return fine(image) / max(fine(content), 1e-12)


# A second opinion on a picture: the same recipe at the layers the run does not optimise (VGG-16 and -19 both
# have them), so a candidate cannot score well by fitting the optimised layers' statistics alone.
HELD_OUT_LAYERS = {"content_layers": ("relu4_3",), "style_layers": ("relu1_2", "relu2_2", "relu3_3", "relu4_3")}


def score(stylizer, image: np.ndarray, content_path: Path, style_path: Path, layers: dict | None = None) -> dict:
    """Weighted terms of the saved image under the run's own objective, at the image's size; ``layers``
    (e.g. HELD_OUT_LAYERS) replaces its content and style layers."""
    from nst_rt.io import images
    from nst_rt.io import layout
    from nst_rt.io.image_load import load_image
    from nst_rt.objective.whole import Objective

    o = dataclasses.replace(stylizer.options, **(layers or {}))
    h, w = image.shape[:2]
    content = images.resize_to(load_image(content_path), (h, w))
    style = images.resize_longest(load_image(style_path), max(1, round(max(h, w) * o.style_scale)))
    objective = Objective(stylizer.network, content, [style], content_layers=o.content_layers,
                          style_layers=o.style_layers, content_weight=o.content_weight, style_weight=o.style_weight,
                          tv_weight=o.tv_weight, normalize=o.normalize)
    saved = images.to_uint8(image).astype(np.float32) / 255.0
    loss, _ = objective(layout.to_nchw(saved).astype(np.float64))
    terms = objective.terms_at(loss)
    return {"loss": float(loss), **{k: float(v) for k, v in terms.items()}}


def contact_sheet(rows: list[list[np.ndarray]], contents: list[np.ndarray], styles: list[np.ndarray], path: Path):
    """Style thumbnails across the top, content thumbnails down the left, results in the grid."""
    from PIL import Image

    from nst_rt.io import images

    def tile(array: np.ndarray) -> Image.Image:
        img = Image.fromarray(images.to_uint8(array))
        return img.resize((max(1, round(img.width * THUMB / img.height)), THUMB), Image.Resampling.LANCZOS)

    grid = [[None] + [tile(s) for s in styles]] + [[tile(c)] + [tile(r) for r in row]
                                                     for c, row in zip(contents, rows)]
    widths = [max(row[j].width for row in grid if row[j] is not None) for j in range(len(grid[0]))]
    gap = 4
    sheet = Image.new("RGB", (sum(widths) + gap * (len(widths) + 1), (THUMB + gap) * len(grid) + gap), "white")
    y = gap
    for row in grid:
        x = gap
        for j, img in enumerate(row):
            if img is not None:
                sheet.paste(img, (x + (widths[j] - img.width) // 2, y))
            x += widths[j] + gap
        y += THUMB + gap
    sheet.save(path)


def protocol(args, overrides: dict) -> None:
    from PIL import Image

    from nst_rt.io import images
    from nst_rt.io.image_load import load_image
    from nst_rt.pipeline.stylizer import Stylizer

    stylizer = Stylizer(model=args.model, models_dir=args.models_dir, size=args.size, threads=args.threads,
                        **overrides)
    args.out.mkdir(parents=True, exist_ok=True)
    contents = [c for c in CONTENTS if not args.contents or c.stem in args.contents]
    styles = [s for s in STYLES if not args.styles or s.stem in args.styles]
    figures, rows = [], []
    print(f"{'content':>10} {'style':>24} {'iters':>6} {'evals':>6} {'seconds':>8} {'content':>9} {'style':>9} "
          f"{'tv':>9} {'speckle':>8}")
    for content in contents:
        row = []
        for style in styles:
            result = stylizer.run(content, [style])
            terms = score(stylizer, result.image, content, style)
            reference = images.resize_to(load_image(content), result.image.shape[:2])
            entry = {"content_image": content.stem, "style_image": style.stem, "iterations": result.iterations,
                     "evaluations": result.evaluations, "seconds": round(result.seconds, 1),
                     "speckle": round(speckle(result.image, reference), 2), "terms": terms,
                     "message": result.message}
            figures.append(entry)
            Image.fromarray(images.to_uint8(result.image)).save(args.out / f"{content.stem}_{style.stem}.png")
            print(f"{content.stem:>10} {style.stem:>24} {result.iterations:>6} {result.evaluations:>6} "
                  f"{result.seconds:>8.1f} {terms.get('content', 0):>9.4f} {terms.get('style', 0):>9.4f} "
                  f"{terms.get('tv', 0):>9.4f} {entry['speckle']:>8.2f}", flush=True)
            row.append(result.image)
        rows.append(row)
    contact_sheet(rows, [load_image(c) for c in contents], [load_image(s) for s in styles],
                  args.out / "contact_sheet.png")
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(stylizer.options).items()}
    (args.out / "figures.json").write_text(json.dumps({"options": options, "pictures": figures}, indent=1,
                                                      default=str))
    print(f"wrote {args.out / 'contact_sheet.png'} and {args.out / 'figures.json'}")


def time_to_quality(args, overrides: dict) -> None:
    """Default schedule vs single-scale 300 iterations at --ttq-size, scored alike, side by side in one run.

    Both saved images are scored with the default objective at full size. The single-scale run's own objective
    at each iteration is recorded too (it is the score up to 8-bit rounding), to tell when it first reached
    the default run's score.
    """
    import os

    from nst_rt.pipeline.stylizer import Stylizer

    content, style = CONTENTS[1] if len(CONTENTS) > 1 else CONTENTS[0], STYLES[1] if len(STYLES) > 1 else STYLES[0]
    runs = {
        "default": dict(overrides),
        "single-scale 300": {**overrides, "scales": 1, "iterations": 300},
    }
    print(f"\n## Time to quality at {args.ttq_size} px ({content.stem} x {style.stem}); score = default objective "
          f"of the saved image at full size; load average {os.getloadavg()[0]:.1f}")
    results, trace = {}, []
    for name, settings in runs.items():
        stylizer = Stylizer(model=args.model, models_dir=args.models_dir, size=args.ttq_size, threads=args.threads,
                            **settings)
        started, cpu_started = time.perf_counter(), time.process_time()

        def record(p, name=name, cpu_started=cpu_started):
            if name != "default" and p.iteration > 0:
                trace.append((time.process_time() - cpu_started, p.loss))

        result = stylizer.run(content, [style], progress=record)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        scorer = Stylizer(model=args.model, models_dir=args.models_dir, size=args.ttq_size, threads=args.threads,
                          **overrides) if name != "default" else stylizer
        results[name] = (score(scorer, result.image, content, style)["loss"], wall, cpu, result.iterations)
        save_png(result.image, args.out / f"ttq_{name.replace(' ', '_')}.png")
        print(f"{name:>18}: score {results[name][0]:.4f}, wall {wall:.1f} s, CPU {cpu:.1f} s, "
              f"{result.iterations} iterations, load average {os.getloadavg()[0]:.1f}", flush=True)
    (d_score, d_wall, d_cpu, _), (s_score, s_wall, s_cpu, _) = results["default"], results["single-scale 300"]
    # CPU time (all threads of this process) is the fairer ratio on a shared machine: others' load does not count.
    print(f"default / single-scale: score {d_score / s_score:.3f}, wall time {d_wall / s_wall:.2f}, "
          f"CPU time {d_cpu / s_cpu:.2f}")
    reached = next((t for t, loss in trace if loss <= d_score), None)
    if reached is not None:
        print(f"the single-scale run first reached the default's score after {reached:.1f} CPU s "
              f"({reached / s_cpu:.2f} of its CPU time)")


def save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    from nst_rt.io import images

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(images.to_uint8(image)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, default=Path("quality-out"))
    parser.add_argument("--contents", nargs="*", help="content names (file stems) to use [default: all]")
    parser.add_argument("--styles", nargs="*", help="style names (file stems) to use [default: all]")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override an Options field")
    parser.add_argument("--time-to-quality", action="store_true", help="also measure the time-to-quality ratio")
    parser.add_argument("--ttq-size", type=int, default=512)
    parser.add_argument("--skip-sheet", action="store_true", help="only the time-to-quality measurement")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    if not args.skip_sheet:
        protocol(args, overrides)
    if args.time_to_quality:
        time_to_quality(args, overrides)


if __name__ == "__main__":
    main()
