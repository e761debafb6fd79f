"""What style and content masks cost: loss evaluations (one forward, one VJP, the loss terms) with and without
masks, side by side: two styles split by left/right masks (and a soft content mask), and one style with the
left mask, each against the same styles unmasked.

    python benchmarks/masks.py --model MODELS/vgg16 --size 512 --evaluations 5

The unmasked objective blends the two styles' Gram matrices into one target; the masked one takes a guided
Gram matrix and its gradient per style (see nst_rt.objective.guided), with left/right halves as style masks
and a soft content mask. Evaluations alternate between the two objectives so that a machine shared with other
work slows both alike; the ratio of the medians is printed with the CPU model. An optimiser iteration is about
1.1 evaluations, so the ratio is a run's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "astronaut.png"
STYLES = [ROOT / "examples" / "style" / "starry_night.jpg", ROOT / "examples" / "style" / "the_scream.jpg"]


def cpu() -> str:
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                "unknown CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported model's directory")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--evaluations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from nst_rt.io import image_load, images
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective

    defaults = nst_rt.Options()
    settings = {n: getattr(defaults, n) for n in ("content_weight", "style_weight", "tv_weight", "normalize")}
    network = Network(load_model(args.model), "cpu", args.threads)
    content = images.resize_longest(image_load.load_image(CONTENT), args.size)
    styles = [images.resize_longest(image_load.load_image(s), args.size) for s in STYLES]
    h, w = content.shape[:2]
    left = np.zeros((h, w), np.float32)
    left[:, : w // 2] = 1
    soft = np.linspace(0.2, 1.0, w, dtype=np.float32)[None, :].repeat(h, 0)
    objectives = {"unmasked": Objective(network, content, styles, **settings),
                  "masked": Objective(network, content, styles, style_masks=[left, 1 - left], content_mask=soft,
                                      **settings),
                  "one style": Objective(network, content, styles[:1], **settings),
                  "one style, masked": Objective(network, content, styles[:1], style_masks=[left], **settings)}
    x = np.asarray(content.transpose(2, 0, 1)[None], np.float64)
    for objective in objectives.values():  # warm-up: ONNX Runtime's first run at a shape plans its memory
        objective(x)
    times = {name: [] for name in objectives}
    for _ in range(args.evaluations):
        for name, objective in objectives.items():
            start = time.perf_counter()
            objective(x)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"CPU: {cpu()}; {h}x{w} px, {args.evaluations} evaluations each, interleaved")
    print("| objective | median s per evaluation |")
    print("|---|---|")
    for name, seconds in median.items():
        print(f"| {name} | {seconds:.3f} |")
    print(f"two styles, masked / unmasked: {median['masked'] / median['unmasked']:.3f}")
    print(f"one style, masked / unmasked: {median['one style, masked'] / median['one style']:.3f}")


if __name__ == "__main__":
    main()
