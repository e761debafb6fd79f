"""Every performance figure of the README, measured side by side in one run on this machine.

    python benchmarks/bench.py                  (about 12 minutes on 2 cores; seeded random VGG-19 weights)
    python benchmarks/bench.py --weights FILE   (a torchvision-format state dict instead)
    python benchmarks/bench.py --quick          (smaller sizes, fewer repeats: a smoke run)
    python benchmarks/bench.py --arch vgg16 --weights vgg16-torchvision.pth --only parity
                                                (the parity rows on ImageNet VGG-16)

Sections: machine; graphs (ONNX Runtime features+VJP vs torch eager autograd vs the dense-FLOP bound);
one full objective evaluation vs the graphs alone; IO binding vs plain run; parity with a plain-PyTorch
stylization (objective of the saved image, wall time, peak memory, bounds vs clamping); memory estimate
vs measured peak; install size; import time. Ratios are measured in this one run, never across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up: first runs allocate and prepack
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def best_of_each(functions: dict, repeats: int) -> dict:
    """Best time of each function, their runs interleaved so that drifts of the machine hit all alike."""
    for fn in functions.values():
        fn()  # warm-up
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            time.sleep(0.3)  # let the previous library's idle threads (OpenMP, OpenBLAS) stop spinning
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def machine() -> None:
    import onnxruntime
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next((int(line.split()[1]) / 2**20 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    print(f"machine: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.machine()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"torch {torch.__version__}")


def sgemm_rate(threads: int) -> float:
    """float32 matrix-multiply rate in FLOP/s (numpy's BLAS and torch's, the better of the two)."""
    import torch

    torch.set_num_threads(threads)
    n = 4096
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    seconds = min(best_of(lambda: a @ b, 3), best_of(lambda: ta @ tb, 3))
    return 2 * n**3 / seconds


def conv_flops(network, height: int, width: int) -> float:
    """FLOPs of the convolutions of one features pass (the VJP's convolutions cost the same again)."""
    from nst_rt.network.session import activation_shape

    total, channels_in = 0.0, 3
    for layer in network.layers:
        _, c, h, w = activation_shape(layer, network.channels[layer], height, width)
        total += 2 * 9 * channels_in * c * h * w
        channels_in = c
    return total


def graphs(network, reference, sizes, rate: float, repeats: int, threads: int) -> None:
    import torch

    from nst_rt.io.image_load import load_image
    from nst_rt.io.images import resize_to
    from nst_rt.model_format import IMAGE_INPUT, cotangent_name
    from nst_rt.objective.whole import Objective

    torch.set_num_threads(threads)
    print("\n## Graphs: one features + VJP pass (gradient with respect to the image), VGG-19, best of "
          f"{repeats}")
    print(f"{'size':>9} {'ORT':>8} {'torch':>8} {'bound':>8} {'ORT/torch':>10} {'ORT/bound':>10} "
          f"{'objective':>10} {'obj/ORT':>8} {'plain run':>10} {'bind/plain':>11}")
    rng = np.random.default_rng(0)
    content = load_image(CONTENT)
    style = load_image(STYLE)
    for size in sizes:
        x = rng.random((1, 3, size, size), dtype=np.float32)

        def ort_pass():  # the graphs alone, on whatever the cotangent buffers hold (the cost does not depend on it)
            network.forward(x)
            network.backward()

        network.forward(x)
        for layer, array in network.cotangents(set()).items():
            array[...] = rng.standard_normal(array.shape, dtype=np.float32)
        feeds_cot = {cotangent_name(n): a.copy() for n, a in network.cotangents(set()).items()}

        def plain_pass():
            acts = network.features_session.run(None, {IMAGE_INPUT: x})
            network.vjp_session.run(None, {**dict(zip(network.layers, acts)), **feeds_cot})

        image = torch.from_numpy(x)
        cots = [torch.from_numpy(feeds_cot[cotangent_name(n)]) for n in network.layers]

        def torch_pass():
            xi = image.clone().requires_grad_(True)
            acts = reference(xi)
            torch.autograd.grad([acts[n] for n in network.layers], [xi], cots)

        objective = Objective(network, resize_to(content, (size, size)), [resize_to(style, (size, size))],
                              content_weight=1.0, style_weight=1e6, tv_weight=0.0, normalize=False)
        x64 = x.astype(np.float64)
        best = best_of_each({"ort": ort_pass, "plain": plain_pass, "torch": torch_pass,
                             "objective": lambda: objective(x64)}, repeats)
        ort, plain, eager, full = best["ort"], best["plain"], best["torch"], best["objective"]
        bound = 2 * conv_flops(network, size, size) / rate
        print(f"{size:>4}x{size:<4} {ort:>7.3f}s {eager:>7.3f}s {bound:>7.3f}s {ort / eager:>10.2f} "
              f"{ort / bound:>10.2f} {full:>9.3f}s {full / ort:>8.2f} {plain:>9.3f}s {ort / plain:>11.2f}")
    print(f"bound = 2 x {conv_flops(network, 512, 512) / 1e9:.1f} GFLOP at 512 px / measured sgemm rate "
          f"{rate / 1e9:.0f} GFLOP/s; torch: weights frozen, gradient for the image only")


# Runs a command and reports its wall time and peak RSS. A small launcher process is needed: Linux reports a
# forked child's peak RSS as at least its parent's at fork time, and this benchmark's own process is large.
LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, status)
sys.stderr.write(child.stderr.read().decode())
"""


def run_measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds (process start to exit) and peak RSS in MiB of one command."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True)
    wall, rss_kb, status = done.stdout.split()
    if int(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr}")
    return float(wall), int(rss_kb) / 1024


def parity(models_dir: Path, weights: Path, cases, threads: int, arch: str = "vgg19") -> None:
    import torch

    from nst_rt.export import reference
    from nst_rt.io.image_load import load_image

    print(f"\n## Parity with plain PyTorch, {arch} from {weights.name} (content 1, style 1e6, TV 0, from the content "
          "image, one scale; torch.optim.LBFGS history 100, strong Wolfe)")
    print("score = objective of the image as saved (8-bit, clamped), float64; wall = process start to file written")
    print(f"{'size':>5} {'iters':>6} {'ours/torch score':>17} {'no-bounds/torch':>16} {'ours wall':>10} "
          f"{'torch wall':>11} {'wall ratio':>11} {'ours RSS':>9} {'torch RSS':>10}")
    net64 = reference.load_network(arch, weights, torch.float64)
    with tempfile.TemporaryDirectory() as tmp:
        for size, iterations in cases:
            content, style = reference.prepare(CONTENT, STYLE, size)
            out = {name: Path(tmp) / f"{name}-{size}-{iterations}.png" for name in ("ours", "free", "torch")}
            common = [str(CONTENT), str(STYLE), "--size", str(size), "--iterations", str(iterations),
                      "--models-dir", str(models_dir), "--model", arch, "--provider", "cpu", "--threads",
                      str(threads), "-q", "--scales", "1", "--history", "100", "--no-normalize", "--content-weight", "1", "--style-weight", "1e6", "--tv-weight", "0"]
            ours_wall, ours_rss = run_measured([sys.executable, "-m", "nst_rt", "stylize", *common,
                                                "-o", str(out["ours"])])
            run_measured([sys.executable, "-m", "nst_rt", "stylize", *common, "--no-bounds", "-o", str(out["free"])])
            torch_wall, torch_rss = run_measured([
                sys.executable, "-m", "nst_rt.export.reference", str(CONTENT), str(STYLE),
                str(out["torch"]), "--weights", str(weights), "--arch", arch, "--size", str(size), "--iterations",
                str(iterations), "--threads", str(threads)])
            scores = {k: reference.score(load_image(p), content, style, net64) for k, p in out.items()}
            print(f"{size:>5} {iterations:>6} {scores['ours'] / scores['torch']:>17.3f} "
                  f"{scores['free'] / scores['torch']:>16.3f} {ours_wall:>9.1f}s {torch_wall:>10.1f}s "
                  f"{ours_wall / torch_wall:>11.2f} {ours_rss:>7.0f}MB {torch_rss:>8.0f}MB")


def memory_estimate(network, models_dir: Path, sizes, threads: int) -> None:
    from nst_rt.io.image_load import load_image
    from nst_rt.io.images import longest_side_size
    from nst_rt.pipeline.memory import estimate_bytes

    print("\n## Memory: estimate (checked before a run) vs measured peak RSS of a 3-iteration run")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            h, w = longest_side_size(*load_image(CONTENT).shape[:2], size)
            style_shape = longest_side_size(*load_image(STYLE).shape[:2], size)
            _, rss = run_measured([sys.executable, "-m", "nst_rt", "stylize", str(CONTENT), str(STYLE), "--size",
                                   str(size), "--iterations", "3", "--scales", "1", "--models-dir", str(models_dir),
                                   "--provider",
                                   "cpu", "--threads", str(threads), "-q", "-o", str(Path(tmp) / f"{size}.png")])
            # Three iterations hold three L-BFGS pairs, not a hundred: compare like with like.
            estimate = estimate_bytes(network, h, w, 3, [style_shape]) / 2**20
            print(f"{size:>5} px: estimate {estimate:>7.0f} MB, measured {rss:>7.0f} MB, "
                  f"estimate/measured {estimate / rss:.2f}")


def closure(requirements: list[str]) -> set[str]:
    """Names of the installed distributions ``requirements`` pull in (extras and markers ignored)."""
    import re

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        name = re.split(r"[\s;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [r for r in (dist.requires or []) if "extra ==" not in r]
    return seen


def installed_mb(names: set[str]) -> float:
    total = 0
    for name in names:
        for file in metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def footprint() -> None:
    runtime = closure(["numpy", "pillow", "typer", "onnxruntime"])
    torch_side = closure(["torch"])
    print("\n## Install size (installed files of each dependency closure) and import time (best of 5)")
    print(f"runtime (nst-rt[cpu]: {', '.join(sorted(runtime))}): {installed_mb(runtime):.0f} MB")
    print(f"torch ({', '.join(sorted(torch_side))}): {installed_mb(torch_side):.0f} MB")
    print(f"torch in the runtime closure: {'torch' in runtime}")

    def import_time(code: str) -> float:
        return best_of(lambda: subprocess.run([sys.executable, "-c", code], check=True), 5)

    base = import_time("pass")
    ours = import_time("import nst_rt.pipeline.stylizer, nst_rt.network.session, onnxruntime") - base
    torch_time = import_time("import torch") - base
    print(f"import time: nst-rt runtime + onnxruntime {ours:.2f} s, torch {torch_time:.2f} s "
          f"(interpreter start {base:.2f} s subtracted)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("vgg16", "vgg19"), default="vgg19")
    parser.add_argument("--weights", type=Path,
                        help="torchvision-format state dict of --arch [default: seeded random weights, seed 0]")
    parser.add_argument("--only", choices=("parity",), help="run one section only")
    parser.add_argument("--models-dir", type=Path, help="use an existing export of these weights (default: export)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats, for a smoke run")
    args = parser.parse_args()

    from nst_rt.export import reference
    from nst_rt.export.exporter import export_model
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network

    machine()
    with tempfile.TemporaryDirectory() as tmp:
        if args.weights is None:  # random filters cost exactly what pretrained ones do
            import torch

            from nst_rt.export.vgg import random_state_dict

            args.weights = Path(tmp) / f"{args.arch}-random.pth"
            torch.save(random_state_dict(args.arch, 0), args.weights)
        models_dir = args.models_dir or Path(tmp)
        if args.models_dir is None:
            export_model(args.arch, models_dir, weights=args.weights)
        if args.only == "parity":
            parity(models_dir, args.weights, [(128, 50), (128, 100), (256, 50), (256, 100)], args.threads, args.arch)
            return
        network = Network(load_model(args.arch, models_dir), "cpu", args.threads)
        torch_net = reference.load_network(args.arch, args.weights)
        rate = sgemm_rate(args.threads)
        if args.quick:
            graphs(network, torch_net, [64, 128], rate, 2, args.threads)
            parity(models_dir, args.weights, [(64, 10)], args.threads, args.arch)
            memory_estimate(network, models_dir, [128], args.threads)
        else:
            graphs(network, torch_net, [256, 512], rate, 3, args.threads)
            parity(models_dir, args.weights, [(128, 50), (128, 100), (256, 50), (256, 100)], args.threads, args.arch)
            memory_estimate(network, models_dir, [256, 512, 1024], args.threads)
        footprint()


if __name__ == "__main__":
    main()
