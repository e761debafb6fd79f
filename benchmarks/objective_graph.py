"""One objective evaluation through the model's objective graph against the two graphs with the numpy losses
between them, side by side in one run, on each provider and precision given.

    python benchmarks/objective_graph.py --model MODEL_DIR [--sizes 256,512] [--repeats 5] [--ways cpu,openvino-bf16]
    python benchmarks/objective_graph.py --model MODEL_DIR --sizes "" --run-size 256     (whole runs only)

A way is a provider, optionally with a precision (openvino-bf16, openvino-fp32). The evaluations of one size are
interleaved (two graphs, objective graph, two graphs, ...) and the median of each is printed with their ratio and
the difference of the two gradients (relative L2). The defaults of a run: five style layers, relu4_2, tv.
With --run-size, a default coarse-to-fine run at that size each way on each provider, one after the other (wall
time, evaluations and the loss reached); run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported model's directory")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ways", default="cpu")
    parser.add_argument("--run-size", type=int, default=0)
    args = parser.parse_args()

    import onnxruntime

    from nst_rt.io.image_load import load_image
    from nst_rt.io.images import resize_longest
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.options import Options

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__} "
          f"({', '.join(onnxruntime.get_available_providers())})")
    model = load_model(args.model)
    print(f"model {model.name} ({model.architecture}, {model.weights_dtype} weights)")
    defaults = Options()
    weights = {k: getattr(defaults, k) for k in ("content_weight", "style_weight", "tv_weight", "normalize")}
    content, style = load_image(CONTENT), load_image(STYLE)
    print(f"\n{'way':>14} {'size':>9} {'two graphs':>11} {'objective graph':>16} {'ratio':>7} {'gradient diff':>14}")
    for way in args.ways.split(","):
        provider, _, precision = way.partition("-")
        network = Network(model, provider, precision=precision or "auto")
        for size in (int(s) for s in args.sizes.split(",") if s):
            c, s = resize_longest(content, size), resize_longest(style, size)
            objectives = {fused: Objective(network, c, [s], fused=fused, **weights) for fused in (False, True)}
            x = np.random.default_rng(0).random(objectives[True].shape) * 0.2 + 0.4
            grads = {fused: objective(x)[1].copy() for fused, objective in objectives.items()}  # warm-up (compiles)
            times = {False: [], True: []}
            for _ in range(args.repeats):
                for fused, objective in objectives.items():
                    started = time.perf_counter()
                    objective(x)
                    times[fused].append(time.perf_counter() - started)
            two, one = (float(np.median(times[f])) for f in (False, True))
            diff = np.linalg.norm(grads[True] - grads[False]) / np.linalg.norm(grads[False])
            h, w = objectives[True].shape[2:]
            print(f"{way:>14} {w:>4}x{h:<4} {two:>10.3f}s {one:>15.3f}s {one / two:>7.3f} {diff:>14.1e}")

        if args.run_size:
            whole_runs(model, provider, precision or "auto", args.run_size)


def whole_runs(model, provider: str, precision: str, size: int) -> None:
    import nst_rt.objective.whole as whole
    from nst_rt.pipeline.stylizer import Stylizer

    fits = whole.FusedTerms.fits
    for fused in (False, True):
        whole.FusedTerms.fits = staticmethod(fits if fused else lambda *args, **kwargs: False)
        try:
            stylizer = Stylizer(size=size, model=model.path, provider=provider, precision=precision)
            started = time.perf_counter()
            result = stylizer.run(CONTENT, STYLE)
            wall = time.perf_counter() - started
        finally:
            whole.FusedTerms.fits = staticmethod(fits)
        name = "objective graph" if fused else "two graphs"
        print(f"  whole default run at {size} px, {name:>15}: {wall:7.1f} s, {result.iterations} iterations, "
              f"{result.evaluations} evaluations, loss {result.loss:.5f}")


if __name__ == "__main__":
    main()
