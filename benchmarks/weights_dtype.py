"""The same picture from two exports of the same weights (e.g. float32 and float16): stylize with each, same
options and seed, and score both saved images with the first model's objective (float64).

    python benchmarks/weights_dtype.py MODEL_A MODEL_B [--size 256] [--content PNG] [--style JPG] [--out DIR]

Prints each saved image's objective and its ratio to the first, the largest pixel difference (0-255), and
writes both images into --out to look at.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    from PIL import Image

    from nst_rt.io import images
    from nst_rt.io.image_load import load_image
    from nst_rt.pipeline.stylizer import Stylizer
    from quality import score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs=2, type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--content", type=Path, default=ROOT / "examples" / "content" / "chelsea.png")
    parser.add_argument("--style", type=Path, default=ROOT / "examples" / "style" / "starry_night.jpg")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("weights-dtype-out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    content, style = load_image(args.content), load_image(args.style)
    saved, stylizers = [], []
    for model in args.models:
        stylizer = Stylizer(model=str(model), size=args.size, threads=args.threads)
        started = time.perf_counter()
        result = stylizer.run(content, style)
        saved.append(images.to_uint8(result.image))
        stylizers.append(stylizer)
        Image.fromarray(saved[-1]).save(args.out / f"{model.parent.name}-{model.name}.png")
        print(f"{model}: {result.iterations} iterations, {time.perf_counter() - started:.1f} s")
    scores = [score(stylizers[0], image.astype(np.float32) / 255, args.content, args.style)["loss"] for image in saved]
    for model, value in zip(args.models, scores):
        print(f"{str(model):<50} objective {value:.6g}  ratio {value / scores[0]:.5f}")
    diff = np.abs(saved[0].astype(int) - saved[1].astype(int))
    print(f"pixels: max difference {diff.max()} / 255, mean {diff.mean():.3f}, share differing {np.mean(diff > 0):.3f}")


if __name__ == "__main__":
    main()
