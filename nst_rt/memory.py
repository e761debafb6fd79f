"""Estimate the memory a stylization needs before starting it, and refuse runs that cannot fit.

The estimate is built from the sizes the run allocates: a multiple of one image's activations (the
bound buffers and ONNX Runtime's working memory, calibrated against measured peak RSS, see
``ACTIVATION_FACTOR``), the optimiser's float64 vectors and its float32 L-BFGS history. The memory
available is the smaller of the system's (MemAvailable) and the container's (cgroup limit less usage);
on CUDA the activations are checked against the device's free memory instead.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from .errors import MemoryLimitError
from .network import activation_shape

# Peak RSS in units of one set of activations (all ReLU outputs of one image), fitted to measured peaks of
# CPU runs at 256, 512 and 1024 px on VGG-19 (550 MB, 1.5 GB, 5.6 GB; the fit is 6.1-6.4, rounded up): the
# bound activation and cotangent buffers, ONNX Runtime's blocked-layout copies and arena, loss temporaries.
ACTIVATION_FACTOR = 6.5
FIXED_BYTES = 300 << 20  # both graphs' weights (~100 MB), prepacked copies, Python, numpy, onnxruntime
OPTIMIZER_VECTORS = 12  # float64 vectors of image size the optimiser and objective keep
HISTORY_ITEM_BYTES = 4  # the L-BFGS pairs are stored in float32 (their dot products are taken in float64)


def activation_bytes(network, height: int, width: int) -> int:
    total = 0
    for layer in network.layers:
        _, c, h, w = activation_shape(layer, network.channels[layer], height, width)
        total += c * h * w * 4
    return total


def estimate_bytes(network, height: int, width: int, history: int, style_shapes=()) -> int:
    """Peak memory of a run at ``height`` x ``width`` with an L-BFGS history of ``history`` pairs.

    Style images are run through the network before the optimisation starts, so the larger of the two
    activation sets counts, not their sum.
    """
    return FIXED_BYTES + int(ACTIVATION_FACTOR * _activations(network, height, width, style_shapes)) + \
        _optimizer_bytes(height, width, history)


def _activations(network, height, width, style_shapes) -> int:
    return max([activation_bytes(network, height, width)] + [activation_bytes(network, h, w) for h, w in style_shapes])


def _optimizer_bytes(height: int, width: int, history: int) -> int:
    pixels = 3 * height * width
    return OPTIMIZER_VECTORS * pixels * 8 + 2 * history * pixels * HISTORY_ITEM_BYTES


def available_bytes(meminfo="/proc/meminfo", cgroup_root="/sys/fs/cgroup", self_cgroup="/proc/self/cgroup") -> int | None:
    """Memory this process can get without swapping or being killed: the smaller of the system's
    MemAvailable and what its cgroup limits leave; None where neither is known."""
    known = [n for n in (_meminfo_available(meminfo), cgroup_available_bytes(cgroup_root, self_cgroup)) if n is not None]
    return min(known) if known else None


def _meminfo_available(meminfo) -> int | None:
    try:
        with open(meminfo) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# cgroup v2 files, then v1 (under the "memory" controller's own mount): limit, usage, stat key of reclaimable cache.
_CGROUP_FILES = (("", "memory.max", "memory.current", "inactive_file"),
                 ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
_UNLIMITED = 1 << 60  # v1 writes "no limit" as a number near 2^63


def cgroup_available_bytes(root="/sys/fs/cgroup", self_cgroup="/proc/self/cgroup") -> int | None:
    """The tightest of (limit - usage + reclaimable page cache) over this process's memory cgroup and its
    ancestors, v2 or v1; None where no limit is set or the files cannot be read."""
    paths = _cgroup_paths(self_cgroup)
    best = None
    for subdir, limit_name, usage_name, inactive_key in _CGROUP_FILES:
        relative = paths.get(subdir)
        base = Path(root, subdir) if subdir else Path(root)
        if relative is None or not base.is_dir():
            continue
        # In a container the cgroup namespace makes the process's own cgroup the mount's root.
        parts = [p for p in relative.strip("/").split("/") if p]
        for depth in range(len(parts), -1, -1):
            directory = base.joinpath(*parts[:depth])
            limit = _read_int(directory / limit_name)
            if limit is None or limit >= _UNLIMITED:
                continue
            usage = _read_int(directory / usage_name) or 0
            left = max(0, limit - usage + _stat_value(directory / "memory.stat", inactive_key))
            best = left if best is None else min(best, left)
    return best


def _cgroup_paths(self_cgroup) -> dict:
    """This process's cgroup path per hierarchy: "" for v2, "memory" for the v1 memory controller."""
    paths = {}
    try:
        with open(self_cgroup) as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":", 2)
                if len(fields) != 3:
                    continue
                if fields[0] == "0" and fields[1] == "":
                    paths[""] = fields[2]
                elif "memory" in fields[1].split(","):
                    paths["memory"] = fields[2]
    except OSError:
        pass
    return paths


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


_CUDART = ("libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0")


def device_free_bytes(device_id: int = 0) -> int | None:
    """Free memory of CUDA device ``device_id`` (cudaMemGetInfo through the CUDA runtime), or None where
    the runtime cannot be loaded or asked. onnxruntime's CUDA provider has loaded the runtime already."""
    for name in _CUDART:
        try:
            cudart = ctypes.CDLL(name)
        except OSError:
            continue
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        try:
            if cudart.cudaSetDevice(ctypes.c_int(device_id)) != 0:
                return None
            if cudart.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) != 0:
                return None
        except AttributeError:
            continue
        return int(free.value)
    return None


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_fits(network, height: int, width: int, history: int, style_shapes=()) -> int:
    """Raise MemoryLimitError when the estimate exceeds the available memory; return the estimate.

    On CUDA the activations and ONNX Runtime's working memory live on the device and are checked against
    its free memory (the factor is the CPU calibration; it has not been fitted to GPU peaks); the host
    keeps the optimiser's vectors and one host copy of the activations and cotangents.
    """
    acts = _activations(network, height, width, style_shapes)
    need = estimate_bytes(network, height, width, history, style_shapes)
    advice = "use a smaller --size (memory grows with the pixel count)"
    if getattr(network, "device", "cpu") == "cuda":
        device_need = FIXED_BYTES + int(ACTIVATION_FACTOR * acts)
        device_have = device_free_bytes(getattr(network, "device_id", 0))
        if device_have is not None and device_need > device_have:
            raise MemoryLimitError(f"a {width}x{height} run needs about {gib(device_need)} of GPU memory but "
                                   f"{gib(device_have)} is free on the device; {advice}")
        need = FIXED_BYTES + 2 * acts + _optimizer_bytes(height, width, history)
    have = available_bytes()
    if have is not None and need > have:
        raise MemoryLimitError(
            f"a {width}x{height} run needs about {gib(need)} of memory but {gib(have)} is available; "
            f"{advice} or a smaller --history"
        )
    return need
