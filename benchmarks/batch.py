"""Batch throughput, side by side in one run: the local engine against Ray Data on this machine.

    python benchmarks/batch.py            (16 pictures, 256 px, 50 iterations: about 20 minutes on 2 cores)
    python benchmarks/batch.py --pictures 4 --size 64 --iterations 5     (a smoke run)

Configurations: the local engine (one process, 2 ONNX Runtime threads); Ray with 2 actors x 1 thread; Ray with
1 actor x 2 threads. For each: wall time of the whole batch (model loads included), pictures per minute,
the mean time a worker spent on one picture, and the overhead = wall - (time spent stylizing / workers): model
loading for both engines, and for Ray also actor start-up, scheduling and the idle tail. Starting the local Ray itself is timed apart.
The load average is printed beside each figure: on a shared machine other work shows up there.
Needs the export and ray extras; uses seeded random VGG-19 weights (they cost what pretrained ones do).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENTS = sorted((ROOT / "examples" / "content").glob("*.png"))
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
CONFIGS = [("local", 1, 2), ("ray", 2, 1), ("ray", 1, 2)]  # engine, processes or actors, threads each


def make_pictures(folder: Path, count: int) -> None:
    """``count`` different pictures: crops of the example photos at shifting offsets, every other one mirrored."""
    from PIL import Image

    for k in range(count):
        with Image.open(CONTENTS[k % len(CONTENTS)]) as img:
            img = img.convert("RGB")
        w, h = img.size
        shift = (k // len(CONTENTS)) * 0.04
        box = (int(w * shift), int(h * shift), int(w * (0.8 + shift)), int(h * (0.8 + shift)))
        picture = img.crop(box)
        if k % 2:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        picture.save(folder / f"picture{k:02d}.png")


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=50)
    args = parser.parse_args()

    import onnxruntime
    import ray

    from nst_rt.batching.api import DONE, batch
    from nst_rt.export.exporter import export_model
    from nst_rt.export.vgg import random_state_dict

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}, numpy {np.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, ray {ray.__version__}")
    print(f"batch: {args.pictures} pictures, {args.size} px, {args.iterations} iterations, style {STYLE.name}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import torch

        torch.save(random_state_dict("vgg19", 0), tmp / "vgg19.pth")
        export_model("vgg19", tmp / "models", weights=tmp / "vgg19.pth", log=lambda line: None)
        (tmp / "in").mkdir()
        make_pictures(tmp / "in", args.pictures)
        options = dict(size=args.size, iterations=args.iterations, models_dir=tmp / "models", provider="cpu")

        rows = []
        for engine, workers, threads in CONFIGS:
            if engine == "ray" and not ray.is_initialized():
                load_before, started = load(), time.perf_counter()
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
                print(f"starting the local Ray: {time.perf_counter() - started:.1f} s (load {load_before})")
            out = tmp / f"out-{engine}-{workers}x{threads}"
            extra = {"actors": workers} if engine == "ray" else {}
            load_before, started = load(), time.perf_counter()
            report = batch([tmp / "in"], STYLE, out, engine=engine, threads=threads, **options, **extra)
            wall = time.perf_counter() - started
            busy = sum(r.seconds for r in report.results)
            if report.count(DONE) != args.pictures:
                sys.exit(f"{engine}: only {report.count(DONE)} of {args.pictures} done: {report.failed}")
            rows.append((engine, workers, threads, wall, busy, out, load_before, load()))
        ray.shutdown()

        local_wall = rows[0][3]
        print("\n| engine | workers x threads | wall | pictures/min | throughput vs local | s per picture "
              "in a worker | overhead: wall - stylizing / workers | load avg 1/5/15 min before -> after |")
        print("|---|---|---|---|---|---|---|---|")
        for engine, workers, threads, wall, busy, out, before, after in rows:
            print(f"| {engine} | {workers} x {threads} | {wall:.1f} s | {60 * args.pictures / wall:.2f} | "
                  f"{local_wall / wall:.2f} | {busy / args.pictures:.1f} s | {wall - busy / workers:.1f} s | {before} -> {after} |")
        local_out = rows[0][5]
        for engine, workers, threads, *_, out, _, _ in rows[1:]:
            same = all((out / p.name).read_bytes() == p.read_bytes() for p in sorted(local_out.iterdir()))
            print(f"{engine} {workers} x {threads}: output bytes {'identical to' if same else 'differ from'} "
                  f"the local engine's")


if __name__ == "__main__":
    main()
