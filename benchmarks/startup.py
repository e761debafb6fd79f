"""Start-up costs, each in fresh processes (medians of --rounds): the import time of the CLI and of the runtime,
and the time from process start to the first finished iteration of a stylization at --size (256 px).

    python benchmarks/startup.py --model MODEL_DIR [--size 256] [--rounds 3] [--baseline-model OLD_DIR]

The import times are the process's wall time less that of an empty interpreter. With --baseline-model the
first-iteration time is measured for both models, alternating, and the ratio printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

FIRST_ITERATION = r"""
import os, sys
import nst_rt
from nst_rt.pipeline.stylizer import Stylizer
from nst_rt.io.image_load import load_image

def progress(p):
    if p.iteration >= 1:
        print("first iteration", flush=True)
        os._exit(0)

model, size, content, style = sys.argv[1:]
Stylizer(model=model, size=int(size), scales=1, threads=2).run(load_image(content), load_image(style), progress)
"""


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    from footprint import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--baseline-model", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    content, style = ROOT / "examples" / "content" / "chelsea.png", ROOT / "examples" / "style" / "starry_night.jpg"
    times: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, command in (("empty interpreter", [python, "-c", "pass"]),
                              ("import nst_rt.cli", [python, "-c", "import nst_rt.cli"]),
                              ("nst-rt --help", [python, "-c", "import sys; sys.argv = ['nst-rt', '--help']\n"
                                                 "from nst_rt.cli import main\ntry: main()\nexcept SystemExit: pass"]),
                              ("import runtime", [python, "-c", "import nst_rt.pipeline.stylizer, nst_rt.network.session"])):
            times.setdefault(name, []).append(wall(command))
        for model in [args.model] + ([args.baseline_model] if args.baseline_model else []):
            times.setdefault(f"first iteration: {model}", []).append(
                wall([python, "-c", FIRST_ITERATION, str(model), str(args.size), str(content), str(style)]))
    base = statistics.median(times.pop("empty interpreter"))
    print(f"CPU: {cpu_model()}; medians of {args.rounds}; an empty interpreter takes {base:.2f} s")
    for name, values in times.items():
        value = statistics.median(values)
        extra = "" if name.startswith("first") else f" (+{value - base:.2f} s over the interpreter)"
        print(f"{name:<60} {value:6.2f} s{extra}")
    if args.baseline_model:
        new, old = (statistics.median(times[f"first iteration: {m}"]) for m in (args.model, args.baseline_model))
        print(f"first iteration, model / baseline model: {new / old:.2f}")


if __name__ == "__main__":
    main()
