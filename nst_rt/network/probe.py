"""``--precision auto`` on OpenVINO decided by measurement: one features+VJP pass timed in fp32 and in bf16.

bf16 is kept where it is at least ``BF16_GAIN`` times faster. The decision is cached in the user cache
directory, keyed by CPU model, core count and onnxruntime-openvino version, so the probe runs once per machine.
A cache file that cannot be read or parsed is ignored and the probe redone. Only the OpenVINO provider probes.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from importlib import metadata
from pathlib import Path

from ..system.user_dirs import user_dir

BF16_GAIN = 1.25  # bf16 must be this many times faster than fp32 to be chosen
PROBE_SIZE = 160  # px, square
PROBE_REPEATS = 3  # timed passes per precision (after one warm-up), interleaved; the median counts


def cache_path() -> Path:
    """The decision cache: $XDG_CACHE_HOME/nst-rt/precision.json, or the platform's user cache directory."""
    return user_dir("cache") / "precision.json"


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def machine_key(cpuinfo: str = "/proc/cpuinfo") -> str:
    try:
        version = metadata.version("onnxruntime-openvino")
    except metadata.PackageNotFoundError:
        version = "none"
    return f"{cpu_model(cpuinfo)} | {os.cpu_count()} cores | onnxruntime-openvino {version}"


def load_cached(key: str, path: Path | None = None) -> dict | None:
    """The cached decision for ``key``; None where absent, for another machine, or corrupt."""
    try:
        entry = json.loads((path or cache_path()).read_text()).get(key)
        if entry["precision"] in ("fp32", "bf16") and float(entry["fp32_s"]) > 0 and float(entry["bf16_s"]) > 0:
            return entry
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def store(key: str, entry: dict, path: Path | None = None) -> None:
    path = path or cache_path()
    try:
        data = json.loads(path.read_text())
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    data[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache costs a probe per run, not the run


def decide(fp32_s: float, bf16_s: float) -> dict:
    speedup = fp32_s / bf16_s
    return {"precision": "bf16" if speedup >= BF16_GAIN else "fp32", "fp32_s": fp32_s, "bf16_s": bf16_s,
            "speedup": speedup}


def measure(passes: dict, repeats: int = PROBE_REPEATS, timer=time.perf_counter) -> dict:
    """Median seconds of each ``passes[precision]()`` call, the precisions interleaved, after one warm-up each."""
    times = {p: [] for p in passes}
    for run in passes.values():
        run()
    for _ in range(repeats):
        for precision, run in passes.items():
            start = timer()
            run()
            times[precision].append(timer() - start)
    return {p: statistics.median(t) for p, t in times.items()}


def network_pass(network, size: int = PROBE_SIZE):
    """One features+VJP pass of ``network`` on a size x size image (its cotangents left as bound: zeros)."""
    import numpy as np

    image = np.random.default_rng(0).uniform(0, 1, (1, 3, size, size)).astype(np.float32)

    def run():
        network.forward(image)
        network.backward()

    return run


def probe(model, threads: int | None = None, timer=time.perf_counter, *, network) -> dict:
    """Time the passes of ``model`` on OpenVINO in fp32 and bf16 (``network``: the Network class) and decide."""
    Network = network
    passes = {p: network_pass(Network(model, "openvino", threads, precision=p)) for p in ("fp32", "bf16")}
    times = measure(passes, timer=timer)
    return decide(times["fp32"], times["bf16"])


def auto_precision(model, threads: int | None = None, *, run_probe, path: Path | None = None,
                   refresh: bool = False) -> tuple[dict, bool]:
    """``(decision, probed now)``: the cached decision for this machine, else ``run_probe(model, threads)``'s
    (then cached)."""
    key = machine_key()
    entry = None if refresh else load_cached(key, path)
    if entry is not None:
        return entry, False
    entry = run_probe(model, threads)
    store(key, entry, path)
    return entry, True


def describe(entry: dict) -> str:
    return (f"{entry['precision']}: measured bf16 {entry['speedup']:.2f}x fp32's speed "
            f"({entry['fp32_s'] * 1e3:.0f} ms vs {entry['bf16_s'] * 1e3:.0f} ms per {PROBE_SIZE} px features+VJP "
            f"pass; bf16 needs >= {BF16_GAIN}x)")
