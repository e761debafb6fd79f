"""The OpenVINO execution provider against the CPU provider, side by side in one run (needs 'nst-rt[openvino]').

    python benchmarks/openvino.py [--sizes 256 512] [--repeats 3] [--run-size 0] [--weights FILE --arch vgg16]

Per features+VJP pass (through nst_rt.network.session.Network, IO binding): CPU provider fp32, OpenVINO fp32,
OpenVINO bf16, interleaved; the first pass at each size (OpenVINO compiles per input shape); the image
gradient's distance from the CPU provider's. With --run-size N > 0, also a whole stylization of the example
images at N px per configuration, and each saved image's objective scored in fp32 on the CPU provider.

    python benchmarks/openvino.py --settings [--sizes 512] [--repeats 3] [--weights FILE --arch vgg16]

``--settings``: OpenVINO's CPU settings tried one by one against what the runtime sets now, in bf16 and fp32,
interleaved: PERFORMANCE_HINT=LATENCY with NUM_STREAMS=1, CPU_DENORMALS_OPTIMIZATION, and a compiled-model
cache (cache_dir: the first pass of a fresh network, which compiles, with an empty cache and with a full one).
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
    parser.add_argument("--settings", action="store_true", help="try OpenVINO's CPU settings instead")
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
        export = ["nst-rt", "export", args.arch, "--out", tmp, "--name", args.arch]
        export += ["--weights", str(args.weights)] if args.weights else ["--random-weights", "0"]
        subprocess.run(export, check=True, capture_output=True)
        model = load_model(args.arch, tmp)
        if args.settings:
            return try_settings(model, args, Path(tmp))
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


# Each variant: extra CPU properties in OpenVINO's load_config, on top of what nst_rt.network.session sets.
VARIANTS = {"as set now": {}, "LATENCY, 1 stream": {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"},
            "denormals optimised": {"CPU_DENORMALS_OPTIMIZATION": "YES"}}


def _network(model, precision, extra=None, cache_dir=None):
    """A Network on OpenVINO whose load_config adds ``extra`` (and whose provider options add ``cache_dir``)."""
    import json

    from nst_rt.network import session

    original = session.provider_settings

    def settings(provider, *args, **kwargs):
        options = original(provider, *args, **kwargs)
        if provider == session.OPENVINO:
            config = json.loads(options["load_config"])
            config["CPU"].update(extra or {})
            options["load_config"] = json.dumps(config)
            if cache_dir:
                options["cache_dir"] = str(cache_dir)
        return options

    session.provider_settings = settings
    try:
        return session.Network(model, "openvino", precision=precision)
    finally:
        session.provider_settings = original


def try_settings(model, args, tmp: Path) -> None:
    for precision in ("bf16", "fp32"):
        networks = {name: _network(model, precision, extra) for name, extra in VARIANTS.items()}
        for size in args.sizes:
            x = np.random.default_rng(size).random((1, 3, size, size))
            times = {name: [] for name in networks}
            grads = {name: pass_once(net, x) for name, net in networks.items()}  # compiles at this shape
            for _ in range(args.repeats):
                for name, net in networks.items():
                    started = time.perf_counter()
                    pass_once(net, x)
                    times[name].append(time.perf_counter() - started)
            base = np.median(times["as set now"])
            for name in networks:
                rel = np.linalg.norm(grads[name] - grads["as set now"]) / np.linalg.norm(grads["as set now"])
                print(f"{size} px {precision} {name:20s}: pass {np.median(times[name]):.3f} s "
                      f"({np.median(times[name]) / base:.2f}x), gradient vs as set now {rel:.1e}")
        del networks
        for size in args.sizes:
            x = np.random.default_rng(size).random((1, 3, size, size))
            cache = tmp / f"ov-cache-{precision}-{size}"
            for label, cache_dir in (("no cache", None), ("empty cache", cache), ("full cache", cache)):
                started = time.perf_counter()
                net = _network(model, precision, cache_dir=cache_dir)
                loaded = time.perf_counter() - started
                started = time.perf_counter()
                pass_once(net, x)
                print(f"{size} px {precision} {label:12s}: network {loaded:.2f} s, first pass {time.perf_counter() - started:.2f} s")
                del net


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
