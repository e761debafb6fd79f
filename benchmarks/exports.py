"""Two exports of the same weights side by side (an exporter change, before and after): seconds per evaluation of
the default objective, their ratio, whether the two give the same numbers, and where each evaluation's time goes.

    python benchmarks/exports.py --before OLD_MODEL_DIR --after NEW_MODEL_DIR [--sizes 256,512] [--repeats 7]

Each size evaluates the default objective (five style layers, relu4_2, tv; ``Options``' weights) of
examples/content/chelsea.png in the style of examples/style/starry_night.jpg at the content picture, through
each export's objective graph on ONNX Runtime's CPU provider, alternating (before, after, before, ...); the
medians are printed with their ratio and the largest differences of the totals and gradients. Then the fastest of
five profiled evaluations per export at the largest size: the share of each ONNX operator type in it (ONNX Runtime's profiler,
which adds its own overhead, so compare shares, not seconds).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np

from footprint import cpu_model

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"


def objective_at_content(model_dir: str, size: int, threads: int | None):
    """The default objective of the example pair at ``size`` px and the content picture it is evaluated at."""
    from nst_rt.io import images
    from nst_rt.io.image_load import load_image
    from nst_rt.io.layout import to_nchw
    from nst_rt.network.model import load_model
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.options import Options

    o = Options()
    content = images.resize_longest(load_image(CONTENT), size)
    style = images.resize_longest(load_image(STYLE), size)
    objective = Objective(Network(load_model(model_dir), "cpu", threads=threads), content, [style],
                          content_weight=o.content_weight, style_weight=o.style_weight, tv_weight=o.tv_weight,
                          normalize=o.normalize)
    return objective, to_nchw(content).astype(np.float64)


def operator_shares(model_dir: str, x: np.ndarray, objective, threads: int | None) -> list[tuple[str, float]]:
    """One profiled run of the export's objective graph with the objective's own inputs: each operator type's share."""
    import onnxruntime

    from nst_rt.model_format import IMAGE_INPUT

    fused = objective._fused  # the objective graph's inputs as the run binds them (the CPU provider runs it)
    feeds = {**fused.inputs, IMAGE_INPUT: x.astype(np.float32)}
    with tempfile.TemporaryDirectory() as tmp:
        options = onnxruntime.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(Path(model_dir) / "objective.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        for _ in range(5):  # the first runs still grow ONNX Runtime's memory arena: their small ops look slow
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    last = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["dur"])
    spent: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and last["ts"] <= e["ts"] <= last["ts"] + last["dur"]:
            spent[e["args"].get("op_name", "?")] += e["dur"]
    return [(name, spent[name] / last["dur"]) for name, _ in spent.most_common(6)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the first export's directory")
    parser.add_argument("--after", required=True, help="the second export's directory (the same weights)")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()

    import onnxruntime

    print(f"# {cpu_model()}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__}; "
          f"load average {os.getloadavg()[0]:.1f}; median of {args.repeats}")
    exports = {"before": args.before, "after": args.after}
    for size in (int(s) for s in args.sizes.split(",")):
        pairs = {name: objective_at_content(path, size, args.threads) for name, path in exports.items()}
        results = {name: objective(x) for name, (objective, x) in pairs.items()}  # also the warm-up
        times: dict[str, list[float]] = {name: [] for name in exports}
        for _ in range(args.repeats):
            for name, (objective, x) in pairs.items():
                started = time.perf_counter()
                objective(x)
                times[name].append(time.perf_counter() - started)
        before, after = (statistics.median(times[name]) for name in exports)
        (total_a, grad_a), (total_b, grad_b) = results["before"], results["after"]
        shape = pairs["before"][1].shape
        print(f"{shape[3]}x{shape[2]}: before {before:.3f} s, after {after:.3f} s, ratio {after / before:.3f}; "
              f"totals differ by {abs(total_a - total_b):.3g}, gradients by at most {np.abs(grad_a - grad_b).max():.3g}")
    for name, (objective, x) in pairs.items():
        shares = operator_shares(exports[name], x, objective, args.threads)
        print(f"{name}, where a {x.shape[3]}x{x.shape[2]} evaluation's time goes: "
              + ", ".join(f"{op} {share:.1%}" for op, share in shares))


if __name__ == "__main__":
    main()
