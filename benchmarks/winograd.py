"""Winograd F(2x2,3x3) and F(4x4,3x3) in ONNX against ONNX Runtime's MLAS Conv, on VGG-19's conv3_2 and conv4_2.

    python benchmarks/winograd.py              (512 px input: conv3_2 256->256 at 128x128, conv4_2 512->512 at 64x64)
    python benchmarks/winograd.py --repeats 3 --size 256

Forward and VJP (a Conv with flipped, transposed weights) of each layer, seeded He-init weights. Time: median of
--repeats runs after a warm-up, the three forms interleaved (ABCABC) so that load from other work on a shared
machine hits all alike. Error: relative L2 against torch's float64 conv2d. Memory: peak RSS (VmHWM) of a fresh
subprocess that builds the session and runs it once, minus its RSS before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

LAYERS = {"conv3_2": (256, 4), "conv4_2": (512, 8)}  # channels, downscale from the input image
FORMS = ["direct", "F(2x2,3x3)", "F(4x4,3x3)"]


def _case(layer: str, pass_: str, size: int):
    from nst_rt.export.winograd import vjp_weight
    ch, down = LAYERS[layer]
    rng = np.random.default_rng(sum(map(ord, layer + pass_)))
    w = rng.standard_normal((ch, ch, 3, 3)) * np.sqrt(2 / (9 * ch))
    x = np.maximum(rng.standard_normal((1, ch, size // down, size // down)), 0).astype(np.float32)
    return (vjp_weight(w) if pass_ == "vjp" else w), x


def _model(form: str, w, x):
    from nst_rt.export.winograd import direct_model, winograd_model
    h, wd = x.shape[2:]
    return direct_model(w, h, wd) if form == "direct" else winograd_model(w, h, wd, 2 if "2x2" in form else 4)


def _rss(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(layer: str, pass_: str, form: str, size: int) -> None:
    import onnxruntime as ort
    w, x = _case(layer, pass_, size)
    blob = _model(form, w, x).SerializeToString()
    before = _rss("VmRSS")
    ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    print(json.dumps({"peak": _rss("VmHWM") - before}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--child", nargs=3)
    args = p.parse_args()
    if args.child:
        return child(*args.child, args.size)
    import onnxruntime as ort
    import torch
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    import os
    print(f"CPU: {cpu}, {os.cpu_count()} logical cores; onnxruntime {ort.__version__} CPU provider, all threads")
    print(f"input {args.size} px; median of {args.repeats} interleaved runs after a warm-up; shared machine\n")
    print(f"{'layer':8} {'pass':4} {'form':11} {'ms':>8} {'vs direct':>9} {'rel L2 err':>10} {'peak MiB':>9}")
    for layer in LAYERS:
        for pass_ in ("fwd", "vjp"):
            w, x = _case(layer, pass_, args.size)
            ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w), padding=1).numpy()
            sessions = {f: ort.InferenceSession(_model(f, w, x).SerializeToString(), providers=["CPUExecutionProvider"])
                        for f in FORMS}
            outs = {f: s.run(None, {"x": x})[0] for f, s in sessions.items()}  # warm-up
            times = {f: [] for f in FORMS}
            for _ in range(args.repeats):
                for f, s in sessions.items():
                    t = time.perf_counter()
                    s.run(None, {"x": x})
                    times[f].append(time.perf_counter() - t)
            del sessions
            med = {f: float(np.median(v)) for f, v in times.items()}
            for f in FORMS:
                err = np.linalg.norm(outs[f] - ref) / np.linalg.norm(ref)
                out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--child", layer, pass_, f],
                                     capture_output=True, text=True, check=True).stdout
                peak = json.loads(out)["peak"] / 2**20
                print(f"{layer:8} {pass_:4} {f:11} {med[f] * 1e3:8.1f} {med['direct'] / med[f]:8.2f}x {err:10.1e} {peak:9.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
