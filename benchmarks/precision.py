"""bf16 against fp32 over a whole default run: time, evaluations and the saved picture's fp32 objective.

    python benchmarks/precision.py --model MODEL_DIR [--size 512] [--iterations 100] [--policies default never ...]

Needs 'nst-rt[openvino]'. Runs the example chelsea + starry_night with the default coarse-to-fine schedule once
on the CPU provider in fp32 (the reference), then on OpenVINO in bf16 under each switch policy
(nst_rt.pipeline.precision_switch), one after another in one process, and scores every saved 8-bit image with
the fp32 objective on the CPU provider at the full size. Per run: wall time and its ratio to fp32's, evaluations
and evaluations per iteration, the objective's ratio to fp32's, and per scale where bf16 went on in fp32.
Whole runs cannot be interleaved, so run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def policies():
    from nst_rt.pipeline.precision_switch import DEFAULT_POLICY, SwitchPolicy

    return {
        "default": DEFAULT_POLICY,
        "never": SwitchPolicy.never(),
        "finish10": SwitchPolicy(struggle=math.inf, on_line_search_failure=True, finish_fp32=10),
        "struggle1.3": SwitchPolicy(struggle=1.3),
        "struggle2": SwitchPolicy(struggle=2.0),
        "nomemory": SwitchPolicy(keep_memory=False),
        "default+finish10": SwitchPolicy(finish_fp32=10),
    }


def cpu_name() -> str:
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                platform.processor())


def run_once(stylizer):
    scales = {}

    def progress(p):
        entry = scales.setdefault(p.scale, {"precisions": []})
        entry.update(iteration=p.iteration, evaluations=p.evaluations, elapsed=p.elapsed)
        if p.iteration and (not entry["precisions"] or entry["precisions"][-1][1] != p.precision):
            entry["precisions"].append((p.iteration, p.precision))

    started = time.perf_counter()
    result = stylizer.run(CONTENT, [STYLE], progress=progress)
    return time.perf_counter() - started, result, scales


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="an exported model's directory")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--policies", nargs="+", default=["default", "never"], choices=list(policies()))
    args = parser.parse_args()
    import onnxruntime

    from nst_rt.io.image_load import load_image
    from nst_rt.io.images import resize_longest
    from nst_rt.network.precision import cpu_bf16_flags
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.stylizer import Stylizer

    print(f"CPU: {cpu_name()}; bf16 flags: {', '.join(cpu_bf16_flags()) or 'none'}; {__import__('os').cpu_count()} "
          f"cores; onnxruntime {onnxruntime.__version__}; {args.model}; {args.size} px, {args.iterations} iterations "
          f"at the full size; chelsea + starry_night")
    common = dict(model=str(args.model), size=args.size, iterations=args.iterations)
    reference = Stylizer(provider="cpu", **common)
    o = reference.options
    content = resize_longest(load_image(CONTENT), args.size)
    style = resize_longest(load_image(STYLE), args.size)
    scorer = Objective(reference.network, content, [style], content_weight=o.content_weight,
                       style_weight=o.style_weight, tv_weight=o.tv_weight, normalize=o.normalize)

    def score(result) -> float:
        image = np.asarray(result.to_pil(), np.float32) / 255  # the saved 8-bit picture
        return float(scorer(image.transpose(2, 0, 1)[None].astype(np.float64))[0])

    runs = [("CPU provider fp32", reference)]
    bf16 = Stylizer(provider="openvino", precision="bf16", **common)
    for name in args.policies:
        derived = bf16.derive()
        derived.switch_policy = policies()[name]
        runs.append((f"OpenVINO bf16, {name}", derived))
    base = None
    for label, stylizer in runs:
        seconds, result, scales = run_once(stylizer)
        objective = score(result)
        base = base or (seconds, objective)
        per_scale = "; ".join(
            f"{s}: {e['iteration']} it, {e['evaluations'] - (scales[s - 1]['evaluations'] if s > 1 else 0)} ev, "
            f"{e['elapsed'] - (scales[s - 1]['elapsed'] if s > 1 else 0):.1f} s"
            + (f", fp32 from {result.fp32_from[s][0]}" if s in result.fp32_from else "")
            for s, e in sorted(scales.items()))
        print(f"{label:32s} {seconds:7.1f} s ({seconds / base[0]:.2f}x)  {result.evaluations:4d} evaluations "
              f"({result.evaluations / max(result.iterations, 1):.2f}/it)  objective {objective:.5g} "
              f"({objective / base[1]:.4f}x)  [{per_scale}]", flush=True)
        for scale, (at, why) in sorted(result.fp32_from.items()):
            print(f"    scale {scale}: fp32 from iteration {at}: {why}")
        if result.stopped_early:
            print(f"    stopped early: {result.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
