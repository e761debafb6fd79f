"""The CUDA provider against the CPU provider (and torch on the same GPU), side by side in one run.

    python benchmarks/gpu.py --models-dir DIR --model vgg19
    python benchmarks/gpu.py --models-dir DIR --model vgg19 --sizes 256,512 --repeats 3 --run-iterations 20

Needs onnxruntime-gpu and a GPU; the torch rows need torch with CUDA (skipped without). Sections:
- machine: CPU model and cores, GPU, versions;
- passes: one features + VJP pass (the graphs alone) on the CPU provider, the CUDA provider and torch eager
  CUDA (image gradient only, weights frozen), best of --repeats;
- evaluation: one whole objective evaluation on CUDA through the two graphs, split into the graphs with their
  transfers and the numpy losses on the host, with the GPU memory the run took (cudaMemGetInfo before the
  sessions and at each pass); and through the objective graph (the losses on the device too); then both with
  the point and the gradient in CuPy arrays (the iterate on the device: nothing image-sized crosses);
- runs: a stylization at each size, one scale, --run-iterations iterations, on each provider (wall time, loss of
  the result, CUDA/CPU ratios), on CUDA with the iterate in CuPy and, beside it, on the host; then the default
  coarse-to-fine run on CUDA alone (the iterate in CuPy where it imports).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS, as the CLI does)
import numpy as np
from bench import best_of  # benchmarks/bench.py: the best time of a few runs after a warm-up

from nst_rt.errors import RandomWeightsNotice

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def machine() -> None:
    import onnxruntime

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        gpu = "unknown (no nvidia-smi)"
    print(f"machine: {cpu}, {os.cpu_count()} cores; GPU: {gpu}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime {onnxruntime.__version__} "
          f"({', '.join(onnxruntime.get_available_providers())})")


class Timed:
    """Wraps a network's forward and backward to add up their time and sample the device's free memory."""

    def __init__(self, network, device_id: int = 0):
        from nst_rt.system.memory_probes import device_free_bytes

        self.seconds = {"forward": 0.0, "backward": 0.0}
        self.lowest_free = None
        for name in self.seconds:
            real = getattr(network, name)

            def timed(*args, _real=real, _name=name, **kwargs):
                started = time.perf_counter()
                result = _real(*args, **kwargs)
                self.seconds[_name] += time.perf_counter() - started
                if network.device == "cuda":
                    free = device_free_bytes(device_id)
                    if free is not None:
                        self.lowest_free = free if self.lowest_free is None else min(self.lowest_free, free)
                return result

            setattr(network, name, timed)

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)


def torch_pass_for(arch: str, x: np.ndarray, cotangents: dict):
    """A torch eager CUDA features + VJP pass on the same shapes, or None where torch has no CUDA here."""
    try:
        import torch

        from nst_rt.export.vgg import VGGFeatures, random_state_dict
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    state = random_state_dict(arch, 0)
    params = [(state[k].numpy(), state[k.replace("weight", "bias")].numpy()) for k in state if k.endswith("weight")]
    network = VGGFeatures(arch, params).cuda()
    network.weights = [w.cuda() for w in network.weights]
    network.biases = [b.cuda() for b in network.biases]
    network.mean, network.std = network.mean.cuda(), network.std.cuda()
    image = torch.from_numpy(x).cuda()
    cots = {n: torch.from_numpy(c).cuda() for n, c in cotangents.items()}

    def run():
        xi = image.clone().requires_grad_(True)
        acts = network(xi)
        torch.autograd.grad([acts[n] for n in cots], [xi], [cots[n] for n in cots])
        torch.cuda.synchronize()

    return run


def tf32_network(model):
    """A CUDA network whose convolutions may run in TF32 (onnxruntime's default; nst-rt turns it off)."""
    from nst_rt.network import session

    real = session.provider_settings
    session.provider_settings = lambda *args, **kwargs: {**real(*args, **kwargs), "use_tf32": "1"} \
        if args[0] == session.CUDA else real(*args, **kwargs)
    try:
        return session.Network(model, "cuda")
    finally:
        session.provider_settings = real


def passes(models: dict, arch: str, sizes, repeats: int) -> None:
    print(f"\n## One features + VJP pass (graphs alone), best of {repeats}; gradient vs the CPU provider's "
          "(relative L2, same image and cotangents)")
    names = [n for n in models if n != "cpu"]
    print(f"{'size':>9} {'CPU':>9} " + " ".join(f"{n:>10} {n + '/CPU':>10} {'error':>8}" for n in names)
          + f" {'torch CUDA':>11}")
    rng = np.random.default_rng(0)
    for size in sizes:
        x = rng.random((1, 3, size, size), dtype=np.float32)
        times, grads = {}, {}
        cotangents = None
        for name, network in models.items():
            network.forward(x)
            used = set(network.model.cotangent_layers)
            cots = network.cotangents(used)
            for layer in used:
                cots[layer][...] = np.random.default_rng(1).standard_normal(cots[layer].shape, dtype=np.float32)
            cotangents = {n: cots[n].copy() for n in used}

            def one_pass(network=network):
                network.forward(x, [])  # on CUDA no activation comes back: the graphs alone
                network.backward()

            times[name] = best_of(one_pass, repeats)
            grads[name] = network.backward().copy()
        torch_run = torch_pass_for(arch, x, cotangents)
        torch_time = best_of(torch_run, repeats) if torch_run else float("nan")
        cells = []
        for n in names:
            error = np.linalg.norm(grads[n] - grads["cpu"]) / np.linalg.norm(grads["cpu"])
            cells.append(f"{times[n]:>9.4f}s {times[n] / times['cpu']:>10.3f} {error:>8.1e}")
        print(f"{size:>4}x{size:<4} {times['cpu']:>8.4f}s " + " ".join(cells) + f" {torch_time:>10.4f}s")


def evaluation(model, sizes, repeats: int) -> None:
    import gc

    from nst_rt.io.image_load import load_image
    from nst_rt.io.images import resize_to
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.options import Options
    from nst_rt.system.memory_probes import device_free_bytes

    print(f"\n## One objective evaluation on CUDA (defaults: 5 style layers, 1 content layer, tv), best of {repeats}: "
          "the two graphs with the numpy losses between them, split, and the objective graph")
    print(f"{'size':>9} {'two graphs':>11} {'graphs+transfers':>17} {'host losses':>12} {'host share':>11} "
          f"{'GPU used':>9} {'objective graph':>16} {'ratio':>6}")
    content, style = load_image(CONTENT), load_image(STYLE)
    cupy, on_device = device_module(), {}
    defaults = Options()
    weights = {k: getattr(defaults, k) for k in ("content_weight", "style_weight", "tv_weight", "normalize")}
    for size in sizes:
        gc.collect()  # the last size's sessions and their arenas are gone: each size's memory is its own
        network = Network(model, "cuda")
        free_before = device_free_bytes(0)  # after the sessions' weights, before any activation
        timed = Timed(network)
        images = resize_to(content, (size, size)), [resize_to(style, (size, size))]
        two_graphs = Objective(network, *images, fused=False, **weights)
        x = np.random.default_rng(2).random((1, 3, size, size))
        two_graphs(x)
        best = None
        for _ in range(repeats):
            timed.reset()
            started = time.perf_counter()
            two_graphs(x)
            total = time.perf_counter() - started
            graphs = timed.seconds["forward"] + timed.seconds["backward"]
            if best is None or total < best[0]:
                best = (total, graphs)
        total, graphs = best
        used = (free_before - timed.lowest_free) / 2**30 if free_before and timed.lowest_free else float("nan")
        fused = Objective(network, *images, **weights)
        one = best_of(lambda: fused(x), repeats) if fused._fused is not None else float("nan")
        print(f"{size:>4}x{size:<4} {total:>10.4f}s {graphs:>16.4f}s {total - graphs:>11.4f}s "
              f"{(total - graphs) / total:>11.0%} {used:>7.2f}GiB {one:>15.4f}s {one / total:>6.3f}")
        on_device[size] = [on_cupy(lambda: Objective(network, *images, xp=cupy, fused=fused, **weights), x, repeats)
                           for fused in (False, True)] if cupy is not None else None
        del two_graphs, fused, network, timed
    print("\n## The same evaluations with the point and the gradient in CuPy arrays (the optimiser's, on the device)")
    print(f"{'size':>9} {'two graphs':>11} {'objective graph':>16}")
    for size, seconds in on_device.items():
        print(f"{size:>4}x{size:<4} " + ("CuPy is not installed" if seconds is None else
                                         f"{seconds[0]:>10.4f}s {seconds[1]:>15.4f}s"))


def on_cupy(make, x, repeats: int) -> float:
    """Best time of one evaluation at ``x`` in CuPy into a CuPy float64 gradient, the device synchronised."""
    import cupy

    objective, point = make(), cupy.asarray(x)
    out = cupy.empty(point.shape)

    def evaluate():
        objective(point, out=out)
        cupy.cuda.get_current_stream().synchronize()

    return best_of(evaluate, repeats)


def device_module():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def runs(models_dir: Path, model: str, sizes, iterations: int, default_sizes) -> None:
    from nst_rt.pipeline.stylizer import Stylizer

    print(f"\n## Stylizations, one scale, {iterations} iterations, the defaults otherwise")
    print(f"{'size':>5} {'CPU wall':>9} {'CUDA wall':>10} {'CUDA/CPU':>9} {'CPU loss':>10} {'CUDA loss':>10} "
          f"{'loss ratio':>11} {'CUDA, host iterate':>19}")
    stylizers = {p: Stylizer(models_dir=models_dir, model=model, provider=p) for p in ("cpu", "cuda")}
    stylizers["cuda-host"] = stylizers["cuda"].derive()
    stylizers["cuda-host"].xp = np  # the iterate and the optimiser on the host, as without CuPy
    print(f"CUDA iterate in: {stylizers['cuda'].xp.__name__}")
    for size in sizes:
        result = {}
        for provider, stylizer in stylizers.items():
            derived = stylizer.derive(size=size, iterations=iterations, scales=1)
            derived.derive(iterations=2).run(CONTENT, STYLE)  # warm-up: buffers bound, CUDA's algorithms chosen
            started = time.perf_counter()
            out = derived.run(CONTENT, STYLE)
            result[provider] = (time.perf_counter() - started, out.loss, out.iterations)
        (cpu_wall, cpu_loss, _), (cuda_wall, cuda_loss, _) = result["cpu"], result["cuda"]
        print(f"{size:>5} {cpu_wall:>8.2f}s {cuda_wall:>9.2f}s {cuda_wall / cpu_wall:>9.3f} {cpu_loss:>10.5f} "
              f"{cuda_loss:>10.5f} {cuda_loss / cpu_loss:>11.5f} {result['cuda-host'][0]:>18.2f}s")
    print("\n## The default coarse-to-fine run on CUDA")
    for size in default_sizes:
        stylizer = stylizers["cuda"].derive(size=size)
        started = time.perf_counter()
        out = stylizer.run(CONTENT, STYLE)
        wall = time.perf_counter() - started
        print(f"{size:>5} px: {wall:.1f} s, {out.iterations} iterations, {out.evaluations} evaluations, "
              f"loss {out.loss:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--model", default="vgg19")
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--run-sizes", default="256,512")
    parser.add_argument("--run-iterations", type=int, default=30)
    parser.add_argument("--default-sizes", default="512")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RandomWeightsNotice)  # timings do not depend on the weights
    sizes = [int(s) for s in args.sizes.split(",")]

    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network

    machine()
    model = load_model(args.model, args.models_dir)
    print(f"model {model.name} ({model.architecture}, {model.weights_dtype} weights)")
    passes({"cpu": Network(model, "cpu"), "cuda": Network(model, "cuda"), "cuda-tf32": tf32_network(model)},
           model.architecture, sizes, args.repeats)
    evaluation(model, sizes, args.repeats)
    runs(args.models_dir, args.model, [int(s) for s in args.run_sizes.split(",")], args.run_iterations,
         [int(s) for s in args.default_sizes.split(",") if s])


if __name__ == "__main__":
    main()
