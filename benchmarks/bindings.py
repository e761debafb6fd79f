"""Bindings made and seconds per tiled evaluation of a non-square image (windows of several shapes).

    python benchmarks/bindings.py --model DIR [--height 683] [--width 1365] [--tile 256] [--repeats 2]
    python benchmarks/bindings.py --model DIR --device-path   (the CPU provider driven through the device code)

Also prints the seconds spent in ``Network.bind`` (building bindings, uploading cotangents) per evaluation.

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
    parser.add_argument("--device-path", action="store_true", help="bind as on a device (inputs copied at bind time)")
    args = parser.parse_args()
    made = []
    real = ort.InferenceSession.io_binding
    ort.InferenceSession.io_binding = lambda self: made.append(1) or real(self)
    model_dir = Path(args.model)
    network = Network(load_model(model_dir.name, model_dir.parent), "cpu")
    network.shares_host_memory = not args.device_path
    in_bind = [0.0]
    real_bind = network.bind

    def timed_bind(*a):
        started = time.perf_counter()
        try:
            return real_bind(*a)
        finally:
            in_bind[0] += time.perf_counter() - started

    network.bind = timed_bind
    rng = np.random.default_rng(0)
    content = rng.random((args.height, args.width, 3), dtype=np.float32)
    objective = TiledObjective(network, content, [content[::-1]], tile=args.tile, **SETTINGS)
    x = rng.random((1, 3, args.height, args.width))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    for _ in range(args.repeats):
        before, started, in_bind[0] = len(made), time.perf_counter(), 0.0
        objective(x)
        path = "device path" if args.device_path else "host path"
        print(f"{args.width}x{args.height} tile {args.tile}, {path}: {time.perf_counter() - started:.2f} s per "
              f"evaluation, {len(made) - before} bindings, {in_bind[0] * 1e3:.1f} ms in Network.bind ({cpu})")


if __name__ == "__main__":
    main()
