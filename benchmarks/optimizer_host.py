"""The host L-BFGS memory's cost against one objective evaluation, with a full history, side by side in one run.

    python benchmarks/optimizer_host.py --model MODEL_DIR [--size 512] [--maxcor 100] [--repeats 3]

A ring of --maxcor pairs of a 3 x size x size image (float32, as stored), filled with curvature pairs of a
diagonal quadratic. Timed, best of --repeats:
- direction: the two-loop recursion (two dot passes and two combination passes over the ring);
- update: the new pair's row and column of the Gram matrices, fused (one pass over y for y.s_new and y.y_new,
  one over s) and as three separate passes;
- the same dot products taken in float32 by BLAS straight on the stored rows (no float64 upcast), with the
  agreement of the float32 direction with the float64 one (relative L2, cosine);
- one evaluation of the default objective at that size on the CPU provider (--model; skipped without it).
Prints ratios to the evaluation, with the CPU model.
"""

from __future__ import annotations

import argparse
import os

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS, as the CLI does)
import numpy as np
from bench import best_of  # benchmarks/bench.py

from nst_rt.optimize._history import _History


def filled(n: int, m: int) -> tuple[_History, np.ndarray]:
    rng = np.random.default_rng(0)
    history = _History(m, n)
    curvature = rng.uniform(0.5, 2.0, n)
    x, g = np.zeros(n), rng.standard_normal(n)
    for _ in range(m):
        x_new = x + 0.01 * rng.standard_normal(n)
        g_new = g + curvature * (x_new - x)
        history.update(x_new, x, g_new, g, None)
        x, g = x_new, g_new
    return history, g


def float32_direction(h: _History, g: np.ndarray) -> np.ndarray:
    """The recursion with its four passes as float32 BLAS on the stored rows (the Gram matrices as they are)."""
    k = h.count
    s, y = h.s[:k], h.y[:k]
    saved = h._rows_dot, h._add_combination
    h._rows_dot = lambda rows, v: (rows @ v.astype(np.float32)).astype(np.float64)
    h._add_combination = lambda coef, rows, out: out.__iadd__(coef.astype(np.float32) @ rows)
    try:
        return h.direction(g, None, out=np.empty_like(g))
    finally:
        h._rows_dot, h._add_combination = saved
        del s, y


def evaluation_seconds(model_dir: str, size: int, repeats: int) -> float:
    from pathlib import Path

    from nst_rt.io.image_load import load_image
    from nst_rt.io.images import resize_longest
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.options import Options

    root = Path(__file__).resolve().parents[1] / "examples"
    defaults = Options()
    weights = {k: getattr(defaults, k) for k in ("content_weight", "style_weight", "tv_weight", "normalize")}
    content = resize_longest(load_image(root / "content" / "chelsea.png"), size)
    style = resize_longest(load_image(root / "style" / "starry_night.jpg"), size)
    objective = Objective(Network(load_model(model_dir), "cpu"), content, [style], **weights)
    x = np.random.default_rng(0).random(objective.shape) * 0.2 + 0.4
    return best_of(lambda: objective(x), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported model's directory (for the evaluation's time)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--maxcor", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from footprint import cpu_model

    cpu = cpu_model()
    print(f"machine: {cpu}, {os.cpu_count()} cores; numpy {np.__version__}")
    n, m = 3 * args.size * args.size, args.maxcor
    h, g = filled(n, m)
    print(f"ring: {m} pairs of {n} float32 values ({2 * m * n * 4 / 2**30:.2f} GiB)")
    s_new, y_new = h.new_stored
    k = h.count
    times = {
        "direction, float64 upcast": best_of(lambda: h.direction(g, None, out=np.empty(n)), args.repeats),
        "update, fused (2 passes)": best_of(lambda: (h._rows_dot(h.y[:k], h.new_stored),
                                                     h._rows_dot(h.s[:k], y_new)), args.repeats),
        "update, 3 passes": best_of(lambda: (h._rows_dot(h.y[:k], s_new), h._rows_dot(h.y[:k], y_new),
                                             h._rows_dot(h.s[:k], y_new)), args.repeats),
        "direction, float32 BLAS": best_of(lambda: float32_direction(h, g), args.repeats),
        "update, float32 BLAS (2 passes)": best_of(lambda: (h.y[:k] @ h.new_stored.T, h.s[:k] @ y_new),
                                                   args.repeats),
    }
    wide = h.direction(g, None, out=np.empty(n))
    narrow = float32_direction(h, g)
    error = np.linalg.norm(narrow - wide) / np.linalg.norm(wide)
    cosine = float(narrow @ wide) / (np.linalg.norm(narrow) * np.linalg.norm(wide))
    evaluation = evaluation_seconds(args.model, args.size, args.repeats) if args.model else float("nan")
    print(f"one evaluation of the default objective, {args.size} px, CPU provider: {evaluation:.3f} s")
    print(f"\n{'':34} {'seconds':>8} {'of an evaluation':>17}")
    for name, seconds in times.items():
        print(f"{name:34} {seconds:8.3f} {seconds / evaluation:17.1%}")
    for label, d, u in (("today (float64, 3-pass update)", "direction, float64 upcast", "update, 3 passes"),
                        ("float64, fused update", "direction, float64 upcast", "update, fused (2 passes)"),
                        ("float32 BLAS", "direction, float32 BLAS", "update, float32 BLAS (2 passes)")):
        total = times[d] + times[u]
        print(f"iteration's memory work, {label:32} {total:6.3f} s = {total / evaluation:6.1%} of an evaluation")
    print(f"float32 direction vs float64: relative L2 {error:.1e}, cosine {cosine:.9f}")


if __name__ == "__main__":
    main()
