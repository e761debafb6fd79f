"""The optimiser's own cost per L-BFGS iteration: time spent outside the objective, and allocations.

    python benchmarks/hotpath.py --model MODEL_DIR [--size 512] [--iterations 10] [--tile N]

One default-settings stylization of one scale (L-BFGS, tv on, box bounds). The objective is wrapped so that
its time is measured apart from the driver's (direction, line search bookkeeping, projections, callback,
checkpoint-free progress). Prints, with the CPU model:
- wall time per iteration, the objective's share, and the driver's (wall minus objective) in ms;
- the peak memory numpy and Python hold (tracemalloc), in float64 vectors of the image's size.
The timing covers iterations 2 to the last (no targets, no set-up). Run it on two versions of the code side by side to compare them; tracemalloc slows allocation, so its
run is separate from the timed one.
"""

from __future__ import annotations

import argparse
import inspect
import platform
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS)

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "astronaut.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class _Timed:
    """The objective with its time counted; passes the gradient buffer through when both sides take one."""

    def __init__(self, objective) -> None:
        self.objective = objective
        self.seconds = 0.0
        self.calls = 0
        self._takes_out = "out" in inspect.signature(objective.__call__).parameters

    def __getattr__(self, name):
        return getattr(self.objective, name)

    def __call__(self, x, out=None):
        began = time.perf_counter()
        try:
            if self._takes_out:
                return self.objective(x, out=out)
            return self.objective(x)
        finally:
            self.seconds += time.perf_counter() - began
            self.calls += 1


def run(model: Path, size: int, iterations: int, tile: int | None, traced: bool) -> None:
    import tracemalloc

    from nst_rt.pipeline.stylizer import Stylizer

    stylizer = Stylizer(model=str(model), size=size, scales=1, iterations=iterations,
                        **({"tile": tile} if tile else {}))
    timed: list[_Timed] = []

    def wrap(objective, shape):
        timed.append(_Timed(objective))
        return timed[-1]

    if traced:
        tracemalloc.start()
    marks: list[tuple[float, float]] = []  # at each iteration's end: (clock, objective seconds so far)

    def progress(p):
        if p.iteration > 0:
            marks.append((time.perf_counter(), timed[0].seconds))

    result = stylizer.run(CONTENT, STYLE, progress=progress, wrap_objective=wrap)
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        vector = 3 * size * size * 8  # the longest side is `size`; the astronaut is square
        print(f"  peak numpy + Python memory {peak / 1e6:.0f} MB = {peak / vector:.1f} float64 image vectors")
        return
    # From the first iteration's end to the last's: no targets, no set-up, only iterations.
    (t0, o0), (t1, o1) = marks[0], marks[-1]
    nit = len(marks) - 1
    print(f"  {result.iterations} iterations, {timed[0].calls} evaluations; over iterations 2 to {len(marks)}:")
    print(f"  per iteration {1e3 * (t1 - t0) / nit:.0f} ms: objective {1e3 * (o1 - o0) / nit:.0f} ms, "
          f"driver and callback {1e3 * ((t1 - t0) - (o1 - o0)) / nit:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="an exported model directory")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--tile", type=int, help="tile size (default: the whole image)")
    args = parser.parse_args()
    print(f"{cpu_model()}; {args.size} px, {args.iterations} iterations, "
          f"{'tiles of %d px' % args.tile if args.tile else 'whole image'}")
    run(args.model, args.size, args.iterations, args.tile, traced=False)
    run(args.model, args.size, args.iterations, args.tile, traced=True)


if __name__ == "__main__":
    main()
