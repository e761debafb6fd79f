"""The OpenVINO execution provider against the CPU provider, side by side in one run (needs 'nst-rt[openvino]').

    python benchmarks/openvino.py [--sizes 256 512] [--repeats 3] [--run-size 0] [--weights FILE --arch vgg16]

Per features+VJP pass (through nst_rt.network.session.Network, IO binding): CPU provider fp32, OpenVINO fp32,
OpenVINO bf16, interleaved; the first pass at each size (OpenVINO compiles per input shape); the image
gradient's distance from the CPU provider's. With --run-size N > 0, also a whole stylization of the example
images at N px per configuration, and each saved image's objective scored in fp32 on the CPU provider.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = (("cpu", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"))
USED = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def pass_once(network, x):
    acts = network.forward(x, USED)
    cotangents = network.cotangents(set(USED))
    for name in USED:
        np.multiply(acts[name], 1e-3, out=cotangents[name])
    return network.backward().copy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-size", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--arch", default="vgg19", choices=["vgg16", "vgg19"], help="the weights' architecture")
    args = parser.parse_args()
    import onnxruntime

    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.network.precision import cpu_bf16_flags

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
    print(f"CPU: {model_name}; bf16 flags: {', '.join(cpu_bf16_flags()) or 'none'}; "
          f"onnxruntime {onnxruntime.__version__} {onnxruntime.get_available_providers()}; {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        export = ["nst-rt", "export", args.arch, "--out", tmp]
        export += ["--weights", str(args.weights)] if args.weights else ["--random-weights", "0"]
        subprocess.run(export, check=True, capture_output=True)
        model = load_model(args.arch, tmp)
        networks = {c: Network(model, c[0], precision=c[1]) for c in CONFIGS}
        for size in args.sizes:
            x = np.random.default_rng(size).random((1, 3, size, size))
            first, grads, times = {}, {}, {c: [] for c in CONFIGS}
            for c, net in networks.items():
                started = time.perf_counter()
                grads[c] = pass_once(net, x)
                first[c] = time.perf_counter() - started
            for _ in range(args.repeats):
                for c, net in networks.items():  # interleaved, so load changes hit all three alike
                    started = time.perf_counter()
                    pass_once(net, x)
                    times[c].append(time.perf_counter() - started)
            base = grads[CONFIGS[0]]
            for c in CONFIGS:
                rel = np.linalg.norm(grads[c] - base) / np.linalg.norm(base)
                print(f"{size} px  {c[0]:8s} {c[1]}: pass {np.median(times[c]):.3f} s (first {first[c]:.2f} s), "
                      f"gradient vs CPU provider {rel:.1e} relative L2")
        if args.run_size:
            run_whole(networks, args, tmp)


def run_whole(networks, args, models_dir) -> None:
    from nst_rt.io.image_load import load_image
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.stylizer import Stylizer

    content = ROOT / "examples" / "content" / "chelsea.png"
    style = ROOT / "examples" / "style" / "starry_night.jpg"
    scorer, results = None, {}
    for c in CONFIGS:
        stylizer = Stylizer(size=args.run_size, iterations=args.iterations, model=args.arch, models_dir=models_dir,
                            provider=c[0])
        stylizer.network = networks[c]
        started = time.perf_counter()
        result = stylizer.run(content, [style])
        results[c] = (time.perf_counter() - started, result)
    cpu_net = networks[CONFIGS[0]]
    for c, (seconds, result) in results.items():
        image = np.asarray(result.to_pil(), np.float32) / 255  # the saved 8-bit picture
        if scorer is None:
            from nst_rt.io.images import resize_longest

            style_img = resize_longest(load_image(style), args.run_size)
            content_img = resize_longest(load_image(content), args.run_size)
            o = stylizer.options
            scorer = Objective(cpu_net, content_img, [style_img], content_weight=o.content_weight,
                               style_weight=o.style_weight, tv_weight=o.tv_weight, normalize=o.normalize)
        loss, _ = scorer(image.transpose(2, 0, 1)[None].astype(np.float64))
        print(f"run {args.run_size} px {c[0]:8s} {c[1]}: {seconds:.1f} s, {result.evaluations} evaluations, "
              f"saved-image objective (fp32, CPU provider) {loss:.4g}")


if __name__ == "__main__":
    sys.exit(main())
