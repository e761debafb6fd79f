"""The L-BFGS memory's work per iteration on CuPy against numpy, with a full history, side by side in one run.

    python benchmarks/gpu_optimizer.py [--sizes 256,512,1024] [--maxcor 100] [--repeats 3]

For each size: a ring of --maxcor pairs of a 3 x size x size image filled alike on the host (numpy) and on the
device (CuPy); the direction (two-loop recursion) and the update of the Gram matrices timed on each (device
times synchronised), with the agreement of the two directions and the numbers that crossed to the host per
iteration on the device (the k dot products and the 2k coefficients of the recursion, the 3k + 2 of the update).
Needs CuPy and a CUDA device.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np
from bench import best_of  # benchmarks/bench.py

from nst_rt.optimize._history import _History


def filled(xp, n: int, m: int):
    rng = np.random.default_rng(0)
    history = _History(m, n, xp=xp)
    curvature = xp.asarray(rng.uniform(0.5, 2.0, n))
    x, g = xp.zeros(n), xp.asarray(rng.standard_normal(n))
    for _ in range(m):
        x_new = x + 0.01 * xp.asarray(rng.standard_normal(n))
        g_new = g + curvature * (x_new - x)
        history.update(x_new, x, g_new, g, None)
        x, g = x_new, g_new
    return history, x, g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--maxcor", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import cupy

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        gpu = "unknown (no nvidia-smi)"
    print(f"machine: {cpu}, {os.cpu_count()} cores; GPU: {gpu}; cupy {cupy.__version__}, numpy {np.__version__}")
    print(f"\n{'size':>6} {'host direction':>15} {'device':>9} {'host update':>12} {'device':>9} "
          f"{'direction agreement':>20}")
    for size in (int(s) for s in args.sizes.split(",")):
        n, m = 3 * size * size, args.maxcor
        runs = {}
        for name, xp in (("host", np), ("device", cupy)):
            h, x, g = filled(xp, n, m)
            out = xp.empty(n)
            sync = cupy.cuda.Device().synchronize if xp is cupy else (lambda: None)

            def direction(h=h, g=g, out=out, sync=sync):
                h.direction(g, None, out=out)
                sync()

            def update(h=h, x=x, g=g, sync=sync):
                h.count, h.head = m - 1, m - 1  # the ring's last row again, each time
                h.update(x + 1e-3, x, g + 1e-3, g, None)
                sync()

            runs[name] = (best_of(direction, args.repeats), best_of(update, args.repeats),
                          np.asarray(h.direction(g, None, out=out) if xp is np else cupy.asnumpy(
                              h.direction(g, None, out=out))))
        error = np.linalg.norm(runs["device"][2] - runs["host"][2]) / np.linalg.norm(runs["host"][2])
        print(f"{size:>6} {runs['host'][0]:>14.4f}s {runs['device'][0]:>8.4f}s {runs['host'][1]:>11.4f}s "
              f"{runs['device'][1]:>8.4f}s {error:>20.1e}")
    print(f"numbers crossing to the host per iteration on the device: {2 * m} + {3 * m + 2} (down), {2 * m} (up)")


if __name__ == "__main__":
    main()
