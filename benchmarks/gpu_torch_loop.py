"""An nst-rt iteration against a torch L-BFGS loop on the same GPU and weights, side by side in one run.

    python benchmarks/gpu_torch_loop.py --models-dir DIR --weights DIR/vgg19-random.pth [--sizes 256,512,1024]
        [--iterations 30] [--device cuda]

The torch loop is export/reference.py's recipe (content 1, style 1e6, no TV, the plain-PyTorch losses) with
``torch.optim.LBFGS`` (history 100, strong Wolfe, tolerances 0); nst-rt runs one scale of --iterations with the
same weights (export of --weights in --models-dir) and its defaults otherwise. Rows: fp32 against fp32 (TF32 off
in torch, --precision fp32 in nst-rt) and TF32 against torch's default (cuDNN convolutions in TF32). Prints
seconds per iteration and evaluations per iteration of each, and the ratio. ``--device cpu`` runs both on the
CPU (the CPU provider), a smoke run of the script where no GPU is at hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def torch_loop(arch: str, weights: Path, size: int, iterations: int, device: str, tf32: bool):
    """Seconds, iterations and evaluations of torch.optim.LBFGS on the reference loss, after one warm-up step."""
    import torch

    from nst_rt.export import reference

    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    network = reference.load_network(arch, weights)
    network.weights = [w.to(device) for w in network.weights]
    network.biases = [b.to(device) for b in network.biases]
    network.mean, network.std = network.mean.to(device), network.std.to(device)

    class OnDevice(reference.ReferenceLoss):
        def tensor(self, image):
            return super().tensor(image).to(device)

    content, style = reference.prepare(CONTENT, STYLE, size)
    loss = OnDevice(network, content, style)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(steps: int) -> tuple[float, int]:
        x = loss.tensor(content).requires_grad_(True)
        optimizer = torch.optim.LBFGS([x], lr=1, max_iter=steps, max_eval=steps * 2 + 20, history_size=100,
                                      tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        evaluations = [0]

        def closure():
            evaluations[0] += 1
            optimizer.zero_grad()
            value = loss(x)
            value.backward()
            return value

        sync()
        started = time.perf_counter()
        optimizer.step(closure)
        sync()
        return time.perf_counter() - started, evaluations[0]

    run(2)  # warm-up: cuDNN's algorithms chosen, memory allocated
    seconds, evaluations = run(iterations)
    return seconds, iterations, evaluations


def nst_rt_loop(models_dir: Path, arch: str, size: int, iterations: int, provider: str, precision: str):
    from nst_rt.pipeline.stylizer import Stylizer

    stylizer = Stylizer(models_dir=models_dir, model=arch, provider=provider, precision=precision,
                        size=size, iterations=iterations, scales=1)
    stylizer.derive(iterations=2).run(CONTENT, STYLE)  # warm-up
    started = time.perf_counter()
    out = stylizer.run(CONTENT, STYLE)
    return time.perf_counter() - started, out.iterations, out.evaluations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True, help="the state dict the export was made from")
    parser.add_argument("--arch", default="vgg19")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"machine: {cpu}, {os.cpu_count()} cores; GPU: {gpu}; torch {torch.__version__}, numpy {np.__version__}")
    rows = [("fp32 vs fp32", "fp32", False)]
    if args.device == "cuda":
        rows.append(("TF32 vs torch default", "tf32", True))
    print(f"\n{'size':>5} {'precision':>22} {'nst-rt s/it':>12} {'evals/it':>9} {'torch s/it':>11} {'evals/it':>9} "
          f"{'nst-rt/torch':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        for label, precision, tf32 in rows:
            ours = nst_rt_loop(args.models_dir, args.arch, size, args.iterations, args.device, precision)
            theirs = torch_loop(args.arch, args.weights, size, args.iterations, args.device, tf32)
            per = [(seconds / its, evals / its) for seconds, its, evals in (ours, theirs)]
            print(f"{size:>5} {label:>22} {per[0][0]:>12.4f} {per[0][1]:>9.2f} {per[1][0]:>11.4f} {per[1][1]:>9.2f} "
                  f"{per[0][0] / per[1][0]:>13.3f}")


if __name__ == "__main__":
    main()
