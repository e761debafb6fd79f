"""The size of a checkpoint, the time to write it, and the memory writing it takes, at a given output size.

    python benchmarks/checkpoint.py                 (512x512, history 100: about 2 minutes and 1.5 GB of memory)
    python benchmarks/checkpoint.py --size 128      (a smoke run)

The optimiser state is that of a real L-BFGS run with a full memory (history + 1 iterations), on a cheap
quadratic of the image's size instead of the network (the state's arrays are the same; only their values differ),
written by the same ``Checkpoint.maybe_save`` that ``nst-rt stylize`` uses. Adam's checkpoint is measured too.
Printed: file size against the formula 8 n (m + 2) bytes for L-BFGS and 48 n for Adam (n = 3 H W values,
m = history), the write time (fsync included: it depends on the disk), and the memory numpy allocated
while writing (tracemalloc), which shows that the L-BFGS memory is written without a second copy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

from nst_rt.pipeline.checkpoint import Checkpoint, fingerprint
from nst_rt.optimize import minimize
from nst_rt.pipeline.options import Options


def measure(method: str, size: int, history: int, directory: Path) -> None:
    shape = (1, 3, size, size)
    n = 3 * size * size
    curvature = np.random.default_rng(0).uniform(1.0, 1e4, shape)

    def quadratic(x):
        return 0.5 * float(np.sum(curvature * x * x)), curvature * x

    path = directory / f"{method}.png.ckpt"
    checkpoint = Checkpoint(path, every=1e-9)
    image = np.zeros((size, size, 3), np.float32)
    checkpoint._fingerprint = fingerprint(Options(size=size, history=history, optimizer=method),
                                          {"weights_sha256": "0" * 64}, image, [image], None)
    checkpoint.enter_scale(1, 0, 0, {})
    iterations = history + 1 if method == "lbfgs" else 3
    timing = {}

    def callback(r):
        if r.nit == iterations:
            tracemalloc.start()
            started = time.perf_counter()
            checkpoint.maybe_save(r)
            timing["seconds"] = time.perf_counter() - started
            timing["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            raise StopIteration

    options = {"maxiter": iterations + 1, "maxcor": history, "gtol": 0.0, "ftol": 0.0} if method == "lbfgs" \
        else {"maxiter": iterations + 1}
    x0 = np.random.default_rng(1).uniform(0, 1, shape)
    minimize(quadratic, x0, method=method, options=options, callback=callback)
    with np.load(path) as saved:
        pairs = saved["opt_s"].shape[0] if method == "lbfgs" else 0
    formula = 8 * n * (history + 2) if method == "lbfgs" else 48 * n
    pairs_note = f", {pairs} pairs" if method == "lbfgs" else ""
    held = f" (the pairs alone: {history * n * 8 / 1e6:.0f} MB)" if method == "lbfgs" else ""
    print(f"{method:5s} {size}x{size} (n = {n:,} values{pairs_note}): "
          f"file {path.stat().st_size / 1e6:.1f} MB (formula {formula / 1e6:.1f} MB), "
          f"written in {timing['seconds']:.2f} s, numpy allocated {timing['peak'] / 1e6:.1f} MB while writing{held}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--history", type=int, default=Options().history)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for method in ("lbfgs", "adam"):
            measure(method, args.size, args.history, Path(directory))


if __name__ == "__main__":
    main()
