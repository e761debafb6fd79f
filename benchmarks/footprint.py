"""What a loaded model costs: the resident memory of a loaded ``Network`` (both sessions) and the session load
time, for several exports side by side, each measured in a fresh process, alternating, several rounds.

    python benchmarks/footprint.py MODEL_DIR [MODEL_DIR ...] [--rounds 3] [--threads 2]

Loading is ``Network(load_model(path), "cpu")``: reading the metadata and creating both sessions. Prints per
model: the files' size on disk, the RSS added by loading (VmRSS after minus before, MB), the peak during the
load (VmHWM minus the RSS before), the median load time, and the ratios to the first model.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

# With --baseline DIR the child imports nst_rt from DIR (a checkout of an earlier commit) instead of this one.
PRELUDE = r"""
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv.pop())
"""
CHILD = r"""
import json, sys, time
import numpy, onnxruntime  # imported before the baseline: only the load is measured
from nst_rt.network.model import load_model
from nst_rt.network.session import Network

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

before = status("VmRSS")
started = time.perf_counter()
network = Network(load_model(sys.argv[1]), "cpu", threads=int(sys.argv[2]))
seconds = time.perf_counter() - started
print(json.dumps({"rss": status("VmRSS") - before, "peak": status("VmHWM") - before, "seconds": seconds}))
"""


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(model: Path, threads: int, code: Path | None = None) -> dict:
    command = [sys.executable, "-c", CHILD, str(model), str(threads)]
    if code is not None:
        command = [sys.executable, "-c", PRELUDE + CHILD, str(model), str(threads), str(code)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also load the first model with the nst_rt of DIR (a checkout of an earlier commit)")
    args = parser.parse_args()
    cases = [(m, None) for m in args.models]
    if args.baseline:
        cases.insert(0, (args.models[0], args.baseline))
    runs: dict[tuple, list[dict]] = {case: [] for case in cases}
    for _ in range(args.rounds):
        for model, code in cases:
            runs[model, code].append(measure(model, args.threads, code))
    print(f"CPU: {cpu_model()}; {args.rounds} rounds, {args.threads} threads; medians")
    print(f"{'model':<40} {'disk MB':>8} {'RSS MB':>8} {'peak MB':>8} {'load s':>7} {'RSS x':>6} {'load x':>7}")
    first = None
    for (model, code), results in runs.items():
        disk = sum(p.stat().st_size for p in model.iterdir() if p.is_file()) / 1e6
        rss = statistics.median(r["rss"] for r in results)
        peak = statistics.median(r["peak"] for r in results)
        seconds = statistics.median(r["seconds"] for r in results)
        first = first or (rss, seconds)
        label = str(model)[-40:] if code is None else f"{str(model)[-29:]} (baseline)"
        print(f"{label:<40} {disk:8.1f} {rss:8.1f} {peak:8.1f} {seconds:7.2f} {rss / first[0]:6.2f} "
              f"{seconds / first[1]:7.2f}")


if __name__ == "__main__":
    main()
