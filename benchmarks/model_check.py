"""What checking an export's weights.bin costs at load: its size (always) against its sha256 (``--verify``).

    python benchmarks/model_check.py MODEL_DIR [MODEL_DIR ...]    (exports, e.g. from `nst-rt export vgg19`)

Printed per model, medians of ``--rounds`` (the file in the page cache after the first read, as it is for the
runs that follow an export or another run): ``load_model`` with the size check alone, with the sha256 too (its
per-process memo cleared each round: the first load's cost), the sha256 alone, and building the fp32 Network (the ONNX Runtime sessions every run builds next), with the ratios
side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)

from footprint import cpu_model
from nst_rt.io.digest import file_sha256
from nst_rt.model_format import WEIGHTS_FILE
from nst_rt.network import model as model_module
from nst_rt.network.model import load_model
from nst_rt.network.session import Network


def median_seconds(work, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; {args.rounds} rounds; medians")
    for path in args.models:
        weights = path / WEIGHTS_FILE
        file_sha256(weights)  # into the page cache
        size_only = median_seconds(lambda: load_model(path, verify=False), args.rounds)
        verified = median_seconds(lambda: (model_module._digests.clear(), load_model(path, verify=True)), args.rounds)
        digest = median_seconds(lambda: file_sha256(weights), args.rounds)
        model = load_model(path)
        network = median_seconds(lambda: Network(model, "cpu", 2), args.rounds)
        print(f"{path.name}: weights.bin {weights.stat().st_size / 1e6:.1f} MB; load_model {size_only * 1e3:.1f} ms, "
              f"with sha256 {verified * 1e3:.1f} ms ({verified / size_only:.2f}x); sha256 alone {digest * 1e3:.1f} ms "
              f"({weights.stat().st_size / digest / 1e6:.0f} MB/s); Network {network * 1e3:.1f} ms "
              f"(sha256 = {digest / network:.1%} of it)")


if __name__ == "__main__":
    main()
