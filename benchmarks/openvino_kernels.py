"""Which kernels OpenVINO's CPU plugin runs for the two graphs of an export, from its own profiling (PERF_COUNT).

    python benchmarks/openvino_kernels.py MODEL_DIR [--size 256] [--precision bf16]

Needs the ``openvino`` wheel of the OpenVINO that onnxruntime-openvino carries (2025.4.1 for onnxruntime-openvino
1.24.1) in its own virtual environment, and numpy; MODEL_DIR is an export's directory (features.onnx, vjp.onnx).
Each graph is compiled at SIZE px with INFERENCE_PRECISION_HINT and PERF_COUNT, run once after a warm-up, and
its convolutions' kernels listed: the count of each kernel name, the runtime precision, and any reference
(``ref``) kernel by name, which would mean a node the plugin has no optimised path for.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

CONVOLUTIONS = ("Convolution", "GroupConvolution", "Deconvolution")


def layer_shape(name: str, channels: int, size: int) -> list[int]:
    """An activation's shape: relu{B}_{N} comes after B-1 poolings."""
    block = int(re.match(r"(?:grad_)?relu(\d+)_", name).group(1))
    return [1, channels, size >> (block - 1), size >> (block - 1)]


def profile(core, path: Path, size: int, precision: str):
    model = core.read_model(str(path))
    shapes = {}
    for port in model.inputs:
        name = port.get_any_name()
        channels = port.get_partial_shape()[1].get_length()
        shapes[name] = [1, 3, size, size] if name == "image" else layer_shape(name, channels, size)
    model.reshape(shapes)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERF_COUNT": "YES"})
    rng = np.random.default_rng(0)
    inputs = {name: rng.random(shape, dtype=np.float32) for name, shape in shapes.items()}
    request = compiled.create_infer_request()
    request.infer(inputs)  # warm-up
    request.infer(inputs)
    return compiled.get_property("INFERENCE_PRECISION_HINT"), request.profiling_info


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "f32"])
    args = parser.parse_args()
    sys.path.remove(str(Path(__file__).resolve().parent))  # this folder's openvino.py would shadow the package
    import openvino as ov

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    core = ov.Core()
    print(f"CPU: {model_name}; OpenVINO {ov.__version__}; {args.model_dir}, {args.size} px, hint {args.precision}")
    fallback = 0
    for graph in ("features", "vjp"):
        hint, infos = profile(core, args.model_dir / f"{graph}.onnx", args.size, args.precision)
        convs = [i for i in infos if i.node_type in CONVOLUTIONS and i.status.name == "EXECUTED"]
        kinds = collections.Counter(i.exec_type for i in convs)
        total = sum(i.real_time.total_seconds() for i in infos)
        conv_time = sum(i.real_time.total_seconds() for i in convs)
        print(f"{graph}: compiled with {hint}; {len(convs)} convolutions executed, {conv_time * 1e3:.1f} of "
              f"{total * 1e3:.1f} ms")
        for kind, count in kinds.most_common():
            print(f"  {count:3d} x {kind}")
        refs = [i for i in convs if "ref" in i.exec_type.lower()]
        for info in refs:
            print(f"  reference kernel: {info.node_name} ({info.exec_type})")
        fallback += len(refs)
        slow = sorted((i for i in infos if i.node_type not in CONVOLUTIONS), key=lambda i: -i.real_time)[:5]
        print("  other nodes taking the most time: " + ", ".join(
            f"{i.node_type} {i.exec_type} {i.real_time.total_seconds() * 1e3:.1f} ms" for i in slow))
    print(f"reference convolution kernels: {fallback}")
    return 1 if fallback else 0


if __name__ == "__main__":
    sys.exit(main())
