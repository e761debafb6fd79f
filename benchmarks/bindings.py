"""Bindings made and seconds per tiled evaluation of a non-square image (windows of several shapes).

    python benchmarks/bindings.py --model DIR [--height 683] [--width 1365] [--tile 256] [--repeats 2]

Shallow layers (content relu2_2, style relu1_1 relu2_1) keep it short on a small CPU; the bindings counted
are ONNX Runtime io_binding() calls (two per bound buffer set).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from nst_rt.network.model import load_model
from nst_rt.network.session import Network
from nst_rt.objective.tiled import TiledObjective

SETTINGS = dict(content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_1"], content_weight=1.0,
                style_weight=1e3, tv_weight=0.0, normalize=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--height", type=int, default=683)
    parser.add_argument("--width", type=int, default=1365)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    made = []
    real = ort.InferenceSession.io_binding
    ort.InferenceSession.io_binding = lambda self: made.append(1) or real(self)
    model_dir = Path(args.model)
    network = Network(load_model(model_dir.name, model_dir.parent), "cpu")
    rng = np.random.default_rng(0)
    content = rng.random((args.height, args.width, 3), dtype=np.float32)
    objective = TiledObjective(network, content, [content[::-1]], tile=args.tile, **SETTINGS)
    x = rng.random((1, 3, args.height, args.width))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    for _ in range(args.repeats):
        before, started = len(made), time.perf_counter()
        objective(x)
        print(f"{args.width}x{args.height} tile {args.tile}: {time.perf_counter() - started:.2f} s per evaluation, "
              f"{len(made) - before} bindings ({cpu})")


if __name__ == "__main__":
    main()
