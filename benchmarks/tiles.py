"""Tiled evaluation: how exact it is for each halo, and what it costs in time and memory.

    python benchmarks/tiles.py halo --model random=MODELS/vgg16 --model imagenet=REAL/vgg16
    python benchmarks/tiles.py runs --model REAL/vgg16 --size 2048 --iterations 2 --tiles 2048,512
    python benchmarks/tiles.py vectors --model REAL/vgg16 --size 1024 --tile 256 --iterations 4

``halo``: at each size (default 512 px, tiles of 128 px) the value and the image gradient of the tiled
objective against the untiled one, for halos of 0 to 96 px, at a point between the content image and
noise (the kind of point an optimisation visits). value: |tiled - untiled| / |untiled|; gradient: relative
L2 error. The smallest halo that keeps the gradient error <= 1e-3 and the value exact (<= 1e-6) is marked.
Tiles at the image's border reach further inside (every window has the same size), so the halo a row names
is the interior tiles'; at two tiles a side every tile is a border tile with twice the halo inside, which
hides the error of a short one: measure at four tiles a side or more.

``runs``: one ``nst-rt stylize`` process per tile size under /usr/bin/time -v (a tile size at least as
large as the image runs it whole), with its wall time, peak RSS and final loss. ``--unchecked`` runs the
whole image past the memory check, whose estimate is on the safe side, to measure what a run the planner
refuses actually takes (the operating system kills one that does not fit).

``vectors``: the peak of the memory numpy and Python hold during a tiled run (tracemalloc), in float64
vectors of the image's size: what the optimiser, the objective and the pipeline keep per pixel, apart from
ONNX Runtime's own memory (at 4096 px one such vector is 400 MB).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "astronaut.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
HALOS = (0, 16, 32, 48, 64, 80, 96)
_DEFAULTS = nst_rt.Options()  # the loss weights of a default run, read from their one home
SETTINGS = {name: getattr(_DEFAULTS, name) for name in ("content_weight", "style_weight", "tv_weight", "normalize")}


def halo_table(models: list[tuple[str, Path]], sizes: list[int], tile: int, threads: int | None) -> None:
    from nst_rt.io import image_load
    from nst_rt.io import images
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective
    from nst_rt.objective.tiled import TiledObjective, exact_halo

    content_full = image_load.load_image(CONTENT)
    style_full = image_load.load_image(STYLE)
    print("| weights | size | halo | value rel. error | gradient rel. L2 error |")
    print("|---|---|---|---|---|")
    for label, path in models:
        model = load_model(path)
        network = Network(model, "cpu", threads)
        for size in sizes:
            content = images.resize_longest(content_full, size)
            style = images.resize_longest(style_full, size)
            noise = np.random.default_rng(0).random(content.shape, dtype=np.float32)
            x = np.ascontiguousarray((0.7 * content + 0.3 * noise).transpose(2, 0, 1)[None], dtype=np.float64)
            whole = Objective(network, content, [style], **SETTINGS)
            value, grad = whole(x)
            grad = np.array(grad, np.float64)
            h, w = content.shape[:2]
            chosen = None
            for halo in HALOS:
                tiled = TiledObjective(network, content, [style], tile=tile, halo=halo, **SETTINGS)
                tiled_value, tiled_grad = tiled(x)
                value_error = abs(tiled_value - value) / abs(value)
                grad_error = float(np.linalg.norm(tiled_grad - grad) / np.linalg.norm(grad))
                mark = ""
                if chosen is None and grad_error <= 1e-3 and value_error <= 1e-6:
                    chosen, mark = halo, " **(smallest exact)**"
                print(f"| {label} ({model.architecture}) | {w}x{h} | {halo}{mark} | {value_error:.1e} | "
                      f"{grad_error:.1e} |", flush=True)
            default = exact_halo(model.architecture, list(whole.used_layers))
            print(f"| {label} ({model.architecture}) | {w}x{h} | default: {default} "
                  f"({'matches' if default == chosen else 'DIFFERS from'} the measurement) | | |", flush=True)


def measure(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GiB, the command's last line) of one process under /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if "Maximum resident set size" not in done.stderr:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    seconds = sum(float(part) * 60 ** k for k, part in enumerate(reversed(wall.split(":"))))
    summary = next((line for line in done.stderr.splitlines() if line.startswith("wrote ")), "")
    if done.returncode != 0:  # e.g. killed by the kernel for memory: the row says so, the table goes on
        killed = next((line for line in done.stderr.splitlines() if "terminated by signal" in line), "")
        summary = "failed: " + (killed.strip() or done.stderr.strip().splitlines()[0])
    return seconds, rss_kb / (1 << 20), summary


# The CLI with the memory check's "available" unknown, so that nothing is refused for memory.
UNCHECKED = "import nst_rt.pipeline.memory as m; m.available_bytes = lambda *a, **k: None; from nst_rt.cli import main; main()"


def runs(model: Path, size: int, iterations: int, tiles: list[int], extra: list[str], unchecked: bool) -> None:
    print("| run | tile | wall time | peak RSS | result |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as out:
        for tile in tiles:
            whole = tile >= size
            launch = ["-c", UNCHECKED] if unchecked and whole else ["-m", "nst_rt"]
            command = [sys.executable, *launch, "stylize", str(CONTENT), str(STYLE), "--model", str(model),
                       "--size", str(size), "--iterations", str(iterations), "--tile", str(tile),
                       "-o", str(Path(out) / f"tile{tile}.png"), *extra]
            seconds, rss, summary = measure(command)
            how = ("whole image" + (" (memory check skipped)" if unchecked else "")) if whole else f"tiles of {tile} px"
            print(f"| {size} px, {iterations} iterations {' '.join(extra)} | {how} | {seconds:.0f} s | {rss:.2f} GiB | "
                  f"{summary} |", flush=True)


def vectors(model: Path, size: int, tile: int, iterations: int) -> None:
    import tracemalloc

    from nst_rt.pipeline.stylizer import Stylizer

    stylizer = Stylizer(model=str(model), size=size, scales=1, iterations=iterations, tile=tile)
    tracemalloc.start()
    result = stylizer.run(CONTENT, STYLE)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{size} px, tiles of {tile} px, {iterations} iterations: numpy + Python peak {peak / 1e6:.0f} MB = "
          f"{peak / (3 * size * size * 8):.1f} float64 image vectors (loss {result.loss:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    halo = sub.add_parser("halo", help="value and gradient error against the untiled objective, per halo")
    halo.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                      help="an exported model directory, with a label for the table (repeatable)")
    halo.add_argument("--sizes", default="512")
    halo.add_argument("--tile", type=int, default=128)
    halo.add_argument("--threads", type=int)
    run = sub.add_parser("runs", help="wall time and peak RSS of whole runs, per tile size")
    run.add_argument("--model", type=Path, required=True, help="an exported model directory")
    run.add_argument("--size", type=int, default=2048)
    run.add_argument("--iterations", type=int, default=2)
    run.add_argument("--tiles", default="2048,512", help="tile sizes; one >= --size runs the whole image")
    run.add_argument("--unchecked", action="store_true", help="run the whole image past the memory check")
    vec = sub.add_parser("vectors", help="peak numpy + Python memory of a tiled run, in image-sized vectors")
    vec.add_argument("--model", type=Path, required=True, help="an exported model directory")
    vec.add_argument("--size", type=int, default=1024)
    vec.add_argument("--tile", type=int, default=256)
    vec.add_argument("--iterations", type=int, default=4)
    args, extra = parser.parse_known_args()
    if args.what == "halo":
        models = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args.model]
        halo_table(models, [int(s) for s in args.sizes.split(",")], args.tile, args.threads)
    elif args.what == "vectors":
        vectors(args.model, args.size, args.tile, args.iterations)
    else:
        runs(args.model, args.size, args.iterations, [int(t) for t in args.tiles.split(",")], extra, args.unchecked)


if __name__ == "__main__":
    main()
