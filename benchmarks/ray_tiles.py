"""One picture's tiles on Ray actors against the local tiled engine: seconds and bytes per evaluation, RSS.

    python benchmarks/ray_tiles.py --size 2048 --tile 512 --evaluations 2

Side by side in one run on this machine, with seeded random VGG-16 weights (they cost what pretrained ones do):
the local tiled objective with 2 threads, 2 single-thread actors and 1 two-thread actor on a local Ray of
2 CPUs. Each engine computes its targets, then is evaluated once unmeasured and ``--evaluations`` times
measured at a point between the content image and noise. Bytes moved: the arrays put into the object store
and returned by the actors per evaluation (the pool's count). RSS: this process's (the driver's) and each
actor's, now and at its peak (VmRSS, VmHWM). Then a projection, labelled as one, of seconds per evaluation for
N single-thread CPU workers at larger sizes, from the measured per-window time and bytes, the driver's measured
L-BFGS step and an assumed network bandwidth.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "astronaut.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
_DEFAULTS = nst_rt.Options()
SETTINGS = {name: getattr(_DEFAULTS, name) for name in ("content_weight", "style_weight", "tv_weight", "normalize")}
BANDWIDTH = 1.25e9  # bytes/s assumed between driver and workers in the projection (10 Gbit/s Ethernet)
HISTORY = 10  # the L-BFGS pairs of the driver's step in the projection
PROJECTED_SIZES = (4096, 8192, 16384)
PROJECTED_WORKERS = (1, 2, 4, 8, 16)


def memory_of(pid="self") -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


def measure(objective, x, evaluations: int, pool=None) -> tuple[float, float]:
    """(seconds, bytes moved) per evaluation, after one unmeasured evaluation."""
    objective(x)
    moved, started = pool.moved if pool else 0, time.perf_counter()
    for _ in range(evaluations):
        objective(x)
    seconds = (time.perf_counter() - started) / evaluations
    return seconds, ((pool.moved - moved) / evaluations if pool else 0.0)


def lbfgs_step_seconds(pixels: int) -> float:
    """The driver's share per evaluation: an L-BFGS two-loop step (4 dot products and axpys per pair) on float64
    vectors of ``pixels`` x 3, timed here."""
    n = 3 * pixels
    s, y, q = np.ones((HISTORY, n)), np.ones((HISTORY, n)), np.ones(n)
    started = time.perf_counter()
    for i in range(HISTORY):
        q -= float(s[i] @ q) * y[i]
    for i in range(HISTORY):
        q += float(y[i] @ q) * s[i]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--evaluations", type=int, default=2)
    args = parser.parse_args()

    import onnxruntime
    import ray

    from nst_rt.io import image_load, images, layout
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.tiled import TiledObjective
    from nst_rt.pipeline import memory
    from nst_rt.pipeline.options import Options
    from nst_rt.pipeline.ray_tiles import RayEngine

    from footprint import cpu_model

    cpu = cpu_model()
    print(f"machine: {cpu}, {os.cpu_count()} cores (shared: load {os.getloadavg()[0]:.2f}); python "
          f"{platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, ray "
          f"{ray.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        subprocess.run([sys.executable, "-m", "nst_rt", "export", "vgg16", "--random-weights", "0", "--out",
                        str(models)], check=True, capture_output=True)
        content = images.resize_longest(image_load.load_image(CONTENT), args.size)
        style = images.resize_longest(image_load.load_image(STYLE), args.size)
        noise = np.random.default_rng(0).random(content.shape, dtype=np.float32)
        x = layout.to_nchw(0.7 * content + 0.3 * noise).astype(np.float64)
        h, w = content.shape[:2]

        rows = []
        network = Network(load_model("vgg16", models), "cpu", 2)
        local = TiledObjective(network, content, [style], tile=args.tile, **SETTINGS)
        windows, halo = len(local.tiles), local.halo
        print(f"picture {w}x{h}, tiles of {args.tile} px with a {halo} px halo: {windows} windows per pass")
        seconds, moved = measure(local, x, args.evaluations)
        rows.append(("local, 2 threads", seconds, moved, memory_of(), []))
        del local

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        for label, actors, threads in (("Ray, 2 actors x 1 thread", 2, 1), ("Ray, 1 actor x 2 threads", 1, 2)):
            engine = RayEngine(actors=actors)
            pool = engine.start(Options(model="vgg16", models_dir=models, threads=threads))
            remote = engine.objective(network, content, [style], tile=args.tile, **SETTINGS)
            seconds, moved = measure(remote, x, args.evaluations, pool)
            rows.append((label, seconds, moved, memory_of(), [memory_of(pid) for pid in pool.pids]))
            del remote
            engine.close()
        ray.shutdown()

    base = rows[0][1]
    print(f"\nmeasured, {args.evaluations} evaluations each after one unmeasured:")
    print("| engine | s per evaluation | vs local | MB moved per evaluation | driver RSS now/peak MiB | "
          "worker RSS now/peak MiB |")
    print("|---|---|---|---|---|---|")
    for label, seconds, moved, driver, workers in rows:
        worker = ", ".join(f"{now:.0f}/{peak:.0f}" for now, peak in workers) or "-"
        print(f"| {label} | {seconds:.2f} | {seconds / base:.2f}x | {moved / 1e6:.1f} | {driver[0]:.0f}/{driver[1]:.0f} "
              f"| {worker} |")

    # The per-window figures, from the two single-thread actors (each runs every other window in turn).
    two = rows[1]
    window_seconds = two[1] * 2 / (2 * windows)  # two passes of `windows` windows, on 2 workers at once
    window_bytes = (two[2] - 4 * 3 * h * w) / (2 * windows)  # less the image, put once
    print(f"\nper window (from 2 x 1-thread actors): {window_seconds:.3f} s and {window_bytes / 1e6:.2f} MB per "
          f"window and pass, tile {args.tile} px")
    print(f"\nPROJECTED (a model, not measured): seconds per evaluation with N single-thread CPU workers like "
          f"this machine's cores, tiles of {args.tile} px = driver's L-BFGS step (measured at 1024 px, scaled by the pixels, "
          f"{HISTORY} pairs) + 2 x ceil(windows / N) x window time + bytes / {BANDWIDTH / 1e9:.2f} GB/s (assumed):")
    step_per_pixel = lbfgs_step_seconds(1024 * 1024) / (1024 * 1024)  # linear in the pixels; measured at 1024 px
    print("| size | windows | driver s | " + " | ".join(f"N={n}" for n in PROJECTED_WORKERS) + " | bound at N=16 |")
    print("|---|---|---|" + "---|" * len(PROJECTED_WORKERS) + "---|")
    for size in PROJECTED_SIZES:
        count = memory.window_count(size, size, args.tile, halo)
        driver = step_per_pixel * size * size
        transfer = (2 * count * window_bytes + 4 * 3 * size * size) / BANDWIDTH
        cells, parts = [], {}
        for n in PROJECTED_WORKERS:
            compute = 2 * math.ceil(count / n) * window_seconds
            cells.append(f"{driver + compute + transfer:.0f} s")
            parts = {"driver": driver, "windows": compute, "transfers": transfer}
        print(f"| {size} | {count} | {driver:.1f} | " + " | ".join(cells) + f" | {max(parts, key=parts.get)} |")


if __name__ == "__main__":
    main()
